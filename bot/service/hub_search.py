"""Searching the Hugging Face Hub for fill-mask models: ``model search`` and ``model set``'s autocomplete.

:func:`search_fill_mask_models` asks the Hub's model listing (``GET /api/models``, the request
``HfApi.list_models(pipeline_tag="fill-mask", search=..., sort="downloads", limit=..., expand=[...])``
sends) for the fill-mask models whose id contains some words, most downloaded first, following
its pages, and keeps those whose card or tags name a language when one is asked for (the
installed huggingface_hub has no ``language`` parameter; the code also goes to the Hub as a
``filter``, as older clients sent it, and the check is repeated here in case it was ignored).
It is blocking; :class:`HubSearch` runs it in its own small thread pool, within a deadline,
shares one request between callers asking the same, and keeps answers a few minutes.

The request goes through huggingface_hub's own client (its session, headers, offline mode and
errors), but not through ``list_models`` itself: that retries a 5xx or a 429 five times over
about 23 s and has no timeout, where a chat command needs an answer, or a plain "the Hub is
down", in a few seconds.

Everything the Hub returns was written by strangers (ids, card fields): kept as plain text,
escaped by the reply layer. No Discord import here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from async_lru import alru_cache
from huggingface_hub import ModelCardData, ModelInfo
from huggingface_hub import constants as hub_constants
from huggingface_hub import errors as hub_errors

from bot.i18n import Message, Text, _, lazy, lazy_plural, ngettext
from bot.inference.checkpoint_policy import is_hub_id, matches_allowed
from bot.inference.errors import InvalidRequestError
from bot.service.catalog import CatalogEntry

log = logging.getLogger(__name__)

TASK = "fill-mask"
MAX_WORDS_CHARS = 100  # the Hub's search box takes words, not essays
MAX_RESULTS = 100  # matches kept per search (a reply shows the first few)
PAGE_SIZE = 100  # the `limit` sent: models per page
MAX_PAGES = 5  # pages read per search at most (a language filter may drop most of a page)
SEARCH_DEADLINE = 8.0  # seconds for a whole search, every page included
REQUEST_TIMEOUT = 5.0  # seconds for one request (connect, read...)
SUGGEST_LIMIT = 50  # models asked for per autocomplete prefix (one page)
SUGGEST_DEADLINE = 4.0
SUGGEST_WAIT = 1.0  # seconds an autocomplete waits for the Hub before answering from the curated list
MIN_SUGGEST_CHARS = 2  # shorter prefixes are answered from the curated list
_EXPAND = ["downloads", "likes", "cardData", "tags", "pipeline_tag", "gated", "private"]

# -- failures, in plain words ------------------------------------------------------------
# Messages, translated when shown: an answer is kept a few minutes for every server asking.

OFFLINE = lazy(
    "Searching needs the Hugging Face Hub, and this bot runs offline (the owner set HF_HUB_OFFLINE), "
    "so I can't search it. `model list` shows the models on offer."
)
UNREACHABLE = lazy("I can't reach the Hugging Face Hub right now, so I can't search it: try again in a few minutes.")
TOO_SLOW = lazy("The Hugging Face Hub didn't answer in time, so I can't search it right now: try again in a few minutes.")
RATE_LIMITED = lazy("The Hugging Face Hub is limiting how often I can ask: try searching again in a few minutes.")
FORBIDDEN = lazy("The Hugging Face Hub won't let me search it (it refused the bot's access): the bot owner can check its token.")
UNKNOWN = lazy("I couldn't search the Hugging Face Hub just now: try again later.")


def hub_down(status: int) -> Message:
    return lazy(
        "I can't reach the Hugging Face Hub right now: it answered with an error on its side (HTTP {status}), "
        "so I can't search it. Try again in a few minutes.",
        status=status,
    )


# Transport failures (no answer from the Hub), matched by class name: huggingface_hub 2.x
# raises httpx2's, 1.x httpx's, 0.x requests' (see bot.service.model_cards).
_TRANSPORT_ERRORS = frozenset({"TransportError", "TimeoutException", "ConnectionError", "Timeout", "NetworkError"})


def search_problem(exc: BaseException) -> Message:
    """A failed Hub search in plain words (no exception text: it may hold URLs or tokens)."""
    if isinstance(exc, hub_errors.OfflineModeIsEnabled):
        return OFFLINE
    if isinstance(exc, TimeoutError):  # our deadline (the client's own timeouts are transport errors)
        return TOO_SLOW
    if isinstance(exc, hub_errors.HfHubHTTPError):
        status = getattr(exc.response, "status_code", None)
        if isinstance(status, int):
            if status == 429:
                return RATE_LIMITED
            if status >= 500:
                return hub_down(status)
            if status in (401, 403):
                return FORBIDDEN
        return UNKNOWN
    if isinstance(exc, ConnectionError) or {c.__name__ for c in type(exc).__mro__} & _TRANSPORT_ERRORS:
        return UNREACHABLE
    return UNKNOWN


def is_offline() -> bool:
    """huggingface_hub's offline mode (HF_HUB_OFFLINE), read now: tests and callers may change it."""
    return bool(hub_constants.HF_HUB_OFFLINE)


