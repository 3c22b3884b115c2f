"""The repos the stand-in serves: files, hashes, commit sha and the metadata the Hub computes.

Everything a response needs is computed once, when a repo is added, so handlers only look
things up (the bot's loader threads and the test may hit the server at the same time).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

WeightsFormat = Literal["safetensors", "bin", "both"]
Gated = Literal[False, "auto", "manual"]

SAFETENSORS = "model.safetensors"
PYTORCH_BIN = "pytorch_model.bin"

# What the Hub's default .gitattributes sends to LFS (the subset a fill-mask checkpoint uses),
# plus anything over 10 MB, as the Hub's upload rules do.
LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".ot", ".npz")
LFS_MIN_SIZE = 10 * 1024 * 1024

GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)

# Fixed dates keep every answer (and so every sha) deterministic.
CREATED_AT = "2024-01-01T00:00:00.000Z"
LAST_MODIFIED = "2024-06-01T00:00:00.000Z"

# The properties `expand=` accepts for models (huggingface_hub's ExpandModelProperty_T).
EXPANDABLE = frozenset(
    {
        "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled", "downloads",
        "downloadsAllTime", "evalResults", "gated", "gguf", "inference", "inferenceProviderMapping", "lastModified",
        "library_name", "likes", "mask_token", "model-index", "pipeline_tag", "private", "resourceGroup",
        "safetensors", "sha", "siblings", "spaces", "tags", "transformersInfo", "trendingScore", "usedStorage",
        "widgetData",
    }
)  # fmt: skip

# Fields of GET /api/models/{id} without expand, and of each GET /api/models item.
INFO_FIELDS = (
    "_id", "id", "private", "pipeline_tag", "library_name", "tags", "downloads", "likes", "modelId", "author", "sha",
    "lastModified", "gated", "disabled", "mask_token", "widgetData", "model-index", "config", "cardData",
    "transformersInfo", "siblings", "spaces", "createdAt", "safetensors", "usedStorage",
)  # fmt: skip
LIST_FIELDS = ("_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag", "library_name", "createdAt", "modelId")  # fmt: skip


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which is what the Hub reports as a small file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class HubFile:
    """One file of a repo, with the hashes the Hub derives from it."""

    path: str
    data: bytes
    lfs: bool
    sha256: str
    blob_id: str  # git oid: of the LFS pointer for LFS files, of the content otherwise
    pointer_size: int

    @classmethod
    def from_bytes(cls, path: str, data: bytes) -> HubFile:
        sha256 = hashlib.sha256(data).hexdigest()
        lfs = path.endswith(LFS_SUFFIXES) or len(data) >= LFS_MIN_SIZE
        if lfs:
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()
            return cls(path, data, True, sha256, git_blob_sha1(pointer), len(pointer))
        return cls(path, data, False, sha256, git_blob_sha1(data), 0)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def etag(self) -> str:
        """What HEAD /resolve/ names the blob by: sha256 for LFS files, the git oid for others."""
        return self.sha256 if self.lfs else self.blob_id

    def lfs_json(self, *, tree: bool) -> dict[str, Any] | None:
        if not self.lfs:
            return None
        # The tree listing names the sha256 "oid"; model_info siblings name it "sha256".
        return {"oid" if tree else "sha256": self.sha256, "size": self.size, "pointerSize": self.pointer_size}


@dataclass
class HubRepo:
    """A model repo at a single commit (`main`), as the Hub would describe it."""

    repo_id: str
    files: dict[str, HubFile]
    sha: str
    downloads: int = 0
    likes: int = 0
    pipeline_tag: str | None = "fill-mask"
    library_name: str = "transformers"
    gated: Gated = False
    private: bool = False
    card_data: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    mask_token: str | None = None
    config: dict[str, Any] | None = None
    safetensors: dict[str, Any] | None = None

    @property
    def author(self) -> str | None:
        return self.repo_id.split("/")[0] if "/" in self.repo_id else None

    def revision_matches(self, revision: str) -> bool:
        return revision in ("main", self.sha)

    def directories(self) -> list[str]:
        found = {"/".join(path.split("/")[:i]) for path in self.files for i in range(1, path.count("/") + 1)}
        return sorted(found)

    def siblings(self, *, blobs: bool) -> list[dict[str, Any]]:
        if not blobs:
            return [{"rfilename": path} for path in sorted(self.files)]
        return [
            {"rfilename": f.path, "size": f.size, "blobId": f.blob_id, **({"lfs": f.lfs_json(tree=False)} if f.lfs else {})}
            for f in (self.files[p] for p in sorted(self.files))
        ]

    def value(self, name: str, *, blobs: bool = False) -> Any:
        """One property of the model's JSON (the names the Hub and `expand=` use)."""
        values: dict[str, Any] = {
            "_id": hashlib.sha1(self.repo_id.encode()).hexdigest()[:24],
            "id": self.repo_id,
            "modelId": self.repo_id,
            "author": self.author,
            "sha": self.sha,
            "private": self.private,
            "gated": self.gated,
            "disabled": False,
            "downloads": self.downloads,
            "downloadsAllTime": self.downloads,
            "likes": self.likes,
            "trendingScore": self.likes,
            "pipeline_tag": self.pipeline_tag,
            "library_name": self.library_name,
            "tags": self.tags,
            "mask_token": self.mask_token,
            "cardData": self.card_data,
            "config": self.config,
            "transformersInfo": (
                {"auto_model": "AutoModelForMaskedLM", "pipeline_tag": self.pipeline_tag, "processor": "AutoTokenizer"}
                if self.pipeline_tag == "fill-mask"
                else None
            ),
            "siblings": self.siblings(blobs=blobs),
            "spaces": [],
            "createdAt": CREATED_AT,
            "lastModified": LAST_MODIFIED,
            "safetensors": self.safetensors,
            "usedStorage": sum(f.size for f in self.files.values()),
            "widgetData": [{"text": f"Paris is the {self.mask_token} of France."}] if self.mask_token else None,
            "model-index": None,
            "baseModels": None,
            "childrenModelCount": 0,
            "evalResults": None,
            "gguf": None,
            "inference": None,
            "inferenceProviderMapping": None,
            "resourceGroup": None,
        }
        return values.get(name)

    def info(self, fields: Iterable[str], *, blobs: bool = False) -> dict[str, Any]:
        # The Hub leaves out what a model has none of (no safetensors, no card...).
        out = {name: self.value(name, blobs=blobs) for name in fields}
        return {k: v for k, v in out.items() if v is not None or k in ("_id", "id")}


