"""A Hugging Face Hub stand-in on 127.0.0.1 for the real huggingface_hub and transformers clients.

Usage (the ``fake_hub`` fixture of tests/conftest.py does the first two lines for a test)::

    with FakeHub() as hub, point_clients_at(hub.url, tmp_path / "hf-home"):
        hub.add_repo("someone/tiny-bert", bert_checkpoint, card="---\\nlanguage: en\\n---\\n# Tiny")
        AutoModelForMaskedLM.from_pretrained("someone/tiny-bert")       # through HTTP, for real
        hub.cut_short(r"model\\.safetensors$", after_bytes=1000)          # the next GET breaks off
        hub.find(method="GET", path=r"\\.bin$")                          # what was asked

It speaks the parts of the Hub's protocol that huggingface_hub 2.4 and transformers 5.24 use
(see ``handlers`` for the routes and error codes), serves repos built from local checkpoint
folders (``store``), injects faults (``faults``: 5xx/429, truncated and stalled bodies, slow
transfers; gated and private repos and renames are properties of the repos), and records every
request (``log``). It runs in its own thread (a ``ThreadingHTTPServer``), so the bot's loader
threads and async tests can both use it; it listens on 127.0.0.1 only, on a free port, and stops
when its ``with`` block or fixture ends, or at interpreter exit at the latest.

How the clients get here (``clients.point_clients_at``): the test session imports both clients
with HF_HUB_OFFLINE=1 and the real endpoint, and they copy both into module globals at import
(``constants.ENDPOINT``, ``HUGGINGFACE_CO_URL_TEMPLATE``, ``HF_URL_HOSTS``, ``HF_HUB_OFFLINE``,
the timeouts, ``utils._http._HUB_ORIGINS``, the module-level ``HfApi`` behind
``huggingface_hub.model_info`` & co, and transformers' shared ``hf_api()``). Setting HF_ENDPOINT
at the top of conftest.py for a port reserved in advance would also work, but it would point
every test of the session at that port, and a socket held open unserved makes stray calls hang
instead of failing. So each test gets its own server on a free port and the fixture patches those
globals for that test only (``HfApi()`` instances made during the test read ``constants.ENDPOINT``
then; ones made earlier keep their endpoint). transformers has no setting of its own:
``is_offline_mode`` is huggingface_hub's. The environment is set as well, for subprocesses.

Client facts worth knowing when writing tests: huggingface_hub writes (and reports to a tqdm_class)
downloads in ``constants.DOWNLOAD_CHUNK_SIZE`` pieces (10 MiB), so a file of the test checkpoints
arrives in one piece and a cut download resumes with ``Range`` from the last whole piece; patch that
constant to see progress or a real resume on small files. Back-off sleeps live in
``huggingface_hub.utils._http.time`` and ``huggingface_hub.file_download.time`` (see
tests/test_fake_hub.py's ``sleeps`` fixture).

Modules: ``store`` (repos, hashes, sha, computed metadata), ``handlers`` (HTTP routes),
``faults`` (what can go wrong), ``log`` (the request log), ``driver`` (``FakeHub``),
``clients`` (``point_clients_at``).
"""

from tests.fakehub.clients import point_clients_at
from tests.fakehub.driver import FakeHub
from tests.fakehub.faults import Fault
from tests.fakehub.log import LoggedRequest
from tests.fakehub.store import HubFile, HubRepo, git_blob_sha1, safetensors_parameters

__all__ = [
    "FakeHub",
    "Fault",
    "HubFile",
    "HubRepo",
    "LoggedRequest",
    "git_blob_sha1",
    "point_clients_at",
    "safetensors_parameters",
]