# -- languages ---------------------------------------------------------------------------

# ISO 639-1: the two-letter codes model cards use. A search's last word is taken as its
# language only when it is one of these (or a name below), so "bert base" stays two words.
_ISO_639_1 = frozenset(
    {
        "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh", "bi", "bm", "bn",
        "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da", "de", "dv", "dz", "ee", "el", "en",
        "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr", "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he",
        "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv",
        "ka", "kg", "ki", "kj", "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li",
        "ln", "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb", "nd", "ne",
        "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi", "pl", "ps", "pt", "qu", "rm",
        "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk", "sl", "sm", "sn", "so", "sq", "sr", "ss", "st",
        "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk",
        "ur", "uz", "ve", "vi", "vo", "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
    }
)  # fmt: skip
_LANGUAGE_NAMES = {
    "arabic": "ar", "bulgarian": "bg", "catalan": "ca", "chinese": "zh", "czech": "cs", "danish": "da",
    "dutch": "nl", "english": "en", "estonian": "et", "finnish": "fi", "french": "fr", "german": "de",
    "greek": "el", "hebrew": "he", "hindi": "hi", "hungarian": "hu", "indonesian": "id", "italian": "it",
    "japanese": "ja", "korean": "ko", "latvian": "lv", "lithuanian": "lt", "norwegian": "no", "persian": "fa",
    "polish": "pl", "portuguese": "pt", "romanian": "ro", "russian": "ru", "slovak": "sk", "slovenian": "sl",
    "spanish": "es", "swedish": "sv", "thai": "th", "turkish": "tr", "ukrainian": "uk", "urdu": "ur",
    "vietnamese": "vi", "multilingual": "multilingual",
}  # fmt: skip
# A card's language: "fr", "fra", "fr-CA", "zh_Hans"...
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{2,8})?$")
_LANGUAGE_OPTION = re.compile(r"^(?:lang|language)[:=](.*)$", re.I)


def language_code(language: str) -> str:
    """``language`` as the code cards use ("French" → "fr", "FR" → "fr"); raises when it is none."""
    text = " ".join(language.split()).lower()
    option = _LANGUAGE_OPTION.match(text)
    if option:
        text = option.group(1).strip()
    code = _LANGUAGE_NAMES.get(text, text)
    if code == "multilingual" or _LANGUAGE_CODE.match(code):
        return code.replace("_", "-")
    raise InvalidRequestError(
        lazy(
            "That isn't a language I can search for: give a language code such as `fr`, `en` or `de` "
            "(or a name such as `French`)."
        )
    )


@dataclass(frozen=True, slots=True)
class SearchTerms:
    words: str
    language: str | None  # a code ("fr"), or None for any language


