"""Model cards: what a checkpoint's authors say about it, read from its README.md.

A Hugging Face model card is a markdown file with an optional YAML header (between leading
``---`` lines) holding metadata: ``pipeline_tag``, ``language``, ``license``, ``datasets``...
:func:`load_model_card` fetches it (from the Hub, or from a local checkpoint folder) and
:func:`parse_model_card` pulls out the metadata, the first paragraph of prose and the sections
on limitations, biases and risks. The reply built from it lives in :mod:`bot.replies.model_card`.

The header is read by huggingface_hub's :class:`~huggingface_hub.ModelCard` (the Hub's own
pattern for finding it), the markdown by markdown-it (CommonMark, plus tables).

Everything in a model card was written by strangers: it is parsed without ever raising, and
escaped by the reply layer. No Discord import here.

:func:`load_model_card` is blocking (network and disk); :class:`ModelCardCache` runs it in a
thread, shares one fetch between concurrent callers and keeps the result a while.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from async_lru import alru_cache
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub import errors as hub_errors
from huggingface_hub.repocard import REGEX_YAML_BLOCK
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.i18n import Message, Text, lazy
from bot.inference.checkpoint_policy import is_hub_id, is_local_reference
from bot.inference.hub_download import is_transport_error

log = logging.getLogger(__name__)

HUB_URL = "https://huggingface.co/"

# Bounds on what we read and keep: cards of several MB exist, and a reply shows ~1 KB per part.
MAX_CARD_BYTES = 1_000_000
_MAX_FRONT_MATTER = 200_000
_MAX_LIST_ITEMS = 1000
_MAX_SUMMARY = 4000
_MAX_LIMITATIONS = 20_000
_MAX_BLOCKS = 50
_MAX_PARAGRAPHS = 500
_MAX_SECTIONS = 2000

# markdown-it is linear, but slow in Python: about 4 µs per block token and 10 µs per character
# of dense inline markup. These bound the work on a hostile 1 MB card to about a second.
_CHUNK = 32_768  # characters of markdown parsed at a time, so parsing stops once we have enough
# Block tokens and lines read per card (including lines read again, see _block_tokens); a
# long card of prose has a few thousand of each.
_MAX_TOKENS = 60_000
_MAX_LINES = 60_000
_HEADING_SOURCE = 1000  # characters of a heading's markdown read
_SUMMARY_SOURCE = 4 * _MAX_SUMMARY  # characters of a paragraph's markdown read for the summary
_LIMITATION_SOURCE = 2 * _MAX_LIMITATIONS  # ... and for the limitations
# Characters of inline markup (links, emphasis, HTML...) parsed per card for each part;
# text without any markup costs nothing.
_HEADING_WORK = 16_000
_SUMMARY_WORK = 24_000
_LIMITATION_WORK = 40_000


# Section headings whose text is shown as "Limitations and biases" (matched case-insensitively
# anywhere in the heading, so "Bias, Risks, and Limitations" and "Intended uses & limitations" match).
_LIMITATION_WORDS = ("limitation", "bias", "risk", "out-of-scope", "out of scope", "misuse", "ethical consideration")

# pipeline_tag values that may also appear among a card's tags (the Hub's task names).
_TASKS = frozenset(
    {
        "fill-mask", "text-classification", "token-classification", "question-answering",
        "text-generation", "text2text-generation", "summarization", "translation",
        "feature-extraction", "sentence-similarity", "zero-shot-classification",
        "table-question-answering", "automatic-speech-recognition", "image-classification",
        "text-to-image", "image-to-text", "conversational", "multiple-choice",
    }
)  # fmt: skip

# Inline HTML with one of these tag names is dropped; any other "tag" is text: a fill-mask
# card's prose says "<mask>" (or "<s>"), which must stay.
_HTML_TAGS = frozenset(
    {
        "a", "abbr", "b", "big", "blockquote", "br", "center", "code", "dd", "details", "div", "dl",
        "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol",
        "p", "picture", "pre", "small", "source", "span", "strong", "sub", "summary", "sup", "svg",
        "table", "tbody", "td", "th", "thead", "tr", "tt", "u", "ul",
    }
)  # fmt: skip
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)")
# A character that may start inline markup; text without any is taken as it is.
_INLINE_MARKUP = re.compile(r"[\\`*_\[<&!]")
_PLACEHOLDER = re.compile(r"^\[?[ \t]{0,5}more information needed[ \t]{0,5}\]?\.?$", re.I)
_USAGE_HEADING = re.compile(r"how to use|usage|example|getting started|code|install", re.I)

# CommonMark with raw HTML recognised (so it can be dropped) and tables (so they can be skipped).
# Inline content is parsed lazily (core rule "inline" off): only what may be shown is.
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable("table").disable("inline")


@dataclass(frozen=True, slots=True)
class ModelCardInfo:
    """What a model card says, as plain (unescaped, untrusted) text."""

    checkpoint: str
    task: str | None = None
    languages: tuple[str, ...] = ()
    license: str | None = None
    datasets: tuple[str, ...] = ()
    # The text of the sections on limitations, biases, risks and out-of-scope use ("" if none).
    limitations: str = ""
    # The card's first paragraph of prose ("" if none).
    summary: str = ""
    # The model's page on the Hub; None for a local checkpoint.
    url: str | None = None
    # "hub" or "local" (where the card was read from), or "none" when there is no card to show.
    source: str = "none"
    # Why there is no card, in plain words (set when source is "none"): a Message, translated
    # when shown (a card is fetched once for every server, whatever its language).
    problem: Text | None = None
    tags: tuple[str, ...] = ()

    @property
    def has_card(self) -> bool:
        return self.source != "none"


# -- parsing ---------------------------------------------------------------------------


def hub_url(checkpoint: str) -> str | None:
    """The model's page on the Hub, or None when ``checkpoint`` is not a Hub id."""
    checkpoint = checkpoint.strip()
    if not is_hub_id(checkpoint):
        return None
    return HUB_URL + checkpoint


