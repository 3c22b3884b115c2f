# The two commands of the README: `make run` runs the bot, `make test` runs the tests.
# Each one builds the virtual environment first when it is missing or out of date.

PYTHON ?= python3
VENV ?= .venv
# A CPU build of torch; override for CUDA, e.g.
#   make run TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The inference service's extra (Ray Serve): for `make serve` and the tests, not for `make run`.
SERVE_STAMP := $(VENV)/.installed-serve

.PHONY: run console serve test test-slow bench lint clean hadolint docker messages

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required (set PYTHON=python3.11)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

$(SERVE_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,serve]"
	@touch $(SERVE_STAMP)

run: $(STAMP)
	$(BIN)/python -m bot

# The inference service for INFERENCE_URL (see the README's "Inference as a service").
SERVE_ARGS ?= --host 127.0.0.1 --port 8000
serve: $(SERVE_STAMP)
	RAY_USAGE_STATS_ENABLED=$${RAY_USAGE_STATS_ENABLED:-0} $(BIN)/python -m bot serve $(SERVE_ARGS)

console: $(STAMP)
	$(BIN)/python -m bot console

test: lint
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Lint, format check, type check and the layer contracts (pyproject.toml's [tool.*] sections).
lint: $(SERVE_STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot tests bench
	$(BIN)/pyright
	$(BIN)/lint-imports

test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

bench: $(SERVE_STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0 $(BIN)/python -m bench $(BENCH_ARGS)

# The translation catalogs (bot/i18n/locales): the template from the code's marked messages and
# the slash commands' texts, then each language's .po file updated (translations kept). Rerun it
# after marking or changing a message; `$(BIN)/python -m bot.i18n.extract --check` lists what is
# out of date or untranslated (tests/test_catalogs.py runs it).
messages: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m bot.i18n.extract

# The Dockerfile's lint alone (tests/test_dockerfile.py runs it too, with the image's checks).
hadolint: $(STAMP)
	$(BIN)/hadolint --failure-threshold warning Dockerfile

# The image (see the README's "Docker" section); for CUDA:
#   make docker TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu
IMAGE ?= fillmask-bot
docker:
	docker build --build-arg TORCH_INDEX_URL=$(TORCH_INDEX_URL) -t $(IMAGE) .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
