"""Which fill-mask checkpoints to suggest: a curated list, the owner's allow-list, autocomplete.

:data:`CURATED` lists well-known fill-mask checkpoints on the Hugging Face Hub by language.
:func:`offered_models` is what a server may pick from (the owner's ``ALLOWED_MODELS``, or the
curated list when the bot allows any Hub id), :func:`autocomplete` ranks it against what a
member is typing (:mod:`bot.replies.model_list` shows both). No Discord import here.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import Text, lazy, text_of
from bot.inference.checkpoint_policy import matches_allowed

# Discord's caps on autocomplete: 25 choices, names and values of at most 100 characters.
MAX_CHOICES = 25
CHOICE_VALUE_LIMIT = 100


_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    checkpoint: str  # a Hub id, or (with is_pattern) an ALLOWED_MODELS pattern such as "almanach/*"
    # Ours (the curated list's) are Messages, translated when shown; a Hub model's are its own words.
    language: Text = ""  # "French", "Multilingual"...; "" when unknown
    note: Text = ""
    is_pattern: bool = False


def _entries(language: Text, *items: tuple[str, Text]) -> tuple[CatalogEntry, ...]:
    return tuple(CatalogEntry(checkpoint, language, note) for checkpoint, note in items)


CURATED: tuple[CatalogEntry, ...] = (
    *_entries(
        lazy("French"),
        ("camembert-base", "CamemBERT base (RoBERTa)"),
        ("almanach/camembert-base", lazy("CamemBERT base, under its authors' organisation")),
        ("cmarkea/distilcamembert-base", lazy("DistilCamemBERT: smaller and faster")),
        ("flaubert/flaubert_base_cased", lazy("FlauBERT base, cased")),
        ("flaubert/flaubert_base_uncased", lazy("FlauBERT base, uncased")),
    ),
    *_entries(
        lazy("English"),
        ("bert-base-uncased", lazy("BERT base, uncased")),
        ("bert-base-cased", lazy("BERT base, cased")),
        ("bert-large-uncased", lazy("BERT large, uncased")),
        ("roberta-base", "RoBERTa base"),
        ("roberta-large", "RoBERTa large"),
        ("distilroberta-base", lazy("DistilRoBERTa: smaller and faster")),
        ("distilbert-base-uncased", lazy("DistilBERT: smaller and faster, uncased")),
        ("distilbert-base-cased", lazy("DistilBERT: smaller and faster, cased")),
        ("albert-base-v2", "ALBERT base v2"),
        ("answerdotai/ModernBERT-base", "ModernBERT base"),
    ),
    *_entries(
        lazy("Multilingual"),
        ("xlm-roberta-base", lazy("XLM-RoBERTa base, 100 languages")),
        ("xlm-roberta-large", lazy("XLM-RoBERTa large, 100 languages")),
        ("bert-base-multilingual-cased", lazy("multilingual BERT, 104 languages, cased")),
        ("bert-base-multilingual-uncased", lazy("multilingual BERT, uncased")),
        ("distilbert-base-multilingual-cased", lazy("multilingual DistilBERT, cased")),
    ),
    *_entries(
        lazy("German"),
        ("dbmdz/bert-base-german-cased", lazy("German BERT by the MDZ Digital Library")),
        ("bert-base-german-cased", lazy("German BERT by deepset")),
        ("deepset/gbert-base", "GBERT base"),
    ),
    *_entries(
        lazy("Spanish"),
        ("dccuchile/bert-base-spanish-wwm-cased", lazy("BETO, cased")),
        ("dccuchile/bert-base-spanish-wwm-uncased", lazy("BETO, uncased")),
        ("PlanTL-GOB-ES/roberta-base-bne", lazy("RoBERTa base trained on the National Library of Spain's data")),
    ),
    *_entries(
        lazy("Italian"),
        ("dbmdz/bert-base-italian-cased", lazy("Italian BERT, cased")),
        ("dbmdz/bert-base-italian-xxl-cased", lazy("Italian BERT XXL, cased")),
    ),
    *_entries(
        lazy("Dutch"),
        ("GroNLP/bert-base-dutch-cased", "BERTje"),
        ("pdelobelle/robbert-v2-dutch-base", "RobBERT v2"),
    ),
    *_entries(lazy("Portuguese"), ("neuralmind/bert-base-portuguese-cased", lazy("BERTimbau base (Brazilian Portuguese)"))),
    *_entries(lazy("Polish"), ("allegro/herbert-base-cased", "HerBERT base")),
    *_entries(lazy("Swedish"), ("KB/bert-base-swedish-cased", lazy("Swedish BERT by the National Library of Sweden"))),
    *_entries(lazy("Finnish"), ("TurkuNLP/bert-base-finnish-cased-v1", lazy("FinBERT, cased"))),
    *_entries(lazy("Turkish"), ("dbmdz/bert-base-turkish-cased", lazy("BERTurk, cased"))),
    *_entries(lazy("Greek"), ("nlpaueb/bert-base-greek-uncased-v1", lazy("Greek BERT, uncased"))),
    *_entries(lazy("Russian"), ("DeepPavlov/rubert-base-cased", lazy("RuBERT base, cased"))),
    *_entries(
        lazy("Arabic"),
        ("aubmindlab/bert-base-arabertv2", "AraBERT v2"),
        ("asafaya/bert-base-arabic", lazy("Arabic BERT base")),
    ),
    *_entries(
        lazy("Chinese"),
        ("bert-base-chinese", lazy("Chinese BERT base")),
        ("hfl/chinese-roberta-wwm-ext", lazy("Chinese RoBERTa-wwm-ext (BERT architecture)")),
    ),
    *_entries(
        lazy("Korean"),
        ("klue/bert-base", "KLUE BERT base"),
        ("klue/roberta-base", "KLUE RoBERTa base"),
    ),
)


def is_pattern(name: str) -> bool:
    """Whether an ALLOWED_MODELS item is a glob pattern (``*``, ``?``, ``[...]``) rather than one id."""
    return any(ch in _GLOB_CHARS for ch in name)


def offered_models(allowed_models: tuple[str, ...]) -> list[CatalogEntry]:
    """What a server may pick from.

    With no ALLOWED_MODELS (any Hub id allowed), the curated list. Otherwise the owner's list,
    in its order: an exact id is its curated entry when there is one (else an entry with no
    language); a pattern such as ``almanach/*`` brings the curated entries it matches, then
    itself as an entry with ``is_pattern=True`` (any matching Hub id is allowed).
    """
    names = [name.strip() for name in allowed_models if name and name.strip()]
    if not names:
        return list(CURATED)
    curated = {entry.checkpoint.lower(): entry for entry in CURATED}
    offered: list[CatalogEntry] = []
    seen: set[str] = set()

    def add(entry: CatalogEntry) -> None:
        key = entry.checkpoint.lower()
        if key not in seen:
            seen.add(key)
            offered.append(entry)

    for name in names:
        if is_pattern(name):
            for entry in CURATED:
                if matches_allowed(entry.checkpoint, name):
                    add(entry)
            add(CatalogEntry(name, "", lazy("pattern: any Hub model whose id matches"), is_pattern=True))
        else:
            add(curated.get(name.lower(), CatalogEntry(name, "", "")))
    return offered


def autocomplete(current: str, offered: list[CatalogEntry], limit: int = MAX_CHOICES) -> list[CatalogEntry]:
    """The entries to suggest for what the member has typed so far, best first.

    Case-insensitive: an exact id first, then ids (or the name after ``owner/``) and languages
    that start with the text, then those that contain it (notes included). In the offered order
    within each rank; at most ``limit`` and never more than Discord's 25. Patterns are not
    suggested (they are not checkpoints), nor ids longer than a choice value may be (100).
    Discord lets a member send text that is not among the choices, so any allowed id still works.
    """
    limit = max(0, min(limit, MAX_CHOICES))
    query = " ".join(current.split()).lower()
    ranked: list[tuple[int, int, CatalogEntry]] = []
    seen: set[str] = set()
    for position, entry in enumerate(offered):
        key = entry.checkpoint.lower()
        if entry.is_pattern or key in seen or not entry.checkpoint or len(entry.checkpoint) > CHOICE_VALUE_LIMIT:
            continue
        seen.add(key)
        rank = _rank(query, entry)
        if rank is not None:
            ranked.append((rank, position, entry))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in ranked[:limit]]


def _rank(query: str, entry: CatalogEntry) -> int | None:
    if not query:
        return 1
    checkpoint = entry.checkpoint.lower()
    name = checkpoint.rsplit("/", 1)[-1]
    # A language or a note matches as shown (the current locale) or in English.
    languages = [language for language in {text_of(entry.language).lower(), str(entry.language).lower()} if language]
    notes = {text_of(entry.note).lower(), str(entry.note).lower()}
    if checkpoint == query:
        return 0
    if checkpoint.startswith(query) or name.startswith(query) or any(language.startswith(query) for language in languages):
        return 1
    if query in checkpoint or any(query in language for language in languages):
        return 2
    if any(query in note for note in notes):
        return 3
    return None
