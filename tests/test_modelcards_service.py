"""The model-card service on its own (no reply layer): markdown structure, front matter read by
huggingface_hub.ModelCard, Hub failures told apart, and the async ModelCardCache."""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import huggingface_hub
import huggingface_hub.file_download
import huggingface_hub.utils._http
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bot.service.model_cards as modelcards
from bot.service.model_cards import (
    ModelCardCache,
    ModelCardInfo,
    hub_problem,
    is_transient_failure,
    load_model_card,
    parse_model_card,
    split_front_matter,
)
from tests.fakehub import FakeHub

# The HTTP library huggingface_hub is built on (httpx2 for huggingface_hub 2.x), found the way
# its errors find it, so these tests need not name it.
HTTP: ModuleType = importlib.import_module(huggingface_hub.errors.Response.__module__.split(".")[0])


# -- markdown structure ----------------------------------------------------------------------


def test_indented_code_blocks_are_neither_summary_nor_limitations() -> None:
    text = (
        "    pip install this-model --upgrade and more words here\n\n"
        "A French model that fills in blanks.\n\n"
        "## Limitations\n\n"
        "    >>> unmasker('The man worked as a <mask>.')\n\n"
        "It repeats the stereotypes of its training data.\n"
    )
    info = parse_model_card(text, "a/b")
    assert info.summary == "A French model that fills in blanks."
    assert info.limitations == "It repeats the stereotypes of its training data."


def test_inline_markup_is_reduced_to_its_words() -> None:
    text = (
        "An *encoder* for `fill-mask`, **trained** on [OSCAR](https://oscar.example) &amp; <https://wiki.example>, "
        "predicting <mask> (or <s>) with <b>known</b> HTML<br/> gone ![badge](https://x/y.svg)\n"
    )
    info = parse_model_card(text, "a/b")
    assert info.summary == (
        "An encoder for fill-mask, trained on OSCAR & https://wiki.example, predicting <mask> (or <s>) with known HTML gone"
    )


def test_raw_html_blocks_tables_and_link_definitions_are_skipped() -> None:
    text = """\
<p align="center">A banner paragraph written as raw HTML, not markdown.</p>

| Model | Params | Data | Notes |
|-------|--------|------|-------|
| base  | 110M   | OSCAR | a row of many words |

[CamemBERT][cb] is a French model for filling blanks.

[cb]: https://camembert.example "CamemBERT"

## Risks

| Risk | Likelihood | Impact | Notes |
|------|------------|--------|-------|
| bias | high       | high   | words |

<div>
An HTML block inside the risks section.
</div>

It may be biased.
"""
    info = parse_model_card(text, "a/b")
    assert info.summary == "CamemBERT is a French model for filling blanks."
    assert info.limitations == "It may be biased."


def test_lists_quotes_and_headings_in_limitations() -> None:
    text = """\
> A quoted introduction that says what the model is.

Bias
====

1. First numbered risk.
2. Second numbered risk,
   continued.
   - a nested point

> A quoted warning.

* [More Information Needed]

# Next #

Other text.
"""
    info = parse_model_card(text, "a/b")
    assert info.summary == "A quoted introduction that says what the model is."  # a quote may be the summary
    assert info.limitations == (
        "1. First numbered risk.\n2. Second numbered risk, continued.\n  - a nested point\n\n> A quoted warning."
    )


def test_a_list_item_of_code_only_leaves_no_marker_behind() -> None:
    text = "## Risks\n\n- ```\n  unmasker('x')\n  ```\n-\n\nA plain risk paragraph.\n"
    assert parse_model_card(text, "a/b").limitations == "A plain risk paragraph."


def test_placeholder_lines_are_dropped_not_their_paragraph() -> None:
    text = "[More Information Needed]\nA model the author described after all.\n\n## Risks\n\n- [More Information Needed]\n- A real risk.\n"
    info = parse_model_card(text, "a/b")
    assert info.summary == "A model the author described after all."
    assert info.limitations == "- A real risk."


def test_a_list_is_never_the_summary() -> None:
    info = parse_model_card("- a list item with many words in it\n- another one\n\nThe prose that follows the list.\n", "a/b")
    assert info.summary == "The prose that follows the list."


def test_references_defined_after_a_long_card_still_resolve() -> None:
    filler = "".join(f"Filler paragraph number {i} of this card.\n\n" for i in range(3000))
    assert len(filler) > 3 * modelcards._CHUNK  # read in several chunks
    text = f"## Risks\n\nSee [the paper][p] for its biases.\n\n# Body\n\n{filler}[p]: https://paper.example\n"
    info = parse_model_card(text, "a/b")
    assert info.limitations == "See the paper for its biases."