def parse_terms(words: str, language: str | None = None) -> SearchTerms:
    """What a member asked for: ``camembert fr`` is words "camembert" in French.

    A ``language:fr`` (or ``lang=fr``) word anywhere, or a last word that is a two-letter
    language code or a language name, is the language, unless ``language`` is given.
    Raises :class:`InvalidRequestError` for nothing to search, or a language that is none.
    """
    parts = words.split()
    chosen = language.strip() if language and language.strip() else None
    kept: list[str] = []
    for part in parts:
        option = _LANGUAGE_OPTION.match(part)
        if option and chosen is None:
            chosen = option.group(1)
        elif not option:
            kept.append(part)
    if chosen is None and len(kept) > 1 and (kept[-1].lower() in _ISO_639_1 or kept[-1].lower() in _LANGUAGE_NAMES):
        chosen = kept.pop()
    text = " ".join(kept)
    if not text:
        raise InvalidRequestError(lazy("Tell me what to search for, e.g. `model search camembert fr` or `model search bert`."))
    if len(text) > MAX_WORDS_CHARS:
        raise InvalidRequestError(
            lazy_plural(
                "That's a long search: keep it under {n} character.",
                "That's a long search: keep it under {n} characters.",
                MAX_WORDS_CHARS,
            )
        )
    return SearchTerms(text, language_code(chosen) if chosen is not None else None)


def search_url(terms: SearchTerms) -> str:
    """The same search on the Hub's website (its address percent-encodes the member's words)."""
    query = f"pipeline_tag={TASK}&sort=downloads&search={quote(terms.words, safe='')}"
    if terms.language and terms.language != "multilingual":
        query += f"&language={quote(terms.language, safe='')}"
    return f"{hub_constants.ENDPOINT}/models?{query}"


# -- what the Hub says about a model -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubModel:
    """One fill-mask model the Hub listed (untrusted text, as the Hub sent it)."""

    id: str
    downloads: int | None = None
    likes: int | None = None
    languages: tuple[str, ...] = ()
    license: str | None = None
    gated: bool = False


@dataclass(frozen=True, slots=True)
class HubListing:
    models: tuple[HubModel, ...]
    # Whether the Hub has no more matches than these (every page read, none cut).
    complete: bool


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, (list, tuple)):
        return tuple(item for item in value if isinstance(item, str) and item.strip())
    return ()


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def hub_model(info: ModelInfo) -> HubModel | None:
    """What a reply shows of a listed model; None for what is not a public fill-mask model."""
    model_id = info.id
    if not isinstance(model_id, str) or not is_hub_id(model_id):
        return None
    if info.private is True or (info.pipeline_tag is not None and info.pipeline_tag != TASK):
        return None
    card = info.card_data if isinstance(info.card_data, ModelCardData) else None
    tags = _strings(info.tags)
    languages = _strings(card.language) if card is not None else ()
    if not languages:
        languages = tuple(
            tag.split(":", 1)[1] if tag.lower().startswith("language:") else tag
            for tag in tags
            if tag.lower() in _ISO_639_1 or tag.lower().startswith("language:") or tag.lower() == "multilingual"
        )
    licenses = _strings(card.license) if card is not None else ()
    if not licenses:
        licenses = tuple(tag.split(":", 1)[1] for tag in tags if tag.lower().startswith("license:"))
    return HubModel(
        id=model_id,
        downloads=_count(info.downloads),
        likes=_count(info.likes),
        languages=tuple(dict.fromkeys(languages)),
        license=licenses[0] if licenses else None,
        gated=bool(info.gated),
    )


def speaks(model: HubModel, info: ModelInfo | None, language: str) -> bool:
    """Whether ``model`` is for ``language`` (a code): its card's languages, or its tags."""
    names = {name.lower().replace("_", "-") for name in model.languages}
    if info is not None:
        for tag in _strings(info.tags):
            tag = tag.lower()
            names.add(tag.split(":", 1)[1] if tag.startswith("language:") else tag)
    return any(name == language or name.startswith(f"{language}-") for name in names)


