"""Point the real huggingface_hub and transformers clients at a stand-in, online, for a while.

Both clients read their settings into module globals when first imported (and the test
session imports them with HF_HUB_OFFLINE=1), so setting environment variables later changes
nothing in this process. ``point_clients_at`` therefore patches every place the installed
versions (huggingface_hub 2.4, transformers 5.24) read them from at call time, and sets the
environment too so that a subprocess started meanwhile (which imports the clients afresh)
comes to the same stand-in. Everything is restored on exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest


@contextmanager
def point_clients_at(endpoint: str, home: Path, *, download_timeout: int = 3, etag_timeout: int = 5) -> Iterator[None]:
    """Online mode against ``endpoint``, with a fresh HF_HOME (and cache) at ``home``.

    Also: DISABLE_SAFETENSORS_CONVERSION=1 (transformers would otherwise call a conversion
    Space whose URL ignores HF_ENDPOINT), telemetry off (no user-agent registry fetch), no
    ambient token, and short read timeouts (``download_timeout`` for bodies, ``etag_timeout``
    for the HEAD before each download) so stalls show up within seconds.
    """
    import huggingface_hub.hf_api
    import huggingface_hub.utils._http as hub_http
    from huggingface_hub import constants

    endpoint = endpoint.rstrip("/")
    home = Path(home)
    cache = home / "hub"
    cache.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        # Subprocesses, and what the clients read from the environment at call time.
        for name, value in {
            "HF_ENDPOINT": endpoint,
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(cache),
            "HF_HUB_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0",
            "DISABLE_SAFETENSORS_CONVERSION": "1",  # read by transformers at call time
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DOWNLOAD_TIMEOUT": str(download_timeout),
            "HF_HUB_ETAG_TIMEOUT": str(etag_timeout),
        }.items():
            patch.setenv(name, value)
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HUGGINGFACE_CO_STAGING"):
            patch.delenv(name, raising=False)

        # huggingface_hub.constants: evaluated at import, read at call time as `constants.X`.
        for name, value in {
            "ENDPOINT": endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_URL_HOSTS": constants.HF_URL_HOSTS | {urlsplit(endpoint).hostname or ""},
            "HF_HUB_OFFLINE": False,
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(cache),
            "HUGGINGFACE_HUB_CACHE": str(cache),
            "HF_ASSETS_CACHE": str(home / "assets"),
            "HF_XET_CACHE": str(home / "xet"),
            "HF_TOKEN_PATH": str(home / "token"),
            "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
            "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
            "CHECK_FOR_UPDATE_DONE_PATH": str(home / ".check_for_update_done"),
            "CHECK_FOR_SKILL_UPDATE_DONE_PATH": str(home / ".check_for_skill_update_done"),
            "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_HUB_DOWNLOAD_TIMEOUT": download_timeout,
            "HF_HUB_ETAG_TIMEOUT": etag_timeout,
        }.items():
            patch.setattr(constants, name, value, raising=False)

        # Copies made at import: redirect origins, and the module-level HfApi behind
        # huggingface_hub.model_info / list_models / get_safetensors_metadata / ...
        patch.setattr(hub_http, "_HUB_ORIGINS", hub_http._HUB_ORIGINS | {hub_http._url_origin(endpoint)})
        patch.setattr(huggingface_hub.hf_api.api, "endpoint", endpoint)
        # transformers keeps one HfApi, made on first use with the endpoint of that moment:
        # drop it so this block makes its own, and the original comes back afterwards.
        import transformers.utils.hub as transformers_hub

        patch.setattr(transformers_hub, "_hf_api", None)

        # A plain client (a test may have left a mock transport), and no pooled connection
        # to a server of an earlier test.
        patch.setattr(hub_http, "_GLOBAL_CLIENT_FACTORY", hub_http.default_client_factory)
        hub_http.close_session()
        try:
            yield
        finally:
            hub_http.close_session()
