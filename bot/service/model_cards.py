"""Model cards: what a checkpoint's authors say about it, read from its README.md.

A Hugging Face model card is a markdown file with an optional YAML header (between leading
``---`` lines) holding metadata: ``pipeline_tag``, ``language``, ``license``, ``datasets``...
:func:`load_model_card` fetches it (from the Hub, or from a local checkpoint folder),
:func:`parse_model_card` pulls out the metadata, the first paragraph of prose and the sections
on limitations, biases and risks, and :func:`model_info_card` turns that into a reply card.

Everything in a model card was written by strangers: it is parsed without ever raising, and
escaped (:func:`bot.replies.reply.escape`) before it goes in a card. No Discord import here.

:func:`load_model_card` is blocking (network and disk): callers on the event loop run it in a
thread, e.g. ``await asyncio.to_thread(load_model_card, checkpoint, local=False)``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.inference.checkpoint_policy import is_hub_id, is_local_reference

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

# Every pattern below stops at the next character that could start another match ("[", "<",
# "*"...) or after a few hundred characters, so a hostile card cannot make matching quadratic.
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_MD_IMAGE = re.compile(r"!\[[^\[\]\n]{0,300}\](?:\([^()\[\]\n]{0,500}\)|\[[^\[\]\n]{0,100}\])")
_HTML_IMAGE = re.compile(r"<(?:img|picture|source|svg)\b[^<>]{0,1000}>|</(?:picture|svg)>", re.I)
_EMPTY_LINK = re.compile(r"\[[ \t]{0,10}\]\([^()\[\]\n]{0,500}\)")
# Only known HTML tags are removed: a fill-mask card's prose says "<mask>", which must stay.
_HTML_TAG = re.compile(
    r"</?(?:a|abbr|b|big|blockquote|br|center|code|dd|details|div|dl|dt|em|font|h[1-6]|hr|i|kbd|li|"
    r"ol|p|pre|small|span|strong|sub|summary|sup|table|tbody|td|th|thead|tr|tt|u|ul)\b[^<>\n]{0,500}>",
    re.I,
)
_LINK = re.compile(r"\[([^\[\]\n]{1,300})\]\([^)\[\]\n]{0,500}\)")
_REF_LINK = re.compile(r"\[([^\[\]\n]{1,300})\]\[[^\[\]\n]{0,100}\]")
_AUTOLINK = re.compile(r"<(https?://[^<>\s]{1,500})>")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\[\]\n]{1,300}\]:[ \t]+\S")
_BOLD = re.compile(r"\*\*(?=\S)([^*\n]{1,300}?)(?<=\S)\*\*|(?<!\w)__(?=\S)([^_\n]{1,300}?)(?<=\S)__(?!\w)")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]{1,300}?)(?<=\S)\*(?![\w*])")
_INLINE_CODE = re.compile(r"`{1,3}([^`\n]{1,300})`{1,3}")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]{0,3}\1){2,}[ \t]*$")
_LIST_ITEM = re.compile(r"^[ \t]{0,12}(?:[-*+]|\d{1,3}[.)])[ \t]")
_PLACEHOLDER = re.compile(r"^\[?[ \t]{0,5}more information needed[ \t]{0,5}\]?\.?$", re.I)
_BLANK_RUNS = re.compile(r"\n{3,}")
_USAGE_HEADING = re.compile(r"how to use|usage|example|getting started|code|install", re.I)


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
    # Why there is no card, in plain words (set when source is "none").
    problem: str | None = None
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
    except Exception:  # noqa: BLE001 - a stranger's file must never break a command
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

    sections = _sections(_strip_markup(body))
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


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The YAML header as a dict ({} if missing or invalid) and the markdown after it."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            header = "\n".join(lines[1:index])
            return _load_yaml(header), "\n".join(lines[index + 1 :])
    # An opening line with no closing one: no metadata, the rest is the card.
    return {}, "\n".join(lines[1:])


def _load_yaml(header: str) -> dict[str, Any]:
    if len(header) > _MAX_FRONT_MATTER:
        return {}
    try:
        import yaml

        data = yaml.safe_load(header)
    except Exception:  # noqa: BLE001 - YAMLError, RecursionError, a missing parser...
        return {}
    return data if isinstance(data, dict) else {}


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


def _strip_markup(body: str) -> str:
    body = _COMMENT.sub("", body)
    body = _MD_IMAGE.sub("", body)
    body = _HTML_IMAGE.sub("", body)
    body = _EMPTY_LINK.sub("", body)
    return _HTML_TAG.sub("", body)


@dataclass(slots=True)
class _Section:
    level: int  # 0 for the text before the first heading
    heading: str
    lines: list[str]  # its own lines, up to the next heading of any level
    start: int


def _sections(body: str) -> list[_Section]:
    """The card split at its headings (ATX ``#`` and setext underlines), ignoring code blocks."""
    sections = [_Section(0, "", [], 0)]
    fence: str | None = None
    lines = body.split("\n")
    for number, line in enumerate(lines):
        current = sections[-1]
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            current.lines.append(line)
            continue
        if opening:
            fence = opening.group(1)
            current.lines.append(line)
            continue
        atx = _ATX.match(line)
        if atx and len(sections) > _MAX_SECTIONS:
            break  # a card with thousands of headings: the rest would never be shown
        if atx:
            sections.append(_Section(len(atx.group(1)), _inline(_atx_text(atx.group(2) or "")), [], number))
            continue
        underline = _SETEXT.match(line)
        if (
            underline
            and current.lines
            and current.lines[-1].strip()
            and not _LIST_ITEM.match(current.lines[-1])
            and not _RULE.match(current.lines[-1])
            and (len(current.lines) == 1 or not current.lines[-2].strip())
        ):
            heading = current.lines.pop()
            sections.append(_Section(1 if underline.group(1)[0] == "=" else 2, _inline(heading), [], number))
            continue
        current.lines.append(line)
    return sections


def _atx_text(text: str) -> str:
    """An ATX heading's text without its optional closing hashes ("## Bias ##")."""
    text = text.strip()
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        text = bare.strip()
    return text


def _is_limitation_heading(heading: str) -> bool:
    lowered = heading.lower().replace("–", "-")
    return any(word in lowered for word in _LIMITATION_WORDS)


def _limitations(sections: list[_Section]) -> str:
    """The text of every limitations/bias/risk section, with the subsections inside them.

    Within a matching section, its own text comes first, then the subsections that match
    too, then the others (usage examples and code left out).
    """
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
            sub_text = _tidy_block(sub.lines)
            if sub_text and (_is_limitation_heading(sub.heading) or not _USAGE_HEADING.search(sub.heading)):
                labelled = f"{sub.heading}:\n{sub_text}" if sub.heading else sub_text
                (matching if _is_limitation_heading(sub.heading) else others).append(labelled)
            index += 1
        text = "\n\n".join(p for p in (_tidy_block(section.lines), *matching, *others) if p)
        if text:
            blocks.append((section.heading, text))
            kept += len(text)
            if kept > _MAX_LIMITATIONS or len(blocks) >= _MAX_BLOCKS:
                break  # more than a reply can show
    if len(blocks) == 1:
        return blocks[0][1]
    return "\n\n".join(f"{heading}:\n{text}" for heading, text in blocks)


def _summary(sections: list[_Section]) -> str:
    """The first paragraph of prose outside the limitation sections."""
    inside_limits = 0  # level of the limitations section we are in, 0 if none
    examined = 0
    for section in sections:
        if inside_limits and section.level > inside_limits:
            continue
        inside_limits = section.level if section.level and _is_limitation_heading(section.heading) else 0
        if inside_limits:
            continue
        for paragraph in _paragraphs(section.lines):
            if len(paragraph.split()) >= 4 and any(ch.isalpha() for ch in paragraph):
                return paragraph
            examined += 1
            if examined >= _MAX_PARAGRAPHS:
                return ""  # a card's summary comes near its top
    return ""


def _paragraphs(lines: list[str]) -> Iterator[str]:
    """Blocks of prose lines (no code, tables, lists, rules or link definitions), joined by spaces."""
    current: list[str] = []
    length = 0
    fence: str | None = None
    skip_block = False
    for line in lines:
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0]:
                fence = None
            continue
        stripped = line.strip()
        if opening or not stripped:
            if current and not skip_block:
                yield " ".join(current)
            current, length, skip_block = [], 0, False
            if opening:
                fence = opening.group(1)
            continue
        if skip_block:
            continue
        if stripped.startswith("|") or _RULE.match(line) or _LINK_DEFINITION.match(line) or _PLACEHOLDER.match(stripped):
            skip_block = True
            continue
        if not current and _LIST_ITEM.match(line):
            skip_block = True
            continue
        if length > _MAX_SUMMARY:
            continue  # long enough: the rest of the paragraph is never shown
        text = _inline(stripped.lstrip(">").strip())
        if text:
            current.append(text)
            length += len(text) + 1
    if current and not skip_block:
        yield " ".join(current)