def parse_model_card(text: str, checkpoint: str, *, local: bool | None = None) -> ModelCardInfo:
    """Parse a model card's markdown (with or without a YAML header). Never raises on bad input.

    ``local`` says whether ``checkpoint`` is a local folder (no Hub URL); by default it is
    guessed the way the loader does (a path-like name, or an existing directory).
    The result's ``source`` is "local" or "hub"; :func:`load_model_card` sets it to "none"
    when there is no card at all.
    """
    if local is None:
        local = is_local_reference(checkpoint)
    url = None if local else hub_url(checkpoint)
    source = "local" if local else "hub"
    try:
        return _parse(text, checkpoint, url=url, source=source)
    except Exception:  # a stranger's file must never break a command
        log.exception("could not parse the model card of %s", checkpoint)
        return ModelCardInfo(checkpoint=checkpoint, url=url, source=source)


def _parse(text: str, checkpoint: str, *, url: str | None, source: str) -> ModelCardInfo:
    if not isinstance(text, str):
        text = str(text or "")
    text = text[:MAX_CARD_BYTES].lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    metadata, body = split_front_matter(text)

    task = _scalar(metadata.get("pipeline_tag"))
    tags = _strings(metadata.get("tags"))
    if not task:
        task = next((t for t in tags if t.lower() in _TASKS), None)
    languages = _strings(metadata.get("language", metadata.get("languages")), language=True)
    license_ = _scalar(metadata.get("license"))
    if license_ and license_.lower() in ("other", "unknown"):
        license_ = _scalar(metadata.get("license_name")) or license_
    if license_ is None:
        licenses = _strings(metadata.get("license"))
        license_ = ", ".join(licenses) or None
    datasets = _strings(metadata.get("datasets"))

    sections = _sections(body)
    limitations = _limitations(sections)
    summary = _summary(sections)
    return ModelCardInfo(
        checkpoint=checkpoint,
        task=task,
        languages=languages,
        license=license_,
        datasets=datasets,
        limitations=limitations[:_MAX_LIMITATIONS],
        summary=summary[:_MAX_SUMMARY],
        url=url,
        source=source,
        tags=tags,
    )


class _CardData(ModelCardData):
    """ModelCardData without the work on what this bot never shows."""

    def __init__(self, *, tags: Any = None, ignore_metadata_errors: bool = False, **kwargs: Any) -> None:
        # Evaluation results: validated (and warned about) by ModelCardData, never shown here.
        kwargs.pop("model-index", None)
        kwargs.pop("eval_results", None)
        super().__init__(ignore_metadata_errors=ignore_metadata_errors, **kwargs)
        # ModelCardData de-duplicates tags with a list scan per tag: quadratic on a header of
        # 50,000 tags. _strings de-duplicates the first _MAX_LIST_ITEMS in linear time.
        self.tags = tags