def front_matter(card: str) -> dict[str, Any] | None:
    """The YAML header of a README, found the way huggingface_hub finds it."""
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    match = REGEX_YAML_BLOCK.search(card)
    if not match:
        return None
    data = yaml.safe_load(match.group(2))
    return data if isinstance(data, dict) else None


def _bin_from_safetensors(data: bytes) -> bytes:
    # Written once at add time with torch.save, so a repo with only pickled weights exists.
    import torch
    from safetensors.torch import load

    buffer = io.BytesIO()
    torch.save(load(data), buffer)
    return buffer.getvalue()


def _mask_token(files: Mapping[str, HubFile]) -> str | None:
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if name in files:
            token = json.loads(files[name].data).get("mask_token")
            if isinstance(token, dict):
                token = token.get("content")
            if isinstance(token, str):
                return token
    return None


def build_repo(
    repo_id: str,
    folder: Path,
    *,
    card: str | None,
    downloads: int,
    likes: int,
    pipeline_tag: str | None,
    language: str | list[str] | None,
    license: str | None,
    gated: bool | Gated,
    private: bool,
    weights: WeightsFormat,
) -> HubRepo:
    """A repo whose files are ``folder``'s (plus a .gitattributes, a README if ``card``, weights as asked)."""
    raw: dict[str, bytes] = {
        path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()
    }
    raw.setdefault(".gitattributes", GITATTRIBUTES.encode())
    if card is not None:
        raw["README.md"] = card.encode()
    if weights in ("bin", "both") and PYTORCH_BIN not in raw:
        if SAFETENSORS not in raw:
            raise ValueError(f"{folder} has no {SAFETENSORS} to make a {PYTORCH_BIN} from")
        raw[PYTORCH_BIN] = _bin_from_safetensors(raw[SAFETENSORS])
    if weights == "bin":
        raw.pop(SAFETENSORS, None)
    files = {path: HubFile.from_bytes(path, data) for path, data in raw.items()}
    # Stable per content: the same files give the same commit, in any process.
    sha = hashlib.sha1("".join(f"{p}\0{f.etag}\n" for p, f in sorted(files.items())).encode()).hexdigest()

    card_data = front_matter(card) if card else None
    languages = [language] if isinstance(language, str) else list(language or [])
    if languages or license:
        card_data = dict(card_data or {})
        if languages:
            card_data.setdefault("language", languages if len(languages) > 1 else languages[0])
        if license:
            card_data.setdefault("license", license)

    config_json = json.loads(files["config.json"].data) if "config.json" in files else {}
    model_type = config_json.get("model_type")
    card_tags = (card_data or {}).get("tags") or []
    card_languages = (card_data or {}).get("language") or []
    tags = [
        "transformers",
        *(["safetensors"] if SAFETENSORS in files else []),
        *(["pytorch"] if PYTORCH_BIN in files else []),
        *([model_type] if model_type else []),
        *([pipeline_tag] if pipeline_tag else []),
        *([card_tags] if isinstance(card_tags, str) else card_tags),
        *([card_languages] if isinstance(card_languages, str) else card_languages),
        *([f"license:{(card_data or {}).get('license')}"] if (card_data or {}).get("license") else []),
        "endpoints_compatible",
        "region:us",
    ]
    return HubRepo(
        repo_id=repo_id,
        files=files,
        sha=sha,
        downloads=downloads,
        likes=likes,
        pipeline_tag=pipeline_tag,
        gated="auto" if gated is True else gated,
        private=private,
        card_data=card_data,
        tags=list(dict.fromkeys(str(tag) for tag in tags)),
        mask_token=_mask_token(files),
        config={"architectures": config_json.get("architectures"), "model_type": model_type} if config_json else None,
        safetensors=safetensors_parameters(files[SAFETENSORS].data) if SAFETENSORS in files else None,
    )