def test_limitations_after_many_chunks_are_found() -> None:
    code = "```python\n" + "".join(f"# Limitations {i}\nx = {i}\n" for i in range(5000)) + "```\n"
    filler = "".join(f"- item {i}\n" for i in range(3000))
    text = f"A model that fills blanks well.\n\n{code}\n{filler}\n## Limitations\n\nThe real limitation.\n"
    assert len(text) > 4 * modelcards._CHUNK
    info = parse_model_card(text, "a/b")
    assert info.summary == "A model that fills blanks well."
    assert info.limitations == "The real limitation."  # not the "# Limitations" comments of the code


_PIECES = [
    "# Heading\n", "## Bias ##\n", "Bias\n", "===\n", "---\n", "para text here\n", "\n", "\n\n", "```\n", "~~~\n",
    "    indented code\n", "- item\n", "  continued\n", "1. one\n", "2) two\n", "> quote\n", "<!--\n", "-->\n",
    "<div>\n", "</div>\n", "<pre>\n", "</pre>\n", "| a | b |\n", "|---|---|\n", "[ref]: /url\n", '"title"\n',
    "text [ref] link\n", "* * *\n", "\t- tabbed\n", "<mask> alone\n",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=80), chunk=st.integers(min_value=1, max_value=64))
def test_reading_in_chunks_gives_the_tokens_of_one_parse(pieces: list[str], chunk: int) -> None:
    body = "".join(pieces)

    def shape(tokens: list) -> list[tuple[object, ...]]:
        return [(t.type, t.tag, t.level, t.nesting, t.content, t.markup, t.info) for t in tokens]

    whole = modelcards._MARKDOWN.parse(body, {})
    original = modelcards._CHUNK
    modelcards._CHUNK = chunk  # hypothesis runs examples in one test call: no monkeypatch fixture
    try:
        chunked = list(modelcards._block_tokens(body, {}))
    finally:
        modelcards._CHUNK = original
    assert shape(chunked) == shape(whole)


