# fillmask-bot: the Discord bot as a service. See the README's "Docker" section.
#
#   docker build -t fillmask-bot .
#   docker run -d --name fillmask-bot --env-file .env -v fillmask-data:/data fillmask-bot
#
# CUDA build: docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 -t fillmask-bot:cuda .
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A non-root user owning /data: the settings database, the Hugging Face cache (downloaded
# checkpoints survive a new container), the health file and the optional LOG_FILE.
RUN groupadd --gid 10001 bot \
    && useradd --uid 10001 --gid bot --create-home --no-log-init --shell /usr/sbin/nologin bot \
    && mkdir -p /data/hf-cache \
    && chown -R 10001:10001 /data

WORKDIR /app

# 1. torch, the largest layer (~200 MB CPU, GBs for CUDA): rebuilt only when the version or
#    the index changes.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# 2. The other dependencies, read from pyproject.toml alone, so editing the bot's code does not
#    reinstall them. The torch above satisfies "torch>=2.2,<3": pip keeps that build.
#    Optional extras, comma-separated: EXTRAS=serve for the inference service (`python -m bot
#    serve`, Ray Serve), as docker-compose.yml builds it. Declared after torch, so the torch
#    layer is shared by the images with and without it.
ARG EXTRAS=""
COPY pyproject.toml ./
RUN python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; extras = [e for e in os.environ.get('EXTRAS', '').split(',') if e]; print(*p['dependencies'], *(d for e in extras for d in p['optional-dependencies'][e]), sep=chr(10))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 3. The bot itself, without the dev extras. The source is removed once installed:
#    `python -m bot` runs the installed, byte-compiled copy.
COPY README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build bot ./*.egg-info

# Configuration comes from the environment: `docker run --env-file .env` (.env never enters
# the image) or `-e KEY=value`; every key is in .env.example. State goes to /data, and so do
# relative paths (the working directory), e.g. DATABASE_PATH=data/... from .env.example.
ENV HF_HOME=/data/hf-cache \
    DATABASE_PATH=/data/fillmask.sqlite3 \
    HEALTH_FILE=/data/health.json

VOLUME ["/data"]
WORKDIR /data
USER 10001:10001

# The bot rewrites /data/health.json every HEALTH_INTERVAL (15 s); the check exits 1 unless it
# is fresh, the bot is connected and the default model has loaded. The start period covers
# the first download of the default checkpoint (camembert-base, ~450 MB).
HEALTHCHECK --interval=30s --timeout=20s --start-period=5m --retries=3 \
    CMD ["python", "-m", "bot", "health"]

ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