def safetensors_parameters(data: bytes) -> dict[str, Any] | None:
    """`{"parameters": {dtype: n}, "total": n}` from a safetensors header, as the Hub computes it.

    None for a file that is not safetensors (the Hub then reports nothing either).
    """
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header: dict[str, Any] = json.loads(data[8 : 8 + length])
        counts: dict[str, int] = {}
        for name, tensor in header.items():
            if name != "__metadata__":
                counts[tensor["dtype"]] = counts.get(tensor["dtype"], 0) + math.prod(tensor["shape"])
    except (struct.error, ValueError, TypeError, KeyError, AttributeError):
        return None
    return {"parameters": counts, "total": sum(counts.values())}


class RepoStore:
    """Repos by id, and the ids renamed repos answered to before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._repos: dict[str, HubRepo] = {}
        self._renamed: dict[str, str] = {}

    def add(self, repo: HubRepo) -> None:
        with self._lock:
            self._repos[repo.repo_id] = repo
            self._renamed.pop(repo.repo_id, None)

    def get(self, repo_id: str) -> HubRepo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def renamed_to(self, repo_id: str) -> str | None:
        """The current id of a repo that was once called ``repo_id`` (None if it never was)."""
        with self._lock:
            return None if repo_id in self._repos else self._renamed.get(repo_id)

    def rename(self, old: str, new: str) -> HubRepo:
        with self._lock:
            repo = self._repos.pop(old)
            repo.repo_id = new
            self._repos[new] = repo
            # Earlier names of `old` now lead straight to `new`, as the Hub keeps every alias.
            self._renamed = {alias: (new if target == old else target) for alias, target in self._renamed.items()}
            self._renamed[old] = new
            self._renamed.pop(new, None)
            return repo

    def all(self) -> list[HubRepo]:
        with self._lock:
            return list(self._repos.values())