class _ModelCard(ModelCard):
    card_data_class = _CardData


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The YAML header as a dict ({} if missing, too big or invalid) and the markdown after it.

    The header is found with the Hub's own pattern and read by huggingface_hub's ModelCard.
    Values keep the types YAML gave them (``language: no`` is False): see _scalar and _strings.
    """
    match = REGEX_YAML_BLOCK.search(text)
    if match is None:
        return {}, text  # ModelCard would only log a warning about the missing header
    body = text[match.end() :]
    if len(match.group(2)) > _MAX_FRONT_MATTER:
        return {}, body
    try:
        card = _ModelCard(text, ignore_metadata_errors=True)
        # A card's data is its attributes; to_dict() would deep-copy a stranger's YAML.
        metadata = {key: value for key, value in vars(card.data).items() if value is not None}
        return metadata, card.text
    except Exception:
        # YAMLError, ValueError (not a mapping, a bad date, a 5000-digit number), TypeError
        # (a key that is not a string), RecursionError (deep nesting)...: no metadata, same body.
        return {}, body


def _scalar(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        text = " ".join(str(value).split())
        return text or None
    return None


def _strings(value: object, *, language: bool = False) -> tuple[str, ...]:
    """A metadata value that may be one string or a list of them, as a tuple of strings."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    seen: set[str] = set()
    for item in items[:_MAX_LIST_ITEMS]:
        if language and item is False:
            item = "no"  # YAML 1.1 reads Norwegian's code, `no`, as false
        text = _scalar(item)
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return tuple(out)


@dataclass(slots=True)
class _Budget:
    """Characters of inline markup still to be parsed (see _INLINE_MARKUP)."""

    chars: int


def _render(token: Token | None, env: dict[str, Any], budget: _Budget, limit: int) -> str | None:
    """A paragraph's or heading's inline markdown as plain text: the words of links and code,
    no emphasis markers, images or known HTML tags; lines joined by spaces, without the
    template's "[More Information Needed]" lines. None once the budget is spent."""
    source = token.content[:limit] if token is not None else ""
    if not _INLINE_MARKUP.search(source):
        return _join_lines(source.split("\n"))
    if budget.chars <= 0:
        return None
    budget.chars -= len(source)
    children: list[Token] = []
    _MARKDOWN.inline.parse(source, _MARKDOWN, env, children)
    lines: list[list[str]] = [[]]
    for child in children:
        if child.type in ("text", "text_special", "code_inline"):
            lines[-1].append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            lines.append([])
        elif child.type == "html_inline":
            name = _TAG_NAME.match(child.content)
            if name and name.group(1).lower() not in _HTML_TAGS:
                lines[-1].append(child.content)  # "<mask>": not HTML, but words of the card
        # image: dropped with its alt text (a badge or a banner); links, emphasis: their markers
    return _join_lines("".join(parts) for parts in lines)


def _join_lines(lines: Iterable[str]) -> str:
    words = (" ".join(line.split()) for line in lines)
    return " ".join(line for line in words if line and not _PLACEHOLDER.match(line))


@dataclass(slots=True)
class _Block:
    """A paragraph (or a heading inside a list or quote), its inline content not yet parsed."""

    inline: Token
    env: dict[str, Any]  # the card's link reference definitions
    prefix: str  # how it starts in the limitations text: "- ", "  1. ", "> "...
    in_list: bool  # never the summary; joined to a neighbouring list block by one line break
    prose: bool  # may be the summary

    def text(self, budget: _Budget, limit: int) -> str | None:
        return _render(self.inline, self.env, budget, limit)


@dataclass(slots=True)
class _Section:
    level: int  # 0 for the text before the first heading
    heading: str
    blocks: list[_Block] = field(default_factory=list)  # up to the next heading of any level