def _inline(text: str) -> str:
    """Markdown inline syntax reduced to its text: links to their words, no emphasis markers."""
    if not any(ch in text for ch in "[<`*_"):
        return " ".join(text.split())
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _BOLD.sub(lambda m: m.group(1) or m.group(2), text)
    text = _ITALIC.sub(r"\1", text)
    return " ".join(text.split())


def _tidy_block(lines: list[str], budget: int = _MAX_LIMITATIONS) -> str:
    """A section's lines as readable text: inline markup reduced, code blocks dropped, soft line
    breaks joined, blank runs collapsed. Stops after about ``budget`` characters."""
    out: list[list[str]] = []
    fence: str | None = None
    length = 0
    for line in lines:
        if length > budget:
            break
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0]:
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        stripped = line.strip()
        if _RULE.match(line) or _LINK_DEFINITION.match(line) or _PLACEHOLDER.match(stripped):
            continue
        if not stripped:
            out.append([])
            continue
        text = _inline(line)
        length += len(text) + 1
        starts_block = _LIST_ITEM.match(line) or stripped.startswith(("|", ">"))
        if out and out[-1] and not starts_block and not out[-1][0].lstrip().startswith("|"):
            out[-1].append(text)  # a soft line break inside a paragraph
            continue
        indent = line[: len(line) - len(line.lstrip())].replace("\t", "  ")
        out.append([indent[:4] + text])
    joined = "\n".join(" ".join(pieces).rstrip() for pieces in out)
    return _BLANK_RUNS.sub("\n\n", joined).strip()