@pytest.mark.parametrize(
    "piece", ["- a\n", "a\n", "a\n\n", "> a\n", "a|b\n-|-\n", "|a|\n", "[a]: b\n", "1. a\n", "- \n", "=\n", "![", "\n"]
)
def test_cards_of_many_tiny_blocks_parse_in_bounded_time(piece: str) -> None:
    # markdown-it spends microseconds per line and per token: these are read only in part.
    text = "## Limitations\n" + piece * (1_000_000 // len(piece))
    started = time.perf_counter()
    parse_model_card(text, "a/b")
    parse_model_card(text[15:], "a/b")
    assert time.perf_counter() - started < 5


# -- front matter --------------------------------------------------------------------------


def test_front_matter_is_read_by_modelcard() -> None:
    metadata, body = split_front_matter("---\nlanguage:\n- fr\nlicense: mit\ntags: [a, a]\n---\n# Title\n")
    assert metadata == {"language": ["fr"], "license": "mit", "tags": ["a", "a"]}  # de-duplicated by _strings
    assert body == "# Title\n"
    assert parse_model_card("---\ntags: [a, A, b]\n---\n", "a/b").tags == ("a", "b")


def test_front_matter_never_logs_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    parse_model_card("# A card without metadata\n\nWords enough for a summary.\n", "a/b")
    parse_model_card("---\nmodel-index:\n- name: x\n  results: 3\neval_results: [1]\n---\nBody.\n", "a/b")
    assert [r for r in caplog.records if r.name.startswith("huggingface_hub")] == []


@pytest.mark.parametrize(
    "header",
    [
        "date: 2020-13-45",  # a timestamp YAML cannot build: ValueError
        "big: " + "9" * 5000,  # more digits than int() accepts: ValueError
        "nested: " + "[" * 5000 + "]" * 5000,  # RecursionError
        "ignore_metadata_errors: true",  # a keyword ModelCardData already has: TypeError
        "1: one\nlanguage: fr",  # a key that is not a string: TypeError (the whole header is lost)
    ],
)
def test_headers_modelcard_refuses_keep_the_body(header: str) -> None:
    info = parse_model_card(f"---\n{header}\n---\nA model for filling blanks.\n", "a/b")
    assert info.summary == "A model for filling blanks."
    assert info.languages == ()


def test_oversized_header_is_skipped_whole() -> None:
    header = "language: fr\nnotes: " + "x" * 200_001
    metadata, body = split_front_matter(f"---\n{header}\n---\nThe body.\n")
    assert (metadata, body) == ({}, "The body.\n")


def test_a_header_of_many_tags_is_read_in_linear_time() -> None:
    # ModelCardData de-duplicates tags in quadratic time (seconds for these); _CardData does not.
    header = "tags: [" + ",".join(f"t{i}" for i in range(30_000)) + "]"
    started = time.perf_counter()
    info = parse_model_card(f"---\n{header}\n---\nA model with many tags.\n", "a/b")
    assert time.perf_counter() - started < 3
    assert len(info.tags) == modelcards._MAX_LIST_ITEMS


def test_language_types_are_normalised() -> None:
    assert parse_model_card("---\nlanguage: fr\n---\n", "a/b").languages == ("fr",)
    assert parse_model_card("---\nlanguage: [fr, no, 42]\n---\n", "a/b").languages == ("fr", "no", "42")
    assert parse_model_card("---\nlanguages: [de]\n---\n", "a/b").languages == ("de",)


# -- Hub failures --------------------------------------------------------------------------


def _response(status: int, **headers: str) -> object:
    return huggingface_hub.errors.Response(status, headers=headers, request=HTTP.Request("GET", "https://huggingface.co/x"))


def _hub_error(name: str, status: int) -> Exception:
    return getattr(huggingface_hub.errors, name)("failed (hf_secret)", response=_response(status))


def _local_entry_error(cause: BaseException) -> Exception:
    try:
        raise huggingface_hub.errors.LocalEntryNotFoundError("no copy") from cause
    except huggingface_hub.errors.LocalEntryNotFoundError as exc:
        return exc


class GatedRepoError(Exception):
    """Named like a Hub error, but not one: matched by class, not by name, it is unknown."""


@pytest.mark.parametrize(
    ("make_error", "expected", "transient"),
    [
        (lambda: _hub_error("GatedRepoError", 403), "gated", False),  # before RepositoryNotFoundError, its base
        (lambda: _hub_error("RepositoryNotFoundError", 401), "no public model", False),
        (lambda: _hub_error("DisabledRepoError", 403), "disabled", False),
        (lambda: _hub_error("RevisionNotFoundError", 404), "no such version", False),
        (lambda: _hub_error("RemoteEntryNotFoundError", 404), "no card (README.md)", False),
        (lambda: huggingface_hub.errors.EntryNotFoundError("x"), "no card (README.md)", False),
        (lambda: _hub_error("HfHubHTTPError", 401), "won't let me", False),
        (lambda: _hub_error("HfHubHTTPError", 403), "won't let me", False),
        (lambda: _hub_error("HfHubHTTPError", 429), "try again in a few minutes", True),
        (lambda: _hub_error("HfHubHTTPError", 502), "having trouble", True),
        (lambda: _hub_error("HfHubHTTPError", 418), "couldn't read this model's card", True),
        (lambda: huggingface_hub.errors.OfflineModeIsEnabled("offline"), "no saved copy", True),
        (lambda: huggingface_hub.errors.LocalEntryNotFoundError("offline"), "no saved copy", True),
        (lambda: _local_entry_error(_hub_error("HfHubHTTPError", 429)), "try again in a few minutes", True),
        (lambda: _local_entry_error(_hub_error("HfHubHTTPError", 503)), "having trouble", True),
        (lambda: _local_entry_error(HTTP.ConnectError("down")), "no saved copy", True),
        (lambda: HTTP.ConnectError("down"), "can't reach the Hugging Face Hub right now: try", True),
        (lambda: HTTP.ConnectTimeout("slow"), "can't reach the Hugging Face Hub right now: try", True),
        (lambda: HTTP.ReadTimeout("slow"), "can't reach the Hugging Face Hub right now: try", True),
        (lambda: HTTP.RemoteProtocolError("cut"), "can't reach the Hugging Face Hub right now: try", True),
        (lambda: TimeoutError(), "can't reach the Hugging Face Hub right now: try", True),
        (lambda: GatedRepoError(), "couldn't read this model's card", True),
    ],
)
def test_each_hub_failure_is_told_as_what_it_is(make_error: Callable[[], Exception], expected: str, transient: bool) -> None:
    problem = hub_problem(make_error())
    assert expected in str(problem)
    assert "hf_secret" not in str(problem)
    info = ModelCardInfo("a/b", source="none", problem=problem)
    assert is_transient_failure(info) is transient


class _HubTime:
    """The time module as the Hub client sees it, minus the sleeping: its back-off waits are recorded."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def hub_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The Hub client's back-off sleeps, recorded instead of slept (in its modules only, not the stand-in's)."""
    fake = _HubTime()
    monkeypatch.setattr(huggingface_hub.utils._http, "time", fake)
    monkeypatch.setattr(huggingface_hub.file_download, "time", fake)
    return fake.sleeps


CARD = "---\nlanguage: fr\nlicense: mit\n---\nA French model that fills in blanks.\n"


@pytest.mark.parametrize(
    ("arm", "expected"),
    [
        # Retried, then raised as LocalEntryNotFoundError from the 429 (no Retry-After: the plain back-off).
        (lambda hub, folder: hub.fail(r"README\.md$", 429, times=None, retry_after=None), "try again in a few minutes"),
        (lambda hub, folder: hub.fail(r"README\.md$", 503, times=None), "having trouble"),
        (lambda hub, folder: None, "no public model"),  # no such repo: 401 RepoNotFound
        # The Hub answers 401 for private and missing repos alike.
        (lambda hub, folder: hub.add_repo("someone/model", folder, card=CARD, private=True), "no public model"),
        (lambda hub, folder: hub.add_repo("someone/model", folder, card=CARD, gated=True), "gated"),  # 401 GatedRepo
        (lambda hub, folder: hub.add_repo("someone/model", folder), "no card (README.md)"),  # 404 EntryNotFound
        (lambda hub, folder: hub.fail(r"README\.md$", 403, times=None), "won't let me"),  # LocalEntryNotFoundError from the 403
    ],
    ids=["429", "503", "missing", "private", "gated", "no-readme", "403"],
)
def test_hub_download_failures_through_the_real_client(
    fake_hub: FakeHub, tmp_path: Path, hub_sleeps: list[float], arm: Callable[[FakeHub, Path], object], expected: str
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    arm(fake_hub, folder)
    info = load_model_card("someone/model", local=False)
    assert info.source == "none"
    assert info.problem and expected in str(info.problem)
    # 429 and 5xx are retried with back-off before giving up: a thread held for about 23 s,
    # which is why ModelCardCache keeps such failures for a while (retry_after).
    assert (sum(hub_sleeps) > 10) is is_transient_failure(info)
    assert fake_hub.find(method="HEAD", path=r"^/someone/model/resolve/main/README\.md$")  # (it may also ask other things)


def test_a_hub_card_through_the_real_client(fake_hub: FakeHub, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "camembert"}')
    fake_hub.add_repo("someone/model", tmp_path, card=CARD)
    info = load_model_card("someone/model", local=False)
    assert (info.source, info.license, info.languages) == ("hub", "mit", ("fr",))
    assert info.summary == "A French model that fills in blanks."


def test_unreachable_hub_through_the_real_client(fake_hub: FakeHub, hub_sleeps: list[float]) -> None:
    fake_hub.stop()  # the clients still point at its port, where nothing listens now
    info = load_model_card("someone/model", local=False)
    assert info.problem and "can't reach the Hugging Face Hub" in str(info.problem)
    assert is_transient_failure(info)
    assert sum(hub_sleeps) > 10  # a refused connection is retried with the same back-off


# -- the cache -------------------------------------------------------------------------------


class FakeLoader:
    """A blocking loader that counts its calls (by name) and records the threads it ran in."""

    def __init__(self, delay: float = 0.0, results: list[ModelCardInfo] | None = None) -> None:
        self.delay = delay
        self.results = results or []
        self.calls: list[tuple[str, bool]] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, checkpoint: str, *, local: bool) -> ModelCardInfo:
        with self._lock:
            self.calls.append((checkpoint, local))
            self.threads.add(threading.get_ident())
            result = self.results.pop(0) if self.results else None
        time.sleep(self.delay)
        return result or ModelCardInfo(checkpoint, summary=f"card {len(self.calls)}", source="local" if local else "hub")


def _unreachable(checkpoint: str = "a/b") -> ModelCardInfo:
    return ModelCardInfo(checkpoint, source="none", problem=hub_problem(HTTP.ConnectError("down")))


async def test_concurrent_gets_for_one_name_share_one_fetch_in_a_thread() -> None:
    loader = FakeLoader(delay=0.2)
    cache = ModelCardCache(loader=loader)
    results = await asyncio.gather(*(cache.get("a/b", local=False) for _ in range(10)))
    assert loader.calls == [("a/b", False)]
    assert all(result is results[0] for result in results)
    assert loader.threads and threading.get_ident() not in loader.threads
    assert await cache.get("a/b", local=False) is results[0]
    assert len(loader.calls) == 1


async def test_names_and_sources_are_cached_apart() -> None:
    loader = FakeLoader()
    cache = ModelCardCache(loader=loader)
    await asyncio.gather(cache.get("a/b", local=False), cache.get("a/b", local=True), cache.get("c/d", local=False))
    assert sorted(loader.calls) == [("a/b", False), ("a/b", True), ("c/d", False)]


async def test_the_least_recently_used_card_is_evicted() -> None:
    loader = FakeLoader()
    cache = ModelCardCache(maxsize=2, loader=loader)
    for name in ("a/1", "a/2", "a/1", "a/3"):  # a/1 used again before a/3 comes: a/2 goes
        await cache.get(name, local=False)
        assert len(cache) <= 2
    assert [name for name, _ in loader.calls] == ["a/1", "a/2", "a/3"]
    await cache.get("a/1", local=False)
    await cache.get("a/2", local=False)
    assert [name for name, _ in loader.calls] == ["a/1", "a/2", "a/3", "a/2"]
    assert len(cache) == 2


async def test_cards_expire_after_the_ttl() -> None:
    loader = FakeLoader()
    cache = ModelCardCache(ttl=0.1, loader=loader)
    first = await cache.get("a/b", local=False)
    assert await cache.get("a/b", local=False) is first
    await asyncio.sleep(0.2)
    assert await cache.get("a/b", local=False) is not first
    assert len(loader.calls) == 2


async def test_a_transient_failure_is_kept_only_briefly() -> None:
    loader = FakeLoader(delay=0.05, results=[_unreachable()])
    cache = ModelCardCache(retry_after=0.2, loader=loader)
    failures = await asyncio.gather(*(cache.get("a/b", local=False) for _ in range(5)))
    assert len(loader.calls) == 1 and not failures[0].has_card
    assert not (await cache.get("a/b", local=False)).has_card  # within retry_after: not asked again
    assert len(loader.calls) == 1
    await asyncio.sleep(0.25)
    cards = await asyncio.gather(*(cache.get("a/b", local=False) for _ in range(5)))
    assert len(loader.calls) == 2  # the callers after retry_after shared one new fetch
    assert all(card.has_card for card in cards)
    await asyncio.sleep(0.25)
    await cache.get("a/b", local=False)
    assert len(loader.calls) == 2  # a card, kept for the ttl


async def test_a_lasting_failure_is_kept_for_the_ttl() -> None:
    missing = ModelCardInfo("a/b", source="none", problem=hub_problem(_hub_error("RepositoryNotFoundError", 404)))
    loader = FakeLoader(results=[missing])
    cache = ModelCardCache(retry_after=0.01, loader=loader)
    assert await cache.get("a/b", local=False) is missing
    await asyncio.sleep(0.05)
    assert await cache.get("a/b", local=False) is missing
    assert len(loader.calls) == 1


async def test_a_loader_that_raises_gives_no_card_and_is_retried() -> None:
    calls: list[str] = []

    def broken(checkpoint: str, *, local: bool) -> ModelCardInfo:
        calls.append(checkpoint)
        raise RuntimeError("boom")

    cache = ModelCardCache(retry_after=0.05, loader=broken)
    info = await cache.get("a/b", local=False)
    assert info.source == "none" and info.problem and is_transient_failure(info)
    await asyncio.sleep(0.1)
    await cache.get("a/b", local=False)
    assert calls == ["a/b", "a/b"]


async def test_the_default_loader_is_load_model_card(monkeypatch: pytest.MonkeyPatch) -> None:
    loader = FakeLoader()
    monkeypatch.setattr(modelcards, "load_model_card", loader)
    cache = ModelCardCache()
    assert (await cache.get("a/b", local=True)).source == "local"
    assert loader.calls == [("a/b", True)]


async def test_invalidate_clear_and_close() -> None:
    loader = FakeLoader()
    cache = ModelCardCache(loader=loader)
    await cache.get("a/b", local=False)
    assert cache.invalidate("a/b", local=False) is True
    assert cache.invalidate("a/b", local=False) is False
    await cache.get("a/b", local=False)
    cache.clear()
    assert len(cache) == 0
    await cache.get("a/b", local=False)
    assert len(loader.calls) == 3
    await cache.close()
    with pytest.raises(RuntimeError):
        await cache.get("a/b", local=False)