def _block_tokens(body: str, env: dict[str, Any]) -> Iterator[Token]:
    """The card's block tokens (inline content unparsed), a chunk at a time, so that parsing
    stops when the caller has seen enough, or after about _MAX_TOKENS tokens or _MAX_LINES lines.

    A chunk ends at a line break; its last top-level block may go on in the next chunk, so
    parsing resumes at that block's first line. The blocks before it are complete: each
    ended where the next began. ``env`` collects the link reference definitions.
    """
    offset = 0
    size = _CHUNK
    tokens_left = _MAX_TOKENS
    lines_left = _MAX_LINES
    while offset < len(body):
        cut = body.find("\n", offset + size)
        end = len(body) if cut < 0 else cut + 1
        chunk = body[offset:end]
        final = end == len(body)
        lines = chunk.count("\n")
        if lines >= lines_left:
            chunk = chunk[: len(chunk) - len(chunk.split("\n", lines_left)[-1])]  # its first lines_left lines
            final = True  # the rest of the card is not read
        lines_left -= lines
        tokens = _MARKDOWN.parse(chunk, env)
        if final:
            yield from tokens
            return
        # Where each top-level block starts: its index among the tokens, and its first line.
        starts = [(index, token.map[0]) for index, token in enumerate(tokens) if token.level == 0 and token.map]
        last, restart = starts[-1] if starts else (0, 0)
        if restart == 0:
            # One block (or link reference definitions, which make no tokens) fills the chunk
            # and may go on after it: read more, unless that would go past the budget.
            if 2 * len(tokens) > tokens_left:
                yield from tokens  # the rest of that block, and of the card, is not read
                return
            size *= 2
            continue
        yield from tokens[:last]
        tokens_left -= last
        offset += len(chunk) - len(chunk.split("\n", restart)[-1])
        size = _CHUNK


def _sections(body: str) -> list[_Section]:
    """The card split at its top-level headings (ATX ``#`` and setext underlines alike).

    Kept: paragraphs, in lists and block quotes too. Skipped: code (fenced or indented), raw
    HTML blocks, tables, rules and link reference definitions (markdown-it reads those into
    ``env``, where links find them).
    """
    env: dict[str, Any] = {}
    sections = [_Section(0, "")]
    heading_budget = _Budget(_HEADING_WORK)
    lists = 0  # open lists
    quotes = 0  # open block quotes
    tables = 0  # open tables
    in_heading = False  # in a heading inside a list or quote: text, but not prose
    marker: str | None = None  # the marker of a list item whose first block is still to come
    tokens = _block_tokens(body, env)
    for token in tokens:
        kind = token.type
        if kind in ("table_open", "table_close"):
            tables += 1 if kind == "table_open" else -1
        elif tables:
            continue
        elif kind == "heading_open" and not lists and not quotes:
            if len(sections) > _MAX_SECTIONS:
                break  # a card with thousands of headings: the rest would never be shown
            inline = next(tokens, None)
            heading = _render(inline, env, heading_budget, _HEADING_SOURCE)
            if heading is None and inline is not None:
                heading = " ".join(inline.content[:_HEADING_SOURCE].split())  # its words, to match
            sections.append(_Section(int(token.tag[1:]), heading or ""))
        elif kind in ("heading_open", "heading_close"):
            in_heading = kind == "heading_open"
        elif kind in ("bullet_list_open", "ordered_list_open", "bullet_list_close", "ordered_list_close"):
            lists += 1 if kind.endswith("_open") else -1
        elif kind == "list_item_open":
            marker = f"{token.info}{token.markup}" if token.info else "-"
        elif kind == "list_item_close":
            marker = None  # an item of code only, or empty: its marker goes with it
        elif kind in ("blockquote_open", "blockquote_close"):
            quotes += 1 if kind == "blockquote_open" else -1
        elif kind == "inline":
            indent = "  " * min(max(lists - 1, 0), 2)
            if marker is not None:
                prefix = f"{indent}{marker} "
            elif lists:
                prefix = indent + "  "  # a list item's next paragraph
            else:
                prefix = "> " if quotes else ""
            sections[-1].blocks.append(_Block(token, env, prefix, lists > 0, not lists and not in_heading))
            marker = None
    return sections


def _is_limitation_heading(heading: str) -> bool:
    lowered = heading.lower().replace("–", "-")
    return any(word in lowered for word in _LIMITATION_WORDS)


