"""Configuration from the environment and an optional ``.env`` file.

Every key is documented in ``.env.example``; the names are a public interface (operators'
scripts rely on them), so they do not change.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.inference.checkpoint_policy import CheckpointPolicy

DEFAULT_DATABASE_PATH = Path("data") / "fillmask.sqlite3"
DEFAULT_HEALTH_FILE = Path("data") / "health.json"
DEFAULT_HEALTH_INTERVAL = 15.0


# Reads one environment key, stripped ("" when unset).
Getter = Callable[[str], str]


class ConfigError(Exception):
    """A configuration value is invalid; the message names the key and what is expected."""


@dataclass(frozen=True, slots=True)
class Settings:
    discord_token: str | None = None
    command_prefix: str = "!"
    default_model: str = "camembert-base"
    database_path: Path = DEFAULT_DATABASE_PATH
    # postgresql://user:password@host:port/dbname: settings in PostgreSQL instead of DATABASE_PATH.
    database_url: str | None = None
    max_loaded_models: int = 2
    allowed_models: tuple[str, ...] = ()
    allow_local_models: bool = False
    local_model_dirs: tuple[Path, ...] = ()
    allow_pickle_weights: bool = False
    device: str = "auto"
    log_level: str = "INFO"
    dev_guild_id: int | None = None
    max_batch_size: int = 32
    precision: str = "fp32"
    torch_threads: int = 0
    max_queue: int = 256
    fill_cooldown_rate: int = 5
    fill_cooldown_seconds: float = 10.0
    guild_max_queued_fills: int = 64
    model_set_cooldown_seconds: float = 30.0
    max_model_parameters: int = 600_000_000
    load_timeout_seconds: float = 600.0
    health_file: Path = DEFAULT_HEALTH_FILE
    health_interval: float = DEFAULT_HEALTH_INTERVAL
    log_file: Path | None = None
    # Sharding: None = one shard (today's single process); 0 = Discord's recommended count ("auto").
    shard_count: int | None = None
    # The shards this process runs; () = all of them.
    shard_ids: tuple[int, ...] = ()
    # Prometheus metrics on METRICS_HOST:METRICS_PORT when the port is set.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Inference elsewhere: this bot's Ray Serve service or Hugging Face's (no weights loaded here).
    inference_url: str | None = None
    # Which protocol INFERENCE_URL speaks: "fillmask" (python -m bot serve), "huggingface", or
    # "auto" (Hugging Face's hosts are "huggingface", anything else "fillmask").
    inference_api: str = "auto"
    # python -m bot serve: replicas (0 = autoscale between the min and max), resources per replica.
    serve_replicas: int = 1
    serve_min_replicas: int = 1
    serve_max_replicas: int = 4
    serve_cpus_per_replica: float = 1.0
    serve_gpus_per_replica: float = 0.0

    def __post_init__(self) -> None:
        if self.serve_min_replicas > self.serve_max_replicas:
            raise ConfigError(
                f"SERVE_MIN_REPLICAS ({self.serve_min_replicas}) must not exceed SERVE_MAX_REPLICAS ({self.serve_max_replicas})"
            )
        if self.shard_ids and not self.shard_count:
            raise ConfigError("SHARD_IDS needs SHARD_COUNT (a number): which ids exist depends on the total")
        if self.shard_count and any(i >= self.shard_count for i in self.shard_ids):
            raise ConfigError(
                f"SHARD_IDS must be below SHARD_COUNT={self.shard_count} (got {', '.join(map(str, self.shard_ids))})"
            )
        if self.precision == "fp16" and self.device == "cpu":
            raise ConfigError("PRECISION=fp16 needs a CUDA device; on the CPU use bf16 or int8")
        if self.precision == "int8" and self.device.startswith("cuda"):
            raise ConfigError("PRECISION=int8 (dynamic quantization) runs on the CPU only; on CUDA use fp16 or bf16")

    @property
    def checkpoint_policy(self) -> CheckpointPolicy:
        return CheckpointPolicy(
            allowed_models=self.allowed_models,
            allow_local_models=self.allow_local_models,
            local_roots=self.local_model_dirs,
        )

    def __repr__(self) -> str:  # never print the token
        token = "set" if self.discord_token else "unset"
        return f"Settings(discord_token=<{token}>, default_model={self.default_model!r}, database_path={self.database_path!s})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dotenv_path: str | os.PathLike[str] | None = ".env") -> Settings:
        """Read settings from ``env`` (default: the process environment after loading ``.env``)."""
        if env is None:
            if dotenv_path is not None and Path(dotenv_path).is_file():
                from dotenv import load_dotenv

                # Real environment variables win over the file, as operators expect.
                load_dotenv(dotenv_path, override=False)
            env = os.environ
        source = env

        def get(key: str) -> str:
            return (source.get(key) or "").strip()

        return cls(
            discord_token=get("DISCORD_TOKEN") or None,
            command_prefix=get("COMMAND_PREFIX") or "!",
            default_model=get("DEFAULT_MODEL") or "camembert-base",
            database_path=Path(get("DATABASE_PATH")) if get("DATABASE_PATH") else DEFAULT_DATABASE_PATH,
            database_url=get("DATABASE_URL").strip() or None,
            max_loaded_models=_int(get, "MAX_LOADED_MODELS", 2, minimum=1),
            allowed_models=_list(get("ALLOWED_MODELS")),
            allow_local_models=_bool(get, "ALLOW_LOCAL_MODELS"),
            local_model_dirs=tuple(Path(p).expanduser() for p in _list(get("LOCAL_MODEL_DIRS"))),
            allow_pickle_weights=_bool(get, "ALLOW_PICKLE_WEIGHTS"),
            device=_choice(get, "DEVICE", "auto", ("auto", "cpu", "cuda"), prefix_ok=("cuda:",)),
            log_level=_choice(get, "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), upper=True),
            dev_guild_id=_optional_int(get, "DEV_GUILD_ID", minimum=1),
            max_batch_size=_int(get, "MAX_BATCH_SIZE", 32, minimum=1),
            precision=_choice(get, "PRECISION", "fp32", ("fp32", "bf16", "int8", "fp16", "auto")),
            torch_threads=_int(get, "TORCH_THREADS", 0, minimum=0),
            max_queue=_int(get, "MAX_QUEUE", 256, minimum=1),
            fill_cooldown_rate=_int(get, "FILL_COOLDOWN_RATE", 5, minimum=1),
            fill_cooldown_seconds=_float(get, "FILL_COOLDOWN_SECONDS", 10.0),
            guild_max_queued_fills=_int(get, "GUILD_MAX_QUEUED_FILLS", 64, minimum=1),
            model_set_cooldown_seconds=_float(get, "MODEL_SET_COOLDOWN_SECONDS", 30.0),
            max_model_parameters=_int(get, "MAX_MODEL_PARAMETERS", 600_000_000, minimum=1),
            load_timeout_seconds=_positive_float(get, "LOAD_TIMEOUT_SECONDS", 600.0),
            health_file=Path(get("HEALTH_FILE")) if get("HEALTH_FILE") else DEFAULT_HEALTH_FILE,
            health_interval=_positive_float(get, "HEALTH_INTERVAL", DEFAULT_HEALTH_INTERVAL),
            log_file=Path(get("LOG_FILE")) if get("LOG_FILE") else None,
            shard_count=_shard_count(get),
            shard_ids=_shard_ids(get),
            metrics_port=_optional_int(get, "METRICS_PORT", minimum=1),
            metrics_host=get("METRICS_HOST") or "127.0.0.1",
            inference_url=_url(get, "INFERENCE_URL"),
            inference_api=_choice(get, "INFERENCE_API", "auto", ("auto", "fillmask", "huggingface")),
            serve_replicas=_int(get, "SERVE_REPLICAS", 1, minimum=0),
            serve_min_replicas=_int(get, "SERVE_MIN_REPLICAS", 1, minimum=0),
            serve_max_replicas=_int(get, "SERVE_MAX_REPLICAS", 4, minimum=1),
            serve_cpus_per_replica=_positive_number(get, "SERVE_CPUS_PER_REPLICA", 1.0),
            serve_gpus_per_replica=_float_number(get, "SERVE_GPUS_PER_REPLICA", 0.0),
        )


def _url(get: Getter, key: str) -> str | None:
    raw = get(key).rstrip("/")
    if not raw:
        return None
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{key} must be an http:// or https:// URL, e.g. http://127.0.0.1:8000 (got {raw!r})")
    return raw


def _float_number(get: Getter, key: str, default: float) -> float:
    value = _number(get, key, default, "a number")
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{key} must be 0 or more (got {get(key)!r})")
    return value


def _positive_number(get: Getter, key: str, default: float) -> float:
    value = _float_number(get, key, default)
    if value <= 0:
        raise ConfigError(f"{key} must be above 0 (got {value})")
    return value


def _shard_count(get: Getter) -> int | None:
    if get("SHARD_COUNT").lower() == "auto":
        return 0
    return _optional_int(get, "SHARD_COUNT", minimum=1)


def _shard_ids(get: Getter) -> tuple[int, ...]:
    ids: list[int] = []
    for part in _list(get("SHARD_IDS")):
        try:
            value = int(part)
        except ValueError:
            raise ConfigError(f"SHARD_IDS must be comma-separated shard numbers, e.g. 0,1 (got {part!r})") from None
        if value < 0:
            raise ConfigError(f"SHARD_IDS must not be negative (got {value})")
        if value in ids:
            raise ConfigError(f"SHARD_IDS lists shard {value} twice")
        ids.append(value)
    return tuple(ids)


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.replace("\n", ",").split(",") if part.strip())


def _bool(get: Getter, key: str) -> bool:
    raw = get(key).lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{key} must be 1 or 0 (got {raw!r})")


def _int(get: Getter, key: str, default: int, *, minimum: int) -> int:
    value = _optional_int(get, key, minimum=minimum)
    return default if value is None else value


def _optional_int(get: Getter, key: str, *, minimum: int) -> int | None:
    raw = get(key)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a whole number (got {raw!r})") from None
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum} (got {value})")
    return value


def _number(get: Getter, key: str, default: float, what: str) -> float:
    raw = get(key)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be {what} (got {raw!r})") from None


def _float(get: Getter, key: str, default: float) -> float:
    value = _number(get, key, default, "a number of seconds")
    if value < 0:
        raise ConfigError(f"{key} must not be negative (got {value})")
    return value


def _positive_float(get: Getter, key: str, default: float) -> float:
    value = _float(get, key, default)
    if not 0 < value < float("inf"):
        raise ConfigError(f"{key} must be a number of seconds above 0 (got {value})")
    return value


def _choice(
    get: Getter, key: str, default: str, choices: tuple[str, ...], *, upper: bool = False, prefix_ok: tuple[str, ...] = ()
) -> str:
    raw = get(key) or default
    value = raw.upper() if upper else raw.lower()
    if value in choices or value.startswith(prefix_ok or ("\0",)):
        return value
    raise ConfigError(f"{key} must be one of {', '.join(choices)} (got {raw!r})")