# -- loading ---------------------------------------------------------------------------


def load_model_card(checkpoint: str, *, local: bool) -> ModelCardInfo:
    """Read and parse ``checkpoint``'s card: a local folder's README.md, or the Hub's.

    Blocking (disk or network, up to the Hub client's timeouts): from async code, call
    ``await asyncio.to_thread(load_model_card, checkpoint, local=...)``. Never raises: when
    there is no card (missing README.md, unknown or gated model, offline, rate limit...), the
    result has ``source="none"`` and a ``problem`` in plain words (details go to the log).
    """
    try:
        if local:
            return _load_local(checkpoint)
        return _load_hub(checkpoint)
    except Exception:  # noqa: BLE001 - last resort: a card must never break a command
        log.exception("reading the model card of %s failed", checkpoint)
        return _no_card(checkpoint, "I couldn't read this model's card.", local=local)


def _no_card(checkpoint: str, problem: str, *, local: bool) -> ModelCardInfo:
    return ModelCardInfo(
        checkpoint=checkpoint, url=None if local else hub_url(checkpoint), source="none", problem=problem
    )


def _read_capped(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as handle:
        data = handle.read(MAX_CARD_BYTES)
    return data.decode("utf-8", errors="replace")


def _load_local(checkpoint: str) -> ModelCardInfo:
    try:
        folder = Path(checkpoint).expanduser()
        readme = folder / "README.md"
        if not readme.is_file() and folder.is_dir():
            readme = next((p for p in folder.iterdir() if p.name.lower() == "readme.md" and p.is_file()), readme)
        if not readme.is_file():
            return _no_card(checkpoint, "This model's folder has no README.md, so it has no card.", local=True)
        if not readme.resolve().is_relative_to(folder.resolve()):
            # A link out of the folder: only the checkpoint's own files are shown.
            return _no_card(checkpoint, "This model's README.md is outside its folder, so I won't show it.", local=True)
        text = _read_capped(readme)
    except (OSError, ValueError) as exc:
        log.info("no local model card for %s: %s", checkpoint, exc)
        return _no_card(checkpoint, "I couldn't read the README.md in this model's folder.", local=True)
    return parse_model_card(text, checkpoint, local=True)


def _load_hub(checkpoint: str) -> ModelCardInfo:
    if hub_url(checkpoint) is None:
        return _no_card(checkpoint, "That is not a Hugging Face Hub model id, so there is no card to fetch.", local=False)
    import huggingface_hub  # attribute lookup at call time: tests replace hf_hub_download

    try:
        path = huggingface_hub.hf_hub_download(repo_id=checkpoint, filename="README.md")
        text = _read_capped(path)
    except Exception as exc:  # noqa: BLE001 - every Hub failure becomes a sentence
        log.info("no Hub model card for %s: %s: %s", checkpoint, type(exc).__name__, exc)
        return _no_card(checkpoint, hub_problem(exc), local=False)
    return parse_model_card(text, checkpoint, local=False)


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def hub_problem(exc: BaseException) -> str:
    """A Hub download failure in plain words (no exception text: it may hold URLs or tokens)."""
    names = _class_names(exc)
    if "GatedRepoError" in names:
        return "This model is gated on the Hugging Face Hub: its card is only readable after accepting its terms."
    if "RepositoryNotFoundError" in names:
        return "There is no public model with this name on the Hugging Face Hub."
    if names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled"}:
        return "I can't reach the Hugging Face Hub right now, and I have no saved copy of this card."
    if names & {"RemoteEntryNotFoundError", "EntryNotFoundError"}:
        return "This model has no card (README.md) on the Hugging Face Hub."
    if "DisabledRepoError" in names:
        return "This model has been disabled on the Hugging Face Hub."
    if "RevisionNotFoundError" in names:
        return "The Hugging Face Hub has no such version of this model."
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 429:
        return "The Hugging Face Hub is limiting how often I can ask: try again in a few minutes."
    if isinstance(status, int) and status >= 500:
        return "The Hugging Face Hub is having trouble right now: try again later."
    if isinstance(status, int) and status in (401, 403):
        return "The Hugging Face Hub won't let me read this model's card."
    if names & {"TimeoutException", "TransportError", "ConnectError", "ConnectionError", "TimeoutError"}:
        return "I can't reach the Hugging Face Hub right now: try again later."
    return "I couldn't read this model's card from the Hugging Face Hub."