def _limitations(sections: list[_Section]) -> str:
    """The text of every limitations/bias/risk section, with the subsections inside them.

    Within a matching section, its own text comes first, then the subsections that match
    too, then the others (usage examples and code left out).
    """
    budget = _Budget(_LIMITATION_WORK)
    blocks: list[tuple[str, str]] = []
    kept = 0
    index = 0
    while index < len(sections):
        section = sections[index]
        if section.level == 0 or not _is_limitation_heading(section.heading):
            index += 1
            continue
        matching: list[str] = []
        others: list[str] = []
        index += 1
        while index < len(sections) and sections[index].level > section.level:
            sub = sections[index]
            if _is_limitation_heading(sub.heading) or not _USAGE_HEADING.search(sub.heading):
                sub_text = _section_text(sub.blocks, budget)
                if sub_text:
                    labelled = f"{sub.heading}:\n{sub_text}" if sub.heading else sub_text
                    (matching if _is_limitation_heading(sub.heading) else others).append(labelled)
            index += 1
        text = "\n\n".join(p for p in (_section_text(section.blocks, budget), *matching, *others) if p)
        if text:
            blocks.append((section.heading, text))
            kept += len(text)
            if kept > _MAX_LIMITATIONS or len(blocks) >= _MAX_BLOCKS:
                break  # more than a reply can show
    if len(blocks) == 1:
        return blocks[0][1]
    return "\n\n".join(f"{heading}:\n{text}" for heading, text in blocks)


def _section_text(blocks: list[_Block], budget: _Budget, limit: int = _MAX_LIMITATIONS) -> str:
    """A section's blocks as readable text: paragraphs apart, list items one a line with their
    markers. Stops after about ``limit`` characters."""
    out: list[str] = []
    length = 0
    previous_in_list = False
    for block in blocks:
        if length > limit:
            break
        text = block.text(budget, _LIMITATION_SOURCE)
        if text is None:
            break
        if not text:
            continue
        if out:
            out.append("\n" if block.in_list and previous_in_list else "\n\n")
        out.append(block.prefix + text)
        length += len(block.prefix) + len(text) + 2
        previous_in_list = block.in_list
    return "".join(out).strip()


def _summary(sections: list[_Section]) -> str:
    """The first paragraph of prose outside the limitation sections."""
    budget = _Budget(_SUMMARY_WORK)
    inside_limits = 0  # level of the limitations section we are in, 0 if none
    examined = 0
    for section in sections:
        if inside_limits and section.level > inside_limits:
            continue
        inside_limits = section.level if section.level and _is_limitation_heading(section.heading) else 0
        if inside_limits:
            continue
        for block in section.blocks:
            if not block.prose:
                continue
            paragraph = block.text(budget, _SUMMARY_SOURCE)
            if paragraph is None:
                return ""  # the top of the card had no prose
            if not paragraph:
                continue
            if len(paragraph.split()) >= 4 and any(ch.isalpha() for ch in paragraph):
                return paragraph
            examined += 1
            if examined >= _MAX_PARAGRAPHS:
                return ""  # a card's summary comes near its top
    return ""


# -- loading ---------------------------------------------------------------------------

_UNREADABLE = lazy("I couldn't read this model's card.")
_GATED = lazy("This model is gated on the Hugging Face Hub: its card is only readable after accepting its terms.")
_NOT_FOUND = lazy("There is no public model with this name on the Hugging Face Hub.")
_NO_COPY = lazy("I can't reach the Hugging Face Hub right now, and I have no saved copy of this card.")
_NO_README = lazy("This model has no card (README.md) on the Hugging Face Hub.")
_DISABLED = lazy("This model has been disabled on the Hugging Face Hub.")
_NO_REVISION = lazy("The Hugging Face Hub has no such version of this model.")
_RATE_LIMITED = lazy("The Hugging Face Hub is limiting how often I can ask: try again in a few minutes.")
_HUB_DOWN = lazy("The Hugging Face Hub is having trouble right now: try again later.")
_FORBIDDEN = lazy("The Hugging Face Hub won't let me read this model's card.")
_UNREACHABLE = lazy("I can't reach the Hugging Face Hub right now: try again later.")
_HUB_UNKNOWN = lazy("I couldn't read this model's card from the Hugging Face Hub.")
# Failures that say nothing about the card: asking again later may well work. A tuple, compared
# with == (a Message is not hashable).
_TRANSIENT_PROBLEMS = (_UNREADABLE, _NO_COPY, _RATE_LIMITED, _HUB_DOWN, _UNREACHABLE, _HUB_UNKNOWN)