class PageFetcher(Protocol):
    def __call__(self, url: str, params: dict[str, Any] | None, timeout: float) -> tuple[list[Any], str | None]: ...


def fetch_page(url: str, params: dict[str, Any] | None, timeout: float) -> tuple[list[Any], str | None]:
    """One page of the Hub's model listing and the next page's address, through huggingface_hub's client.

    Not retried (see the module's docstring). Raises the client's errors: ``OfflineModeIsEnabled``,
    ``HfHubHTTPError`` (with the status), transport errors.
    """
    import huggingface_hub.utils as hub_utils  # attribute lookup at call time, like list_models'

    response = hub_utils.http_backoff(
        "GET",
        url,
        params=params,
        headers=hub_utils.build_hf_headers(),
        timeout=timeout,
        max_retries=0,
    )
    hub_utils.hf_raise_for_status(response)
    body = response.json()
    next_page = response.links.get("next", {}).get("url")
    return (body if isinstance(body, list) else []), (next_page if isinstance(next_page, str) else None)


def _model_infos(items: Iterable[Any]) -> Iterator[ModelInfo]:
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        item.setdefault("siblings", None)
        try:
            yield ModelInfo(**item)
        except Exception:  # one odd entry must not lose the others
            log.debug("skipping a model the Hub listed oddly", exc_info=True)


def search_fill_mask_models(
    terms: SearchTerms,
    *,
    limit: int = MAX_RESULTS,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES,
    deadline: float = SEARCH_DEADLINE,
    fetch: PageFetcher | None = None,
) -> HubListing:
    """The Hub's fill-mask models whose id contains ``terms.words``, most downloaded first.

    Blocking: at most ``max_pages`` requests, each within what is left of ``deadline`` seconds.
    Raises what the Hub client raises (see :func:`search_problem`), or TimeoutError.
    """
    if is_offline():
        raise hub_errors.OfflineModeIsEnabled("offline mode is enabled")
    fetch = fetch or fetch_page
    query: dict[str, Any] = {
        "pipeline_tag": TASK,
        "search": terms.words,
        "sort": "downloads",
        "limit": page_size,
        "expand": _EXPAND,
    }
    if terms.language and terms.language != "multilingual":
        query["filter"] = [terms.language]
    params: dict[str, Any] | None = query
    url: str | None = f"{hub_constants.ENDPOINT}/api/models"
    started = time.monotonic()
    found: dict[str, tuple[int, HubModel]] = {}
    pages = 0
    while url is not None and pages < max_pages and len(found) < limit:
        remaining = deadline - (time.monotonic() - started)
        if remaining <= 0:
            if pages:
                break  # show what came
            raise TimeoutError
        items, url = fetch(url, params, min(REQUEST_TIMEOUT, remaining))
        params = None  # the next page's address holds the query
        pages += 1
        for info in _model_infos(items):
            model = hub_model(info)
            if model is None or model.id.lower() in found:
                continue
            if terms.language and not speaks(model, info, terms.language):
                continue
            found[model.id.lower()] = (len(found), model)
            if len(found) >= limit:
                break
    # Most downloaded first, as the Hub sorted them (a stand-in or an older Hub may not).
    ranked = sorted(found.values(), key=lambda item: (-(item[1].downloads or 0), item[0]))
    return HubListing(tuple(model for _, model in ranked), complete=url is None and len(found) < limit)


# -- cached, off the event loop ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    listing: HubListing | None
    problem: Message | None  # when the Hub could not be asked
    retry_at: float | None  # loop time after which a failure is asked again


class _HubUnavailableError(Exception):
    pass


class Searcher(Protocol):
    def __call__(self, terms: SearchTerms, *, limit: int, max_pages: int, deadline: float) -> HubListing: ...


