"""``python -m bot serve``: the inference service in the foreground, until SIGTERM or SIGINT.

Without RAY_ADDRESS it starts a Ray instance of its own on this machine (its temporary files
under RAY_TMPDIR when set) and shuts it down on exit; with RAY_ADDRESS it deploys onto that
cluster and, on exit, deletes its application and disconnects, leaving the cluster running.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from bot.settings import Settings

log = logging.getLogger(__name__)


def serve_main(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> int:
    """Serve the inference API on ``host:port`` until SIGTERM/SIGINT; the exit status (0, or 1 if it can't start)."""
    # Imported here, so that ``python -m bot --help`` does not pay for Ray.
    import ray
    from ray import serve

    from bot.adapters.inference_server.app import APP_NAME, build_application

    address = os.environ.get("RAY_ADDRESS", "").strip()
    own_ray = not address
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    try:
        try:
            if own_ray:
                temp_dir = os.environ.get("RAY_TMPDIR", "").strip() or None
                log.info("starting a local Ray instance%s", f" (temporary files in {temp_dir})" if temp_dir else "")
                ray.init(_temp_dir=temp_dir, include_dashboard=False, configure_logging=False)
            else:
                log.info("connecting to the Ray cluster at %s", address)
                ray.init(address=address, configure_logging=False)
        except Exception:
            log.exception("Ray could not start" if own_ray else "the Ray cluster at RAY_ADDRESS is unreachable")
            return 1
        # After ray.init: Ray's core installs its own SIGTERM handler, which exits at once.
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            serve.start(http_options={"host": host, "port": port})
            log.info(
                "deploying %s: default model %s, %s replica(s), %s CPU / %s GPU each",
                APP_NAME,
                settings.default_model,
                settings.serve_replicas or f"{settings.serve_min_replicas}-{settings.serve_max_replicas}",
                settings.serve_cpus_per_replica,
                settings.serve_gpus_per_replica,
            )
            serve.run(build_application(settings), name=APP_NAME, route_prefix="/", blocking=False)
        except Exception:
            log.exception("the inference service could not start")
            _shut_down(own_ray, APP_NAME)
            return 1
        log.info("inference service listening on http://%s:%d (POST /models/{checkpoint}, GET /health)", host, port)
        while not stop.wait(1.0):
            pass
        log.info("shutting down the inference service")
        _shut_down(own_ray, APP_NAME)
        return 0
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: a handler not installed from Python (Ray's); left as is
                signal.signal(sig, handler)


def _shut_down(own_ray: bool, app_name: str) -> None:
    import ray
    from ray import serve

    try:
        if own_ray:
            serve.shutdown()
        else:
            serve.delete(app_name)
    except Exception:
        log.exception("Serve did not shut down cleanly")
    finally:
        ray.shutdown()