def load_model_card(checkpoint: str, *, local: bool) -> ModelCardInfo:
    """Read and parse ``checkpoint``'s card: a local folder's README.md, or the Hub's.

    Blocking (disk or network, up to the Hub client's timeouts): from async code, use a
    :class:`ModelCardCache`, or ``await asyncio.to_thread(load_model_card, checkpoint, local=...)``.
    Never raises: when there is no card (missing README.md, unknown or gated model, offline,
    rate limit...), the result has ``source="none"`` and a ``problem`` in plain words
    (details go to the log).
    """
    try:
        if local:
            return _load_local(checkpoint)
        return _load_hub(checkpoint)
    except Exception:  # last resort: a card must never break a command
        log.exception("reading the model card of %s failed", checkpoint)
        return _no_card(checkpoint, _UNREADABLE, local=local)


def is_transient_failure(info: ModelCardInfo) -> bool:
    """Whether ``info`` is "no card" for a reason that may pass (Hub unreachable, rate limit...)."""
    return info.source == "none" and info.problem in _TRANSIENT_PROBLEMS


def _no_card(checkpoint: str, problem: Message, *, local: bool) -> ModelCardInfo:
    return ModelCardInfo(checkpoint=checkpoint, url=None if local else hub_url(checkpoint), source="none", problem=problem)