def _default_searcher(terms: SearchTerms, *, limit: int, max_pages: int, deadline: float) -> HubListing:
    page_size = min(PAGE_SIZE, limit)
    return search_fill_mask_models(terms, limit=limit, page_size=page_size, max_pages=max_pages, deadline=deadline)


class HubSearch:
    """Hub searches, run in a thread and kept a while; one instance per event loop.

    Searches are kept ``ttl`` seconds per (words, language), at most ``maxsize`` of them;
    autocomplete prefixes likewise. A failure (Hub unreachable, 5xx, 429, too slow) is kept
    ``retry_after`` seconds, and for that long the Hub counts as down: autocompletes answer
    from the curated list without asking it. Each request holds one of ``workers`` threads,
    so a hung Hub cannot take more than that.
    """

    def __init__(
        self,
        *,
        maxsize: int = 128,
        ttl: float = 300.0,
        retry_after: float = 30.0,
        workers: int = 2,
        searcher: Searcher | None = None,
        suggest_wait: float = SUGGEST_WAIT,
    ) -> None:
        self.retry_after = retry_after
        self.suggest_wait = suggest_wait
        self._searcher = searcher or _default_searcher
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub-search")
        self._down_until = 0.0
        self._closed = False
        self._background: set[asyncio.Task[_Answer]] = set()
        self._search_cached = alru_cache(maxsize=maxsize, ttl=ttl)(self._search)
        self._suggest_cached = alru_cache(maxsize=maxsize, ttl=ttl)(self._suggest)

    def hub_available(self) -> bool:
        """Whether to ask the Hub now: online, and no failure in the last ``retry_after`` seconds."""
        return not is_offline() and asyncio.get_running_loop().time() >= self._down_until

    async def search(self, terms: SearchTerms) -> tuple[HubListing | None, Message | None]:
        """``(listing, None)``, or ``(None, problem)`` when the Hub could not be asked. Never raises
        but RuntimeError once closed."""
        if is_offline():
            return None, OFFLINE
        key = (terms.words.lower(), terms.language)
        answer = await self._search_cached(*key)
        if answer.retry_at is not None and asyncio.get_running_loop().time() >= answer.retry_at:
            self._search_cached.cache_invalidate(*key)
            answer = await self._search_cached(*key)
        return answer.listing, answer.problem

    async def suggest(self, prefix: str) -> tuple[HubModel, ...] | None:
        """Hub models for what a member is typing, or None (offline, down, slow, too short).

        Waits at most ``suggest_wait`` seconds; a slower request goes on in the background and
        fills the cache for the member's next keystroke.
        """
        key = " ".join(prefix.split()).lower()[:MAX_WORDS_CHARS]
        if len(key) < MIN_SUGGEST_CHARS or self._closed or not self.hub_available():
            return None
        task: asyncio.Task[_Answer] = asyncio.ensure_future(self._suggest_cached(key))
        if not task.done():
            self._background.add(task)
            task.add_done_callback(self._finished)
            await asyncio.wait({task}, timeout=self.suggest_wait)
            if not task.done():
                return None
        if task.cancelled() or task.exception() is not None:
            return None
        listing = task.result().listing
        return listing.models if listing is not None else None

    def _finished(self, task: asyncio.Task[_Answer]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # read: a failure was logged where it happened

    def clear(self) -> None:
        """Forget every answer, failures included (the Hub counts as up again)."""
        self._search_cached.cache_clear()
        self._suggest_cached.cache_clear()
        self._down_until = 0.0

    async def close(self) -> None:
        """Cancel the searches in flight (their threads finish unawaited) and refuse new ones."""
        self._closed = True
        for task in list(self._background):
            task.cancel()
        await self._search_cached.cache_close()
        await self._suggest_cached.cache_close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _search(self, words: str, language: str | None) -> _Answer:
        terms = SearchTerms(words, language)
        return await self._ask(terms, limit=MAX_RESULTS, max_pages=MAX_PAGES, deadline=SEARCH_DEADLINE)

    async def _suggest(self, prefix: str) -> _Answer:
        answer = await self._ask(SearchTerms(prefix, None), limit=SUGGEST_LIMIT, max_pages=1, deadline=SUGGEST_DEADLINE)
        if answer.problem is not None:
            # Not kept: the Hub counts as down for a while (hub_available), then is asked again.
            raise _HubUnavailableError(answer.problem)
        return answer

    async def _ask(self, terms: SearchTerms, *, limit: int, max_pages: int, deadline: float) -> _Answer:
        loop = asyncio.get_running_loop()

        def run() -> HubListing:
            return self._searcher(terms, limit=limit, max_pages=max_pages, deadline=deadline)

        try:
            # The thread's own deadline bounds its requests; this one bounds the wait (a
            # queued request, a stuck read) and leaves the thread to finish by itself.
            listing = await asyncio.wait_for(loop.run_in_executor(self._executor, run), deadline + 2.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure becomes a sentence
            problem = search_problem(exc)
            log.info("Hub search for %r failed: %s: %s", terms.words, type(exc).__name__, problem)
            log.debug("Hub search failure", exc_info=True)
            if problem == OFFLINE:
                return _Answer(None, problem, loop.time())  # asked again as soon as online
            self._down_until = max(self._down_until, loop.time() + self.retry_after)
            return _Answer(None, problem, loop.time() + self.retry_after)
        return _Answer(listing, None, None)


# -- the owner's allow-list --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelSearch:
    """A ``model search``'s answer, the owner's allow-list applied."""

    terms: SearchTerms
    models: tuple[HubModel, ...]  # allowed, most downloaded first
    left_out: int  # matches the allow-list does not allow
    filtered: bool  # whether an allow-list applies
    complete: bool  # the Hub has no more matches than it sent
    problem: Text | None  # the Hub could not be asked: why, in words (a Message, translated when shown)
    url: str  # the same search on the Hub's website


def allowed_only(
    models: Iterable[HubModel], allowed_models: tuple[str, ...], *, always: tuple[str, ...] = ()
) -> tuple[list[HubModel], int]:
    """The models the owner's ALLOWED_MODELS allow (all with none), and how many it leaves out.
    The ids in ``always`` (the owner's default model) are allowed whatever the list says."""
    patterns = [pattern.strip() for pattern in allowed_models if pattern and pattern.strip()]
    exempt = {name.lower() for name in always}
    kept: list[HubModel] = []
    left_out = 0
    for model in models:
        if not patterns or model.id.lower() in exempt or any(matches_allowed(model.id, p) for p in patterns):
            kept.append(model)
        else:
            left_out += 1
    return kept, left_out


def model_search(
    terms: SearchTerms,
    listing: HubListing | None,
    problem: Text | None,
    allowed_models: tuple[str, ...],
    *,
    always: tuple[str, ...] = (),
) -> ModelSearch:
    """A search's answer: the Hub's listing with the allow-list applied, or why there is none."""
    filtered = any(name.strip() for name in allowed_models)
    if listing is None:
        return ModelSearch(terms, (), 0, filtered, False, problem or UNKNOWN, search_url(terms))
    kept, left_out = allowed_only(listing.models, allowed_models, always=always)
    return ModelSearch(terms, tuple(kept), left_out, filtered, listing.complete, None, search_url(terms))


def hub_entry(model: HubModel) -> CatalogEntry:
    """A listed model as an autocomplete entry: its id, languages and downloads."""
    languages = ", ".join(" ".join(name.split()) for name in model.languages[:3])
    if len(model.languages) > 3:
        languages += f" +{len(model.languages) - 3}"
    # Built for the autocomplete that asked, in its locale.
    if model.downloads is not None:
        count = f"{model.downloads:,}"  # "90,000"
        notes = [ngettext("{count} download", "{count} downloads", model.downloads, count=count)]
    else:
        notes = [_("on the Hugging Face Hub")]
    if model.gated:
        notes.append(_("gated"))
    return CatalogEntry(model.id, languages, ", ".join(notes))