def _read_capped(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as handle:
        data = handle.read(MAX_CARD_BYTES)
    return data.decode("utf-8", errors="replace")


def _load_local(checkpoint: str) -> ModelCardInfo:
    try:
        folder = Path(checkpoint)  # already canonical: ~ was expanded (or refused) by the policy
        readme = folder / "README.md"
        if not readme.is_file() and folder.is_dir():
            readme = next((p for p in folder.iterdir() if p.name.lower() == "readme.md" and p.is_file()), readme)
        if not readme.is_file():
            return _no_card(checkpoint, lazy("This model's folder has no README.md, so it has no card."), local=True)
        if not readme.resolve().is_relative_to(folder.resolve()):
            # A link out of the folder: only the checkpoint's own files are shown.
            problem = lazy("This model's README.md is outside its folder, so I won't show it.")
            return _no_card(checkpoint, problem, local=True)
        text = _read_capped(readme)
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        log.info("no local model card for %s: %s", checkpoint, exc)
        return _no_card(checkpoint, lazy("I couldn't read the README.md in this model's folder."), local=True)
    return parse_model_card(text, checkpoint, local=True)


def _load_hub(checkpoint: str) -> ModelCardInfo:
    if hub_url(checkpoint) is None:
        problem = lazy("That is not a Hugging Face Hub model id, so there is no card to fetch.")
        return _no_card(checkpoint, problem, local=False)
    import huggingface_hub  # attribute lookup at call time: tests replace hf_hub_download

    try:
        path = huggingface_hub.hf_hub_download(repo_id=checkpoint, filename="README.md")
        text = _read_capped(path)
    except Exception as exc:  # every Hub failure becomes a sentence
        log.info("no Hub model card for %s: %s: %s", checkpoint, type(exc).__name__, exc)
        return _no_card(checkpoint, hub_problem(exc), local=False)
    return parse_model_card(text, checkpoint, local=False)


def hub_problem(exc: BaseException) -> Message:
    """A Hub download failure in plain words (no exception text: it may hold URLs or tokens)."""
    # Subclasses before their bases: GatedRepoError is a RepositoryNotFoundError, and
    # LocalEntryNotFoundError an EntryNotFoundError (RemoteEntryNotFoundError is one too).
    if isinstance(exc, hub_errors.GatedRepoError):
        return _GATED
    if isinstance(exc, hub_errors.RepositoryNotFoundError):
        return _NOT_FOUND
    if isinstance(exc, hub_errors.LocalEntryNotFoundError):
        # Nothing cached and the Hub not asked or not answering; when the Hub did answer
        # (429, 5xx, 403), hf_hub_download raises this from that answer.
        return _status_problem(exc.__cause__) or _NO_COPY
    if isinstance(exc, hub_errors.OfflineModeIsEnabled):
        return _NO_COPY
    if isinstance(exc, hub_errors.EntryNotFoundError):
        return _NO_README
    if isinstance(exc, hub_errors.DisabledRepoError):
        return _DISABLED
    if isinstance(exc, hub_errors.RevisionNotFoundError):
        return _NO_REVISION
    problem = _status_problem(exc)
    if problem:
        return problem
    if is_transport_error(exc):
        return _UNREACHABLE
    return _HUB_UNKNOWN


def _status_problem(exc: BaseException | None) -> Message | None:
    """What the Hub's HTTP answer says, for the statuses that tell something."""
    if not isinstance(exc, hub_errors.HfHubHTTPError):
        return None
    status = getattr(exc.response, "status_code", None)
    if not isinstance(status, int):
        return None
    if status == 429:
        return _RATE_LIMITED
    if status >= 500:
        return _HUB_DOWN
    if status in (401, 403):
        return _FORBIDDEN
    return None


# -- caching ---------------------------------------------------------------------------


class CardLoader(Protocol):
    def __call__(self, checkpoint: str, *, local: bool) -> ModelCardInfo: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    info: ModelCardInfo
    retry_at: float | None  # loop time after which a transient failure is fetched again


class ModelCardCache:
    """Model cards by name, each fetched once and kept a while; one instance per event loop.

    ``await cache.get(checkpoint, local=...)`` runs :func:`load_model_card` in a thread. Callers
    asking for the same card while it is being fetched share that fetch. At most ``maxsize``
    cards are kept (the least recently used go first), each ``ttl`` seconds from its fetch.

    A transient failure (Hub unreachable, rate limit, Hub errors: see :func:`is_transient_failure`)
    is kept only ``retry_after`` seconds: not for ``ttl``, as the card may be readable a minute
    later; but not zero either, as each such fetch holds a thread through the Hub client's
    retries (about 23 s of back-off on a 429 or a 5xx, plus its timeouts), so a burst of
    commands while the Hub is down would hold a thread each, and ask a rate-limiting Hub again.
    """

    def __init__(
        self,
        *,
        maxsize: int = 256,
        ttl: float = 600.0,
        retry_after: float = 30.0,
        loader: CardLoader | None = None,
    ) -> None:
        self._loader = loader
        self._retry_after = retry_after
        # async-lru: entries keyed by the arguments; an entry whose fetch raised or was
        # cancelled is dropped; each entry's ttl runs from the end of its fetch.
        self._fetch_cached = alru_cache(maxsize=maxsize, ttl=ttl)(self._fetch)

    async def get(self, checkpoint: str, *, local: bool) -> ModelCardInfo:
        """``checkpoint``'s card, from the cache or fetched. Raises only once closed (RuntimeError)."""
        entry = await self._fetch_cached(checkpoint, local)
        if entry.retry_at is not None and asyncio.get_running_loop().time() >= entry.retry_at:
            # No await between finding the stale entry and starting its replacement, so
            # concurrent callers find the new fetch and share it.
            self._fetch_cached.cache_invalidate(checkpoint, local)
            entry = await self._fetch_cached(checkpoint, local)
        return entry.info

    def invalidate(self, checkpoint: str, *, local: bool) -> bool:
        """Forget ``checkpoint``'s card (e.g. its README.md changed); whether it was kept."""
        return self._fetch_cached.cache_invalidate(checkpoint, local)

    def clear(self) -> None:
        self._fetch_cached.cache_clear()

    def __len__(self) -> int:
        return self._fetch_cached.cache_info().currsize

    async def close(self) -> None:
        """Cancel the fetches in flight (their threads run to the end, unawaited) and refuse new ones."""
        await self._fetch_cached.cache_close()

    async def _fetch(self, checkpoint: str, local: bool) -> _Entry:
        loader = self._loader or load_model_card
        try:
            info = await asyncio.to_thread(loader, checkpoint, local=local)
        except Exception:  # a replaced loader, or no thread to run it in
            log.exception("fetching the model card of %s failed", checkpoint)
            info = _no_card(checkpoint, _UNREADABLE, local=local)
        retry_at = asyncio.get_running_loop().time() + self._retry_after if is_transient_failure(info) else None
        return _Entry(info, retry_at)
