"""Hostile and odd ``fill`` input, through the real bot and a fake Discord (issue 4).

Every entry of ``tests/data/hostile_inputs.json`` is sent as ``!fill <text>`` and as
``/fill text:<text>``. Whatever it is, the bot must answer (a result or a plain-words error),
show no internals, stay within Discord's embed limits, ping nobody, and echo the text escaped
so that it displays literally; and it must still be serving afterwards.

Predictions are arbitrary vocabulary text too: a checkpoint whose top predictions are
mention and markdown syntax (``checkpoints.build_hostile_vocab_checkpoint``) must be shown
escaped as well.

One bot and one fake Discord serve the whole module (module-scoped event loop), so the
~190 cases run in a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
import pytest_asyncio

from bot.adapters.discord.bot import FillMaskBot
from bot.inference.masks import parse_fill_text
from bot.replies.fill import JOINT_FIELD_NAME
from tests.card_limits import assert_embed_within_limits
from tests.checkpoints import HOSTILE_TOP, HOSTILE_VOCAB, LONG_PUNCTUATION_VOCAB, build_hostile_vocab_checkpoint
from tests.discord_helpers import make_settings
from tests.fakediscord import FakeDiscord, RecordedRequest, start_bot, stop_bot

# The async tests share the module's event loop (and so the module's bot).
module_loop = pytest.mark.asyncio(loop_scope="module")

CORPUS_PATH = Path(__file__).parent / "data" / "hostile_inputs.json"
CORPUS: list[dict[str, str]] = json.loads(CORPUS_PATH.read_text(encoding="utf-8"))

# Entries the bot must refuse with a plain-words error (with the tiny BERT test checkpoint);
# every other entry has a usable mask and must get predictions.
EXPECTED_ERRORS = {
    "single_bar_in_sentence": "I need a blank",  # "a" is the sentence, the rest are targets
    "chars_4000": "too long for this model",
    "chars_4001": "keep it under 4000 characters",
    "hundred_masks": "at most 5",
    "six_masks": "at most 5",
    "empty": "Something is missing",  # prefix only: the slash case is skipped
    "whitespace_only": "Something is missing",
    "tokens_65": "too long for this model",
    "tokens_way_over": "too long for this model",
    "zero_width_only": "I need a blank",
    "mask_curly": "I need a blank",
    "mask_spaced": "I need a blank",
    "targets_empty": "Give at least one word",
    "targets_only_commas": "Give at least one word",
    "targets_all_hostile": "None of those target words",
    "targets_special_only": "this model's special tokens",
    "targets_too_many": "at most 25 target words",
    "top_k_zero": "1 to 10",
    "top_k_999": "1 to 10",
    "top_k_negative": "1 to 10",
    "top_k_huge": "1 to 10",
}

NO_MENTIONS = {"parse": []}
# What escape() promises to neutralise: markdown, mention/emoji/timestamp syntax, and "\" itself.
SPECIALS = frozenset("\\*_~`|>#-[]()<@:")
# Bidi overrides/isolates/marks and C0/C1 controls must never reach a reply.
INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
LEAKS = re.compile(r"Traceback|File \"|\bline \d+, in\b|\b[A-Z][A-Za-z]*(?:Error|Exception|Exit|Interrupt)\b")
BEST_GUESS = "\n\n**Best guess:** "
# One prediction line: `rank.` `bar` percent % **word** (the bot's own formatting).
PREDICTION_LINE = re.compile(r"^`(?: \d|\d\d)\.` `[█░]{10}` +\d{1,3}\.\d % \*\*(?P<word>.+)\*\*$", re.DOTALL)
SENTENCE = "the cat sat on the <mask> ."


# -- harness ---------------------------------------------------------------------------


@dataclass
class MonitoredBot:
    fake: FakeDiscord
    bot: FillMaskBot
    errors: list[logging.LogRecord]
    # Every command sent: ("prefix", message id) or ("slash", interaction token).
    sent: list[tuple[str, str]] = field(default_factory=list)


class _ErrorRecorder(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(level=logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in ("bot", "discord"):
            self.into.append(record)


@pytest.fixture(scope="module")
def hostile_vocab_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hostile_vocab_checkpoint(tmp_path_factory.mktemp("hostile-vocab-checkpoint"))


@pytest.fixture(scope="module")
def long_punctuation_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hostile_vocab_checkpoint(
        tmp_path_factory.mktemp("long-punctuation-checkpoint"), tokens=LONG_PUNCTUATION_VOCAB, top=len(LONG_PUNCTUATION_VOCAB)
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory, bert_checkpoint: Path) -> AsyncIterator[MonitoredBot]:
    settings = make_settings(tmp_path_factory.mktemp("hostile-bot"), bert_checkpoint)
    errors: list[logging.LogRecord] = []
    recorder = _ErrorRecorder(errors)
    logging.getLogger().addHandler(recorder)
    try:
        async with FakeDiscord() as fake:
            bot = FillMaskBot(settings)
            await start_bot(bot)
            await bot.registry.get(bot.service.default_model)  # ready before the first case
            yield MonitoredBot(fake, bot, errors)
            await stop_bot(bot)
    finally:
        logging.getLogger().removeHandler(recorder)


# -- checks ----------------------------------------------------------------------------


def unescaped(text: str, specials: frozenset[str] = SPECIALS) -> list[str]:
    """Characters of ``specials`` that Discord would interpret in ``text``, with their context.

    Reads escapes the way Discord's markdown does (a backslash escapes the next character
    unless it is an ASCII letter or digit or white space), so ``\\\\@`` is an escaped
    backslash followed by a live ``@``. A backslash that escapes nothing is reported too:
    escape() doubles every backslash, so a lone one means the escaping went wrong.
    """
    found = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt and not (nxt.isascii() and nxt.isalnum()) and not nxt.isspace():
                i += 2
                continue
            found.append(text[max(0, i - 10) : i + 10])
        elif ch in specials:
            found.append(text[max(0, i - 10) : i + 10])
        i += 1
    return found


def is_escaped(text: str, position: int) -> bool:
    """Whether the (punctuation) character at ``position`` is escaped: an odd run of backslashes before it."""
    run = len(text[:position]) - len(text[:position].rstrip("\\"))
    return run % 2 == 1


def unescape(text: str) -> str:
    return re.sub(r"\\([^0-9A-Za-z\s])", r"\1", text)


def visible(text: str) -> str:
    """What the bot should echo of ``text``: everything but bidi controls and C0/C1 controls,
    lone surrogates as U+FFFD (no JSON reply could carry them)."""
    text = re.sub("[\ud800-\udfff]", "\ufffd", INVISIBLE.sub("", text))
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def embed_strings(embed: dict[str, Any]) -> list[str]:
    strings = [embed.get("title") or "", embed.get("description") or ""]
    for f in embed.get("fields") or []:
        strings += [f.get("name") or "", f.get("value") or ""]
    strings.append((embed.get("footer") or {}).get("text") or "")
    strings.append((embed.get("author") or {}).get("name") or "")
    return strings


def check_message_body(body: dict[str, Any]) -> None:
    """Checks for any message the bot sends or edits, result or error."""
    assert body.get("allowed_mentions") == NO_MENTIONS, body.get("allowed_mentions")
    assert not body.get("content"), f"the bot sent plain content: {body.get('content')!r}"
    assert len(body.get("embeds") or []) <= 10
    for embed in body.get("embeds") or []:
        # The embed as sent (JSON), read back by discord.py: the same checker as the card tests.
        assert_embed_within_limits(discord.Embed.from_dict(embed))
        for text in embed_strings(embed):
            assert not LEAKS.search(text), f"internals in a reply: {text!r}"
            assert not INVISIBLE.search(text), f"bidi control in a reply: {text!r}"
            # Tabs and newlines are the only control characters the bot keeps.
            assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text), (
                f"control character in a reply: {text!r}"
            )
            for syntax in ("@everyone", "@here", "<@", "<#", "</", "<t:", "<:", "<a:"):
                for match in re.finditer(re.escape(syntax), text):
                    assert is_escaped(text, match.start()), f"live {syntax!r} in {text!r}"


def check_result_description(description: str, typed: str) -> None:
    """The quote and the best guess show the user's text literally, and all of it."""
    quote, separator, best = description.partition(BEST_GUESS)
    lines = quote.split("\n")
    for line in lines:
        assert line.startswith("> "), f"quote line without its '> ': {line!r}"
        assert not unescaped(line[2:]), f"unescaped syntax in the quote: {unescaped(line[2:])} of {line!r}"
    # Every @ and < in the description (the bot adds neither) is escaped.
    assert not unescaped(description, frozenset("@<")), unescaped(description, frozenset("@<"))
    if separator:
        assert not unescaped(best), f"unescaped syntax in the best guess: {unescaped(best)} of {best!r}"
    else:  # only when the description had to be shortened to fit
        assert description.endswith("…"), description[-50:]
    if len(typed) <= 1000 and separator:
        shown = unescape("\n".join(line[2:] for line in lines))
        expected = "\n".join(visible(typed).splitlines()) or "\u200b"
        assert shown == expected, "the echo lost or changed characters"


def prediction_words(field_value: str) -> list[str]:
    """The (escaped) words of a predictions field; asserts every line has the bot's layout."""
    words = []
    for line in field_value.split("\n"):
        match = PREDICTION_LINE.match(line)
        assert match, f"not a prediction line: {line!r}"
        word = match.group("word")
        assert not unescaped(word), f"unescaped syntax in a prediction: {unescaped(word)} of {line!r}"
        words.append(word)
    return words


def check_result_embed(embed: dict[str, Any], typed: str) -> None:
    assert embed["title"] == "Fill-mask"
    check_result_description(embed.get("description") or "", typed)
    assert embed.get("fields"), embed
    for f in embed["fields"]:
        if f["name"] == JOINT_FIELD_NAME:  # several blanks: the sentence read together, escaped text
            assert "joint score" in f["value"]
            continue
        assert re.fullmatch(r"Predictions|Mask [1-5] of [1-5]", f["name"]), f["name"]
        prediction_words(f["value"])


def replies_to(message_id: int) -> Any:
    def match(body: dict[str, Any]) -> bool:
        return str((body.get("message_reference") or {}).get("message_id")) == str(message_id)

    return match


def check_requests_since(harness: MonitoredBot, mark: int) -> None:
    """Every request the bot made since ``mark`` succeeded, and every message body is safe."""
    for r in harness.fake.requests[mark:]:
        assert r.ok, f"Discord refused {r!r}: {r.response!r:.500}"
        if r.message is not None:
            check_message_body(r.message)
        check_stored_message(r)


def check_stored_message(r: RecordedRequest) -> None:
    stored = r.response if isinstance(r.response, dict) else None
    if stored is not None and "mention_everyone" in stored:
        assert stored["mention_everyone"] is False and not stored["mentions"] and not stored["mention_roles"], stored


async def send_fill(harness: MonitoredBot, path: str, text: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send ``fill`` on ``path`` as a plain member and return the bot's one reply."""
    fake = harness.fake
    mark = fake.mark()
    if path == "prefix":
        message_id = await fake.send_message(fake.member_id, f"!fill {text}")
        harness.sent.append(("prefix", str(message_id)))
        body = await fake.wait_for_message(replies_to(message_id), after=mark, timeout=30)
        replies = [r for r in fake.requests[mark:] if r.message is not None and replies_to(message_id)(r.message)]
    else:
        token = await fake.send_slash(fake.member_id, "fill", {"text": text, **(options or {})})
        harness.sent.append(("slash", token))
        body = await fake.wait_for_message(after=mark, token=token, timeout=30)
        replies = [r for r in fake.requests[mark:] if r.message is not None and r.token == token]
    assert len(replies) == 1, replies
    check_requests_since(harness, mark)
    assert not (body.get("embeds") or [{}])[0].get("title", "").startswith("⏳"), "the model was not loaded before the case"
    assert len(body.get("embeds") or []) == 1, body
    return body


@contextlib.asynccontextmanager
async def server_model(harness: MonitoredBot, checkpoint: Path) -> AsyncIterator[None]:
    """Switch the fake server to ``checkpoint`` (as its admin, on the prefix path), then back."""
    fake = harness.fake

    def titled(*prefixes: str) -> Any:
        return lambda b: (((b.get("embeds") or [{}])[0].get("title")) or "").startswith(prefixes)

    mark = fake.mark()
    await fake.send_message(fake.admin_id, f"!model set {checkpoint}")
    done = await fake.wait_for_message(titled("✅", "⚠️"), after=mark, timeout=60)
    assert done["embeds"][0]["title"].startswith("✅"), done
    try:
        yield
    finally:
        mark = fake.mark()
        await fake.send_message(fake.admin_id, "!model reset")
        await fake.wait_for_message(titled("✅"), after=mark, timeout=30)
        # Two switches may have evicted the default (MAX_LOADED_MODELS=2): load it before the next case.
        await harness.bot.registry.get(harness.bot.service.default_model)


def check_no_logged_errors(harness: MonitoredBot, before: int) -> None:
    new = harness.errors[before:]
    assert not new, "errors logged: " + "; ".join(f"{r.name}: {r.getMessage()} {r.exc_info!r:.300}" for r in new)


# -- the corpus --------------------------------------------------------------------------


def test_corpus_is_complete() -> None:
    ids = [e["id"] for e in CORPUS]
    assert len(ids) >= 45 and len(set(ids)) == len(ids)
    assert all(set(e) == {"id", "text", "note"} and all(isinstance(v, str) for v in e.values()) for e in CORPUS)
    texts = [e["text"] for e in CORPUS]
    joined = "\n".join(texts)
    for needle in [
        "@everyone",
        "@here",
        "<@1",
        "<@!",
        "<@&",
        "<#",
        "</fill:",
        "```",
        "**",
        "__",
        "~~",
        "> ",
        "# ",
        "-# ",
        "||",
        "](https://",
        "https://",
        "\n",
        "\t",
        "\u200b",
        "\ufeff",
        "\u202e",
        "\u2066",
        "\x00",
        "\u200d",
        "\u0301",
        "[MASK]",
        "<MASK>",
        "mat<mask>.",
        "[CLS]",
        "[SEP]",
        "<s>",
        "</s>",
        "<pad>",
        "k=0 ",
        "k=999 ",
        "k=-1 ",
    ]:
        assert needle in joined, needle
    assert "" in texts and any(t and not t.strip() for t in texts)
    assert any(len(t) == 4000 for t in texts)
    assert any(t.count("<mask>") == 100 for t in texts)
    assert "<mask>" in texts
    assert any(re.search(r"[\u4e00-\u9fff]", t) for t in texts)  # CJK
    assert any(re.search(r"[\u0600-\u06ff]", t) for t in texts)  # Arabic
    assert any(re.search(r"[\u0900-\u097f]", t) for t in texts)  # Devanagari
    assert any(re.search(r"[\U0001F300-\U0001FAFF]", t) for t in texts)  # emoji
    assert any(re.search(r"\|\s*$", t) for t in texts)  # an empty targets part
    assert set(EXPECTED_ERRORS) <= set(ids)
    with_mask = [t for t in texts if re.search(r"<mask>|\[mask\]", t, re.IGNORECASE)]
    assert len(with_mask) > 0.8 * len(texts)


def test_the_checks_catch_what_they_look_for() -> None:
    """The checkers below are what make the Discord tests meaningful: they must not pass vacuously."""
    assert unescaped("\\@everyone \\<\\@1\\> \\*\\*x\\*\\* \\\\") == []
    assert unescaped("\\\\@everyone")  # an escaped backslash, then a live @
    assert unescaped("trailing \\")  # a backslash escaping nothing
    assert unescaped("**x**") and unescaped("[x](http://e)") and unescaped("||x||")
    assert is_escaped("\\@", 1) and not is_escaped("\\\\@", 2) and not is_escaped("@", 0)
    check_result_description("> \\@everyone \\<mask\\>\n\n**Best guess:** everyone x", "@everyone <mask>")
    for description, typed in [
        ("> @everyone \\<mask\\>\n\n**Best guess:** x", "@everyone <mask>"),  # live mention in the quote
        ("> \\@everyone\n\n**Best guess:** <@1>", "@everyone"),  # live mention in the best guess
        ("> \\*\\*x**\n\n**Best guess:** x", "**x**"),  # markdown
        ("> a\nb\n\n**Best guess:** x", "a\nb"),  # a line that left the quote
        ("> \\@everyone\n\n**Best guess:** x", "@everyone typed"),  # lost text
    ]:
        with pytest.raises(AssertionError):
            check_result_description(description, typed)
    good = {"embeds": [{"title": "Fill-mask", "description": "\\<\\@1\\>"}], "allowed_mentions": {"parse": []}}
    check_message_body(good)
    for bad in [
        {**good, "allowed_mentions": {"parse": ["everyone"]}},
        {**good, "allowed_mentions": None},
        {**good, "embeds": [{"title": "x", "description": "hi <@123>"}]},
        {**good, "embeds": [{"title": "x", "description": "\\\\@here"}]},
        {**good, "embeds": [{"title": "KeyError: 'x'"}]},
        {**good, "embeds": [{"title": "x", "description": "\u202e"}]},
        {**good, "embeds": [{"title": "x", "description": "d" * 4000, "fields": [{"name": "n", "value": "v" * 1024}] * 2}]},
        {**good, "embeds": [{"title": "x", "fields": [{"name": "n", "value": "v" * 1025}]}]},
        {**good, "content": "@everyone"},
    ]:
        with pytest.raises(AssertionError):
            check_message_body(bad)
    assert prediction_words("` 1.` `██████████` 100.0 % **\\@everyone**\n`10.` `░░░░░░░░░░`   0.0 % **x**") == [
        "\\@everyone",
        "x",
    ]
    for bad_value in ["` 1.` `██████████` 100.0 % **@everyone**", "` 1.` `██████████` 100.0 % **\\*\\*a**b**", "@here"]:
        with pytest.raises(AssertionError):
            prediction_words(bad_value)


@module_loop
@pytest.mark.parametrize("path", ["prefix", "slash"])
@pytest.mark.parametrize("entry", CORPUS, ids=[e["id"] for e in CORPUS])
async def test_hostile_fill(harness: MonitoredBot, entry: dict[str, str], path: str) -> None:
    text = entry["text"]
    if path == "slash" and not text.strip():
        pytest.skip("Discord rejects an empty (or all-white-space) required string option; the bot never sees it")
    errors_before = len(harness.errors)
    body = await send_fill(harness, path, text)
    embed = body["embeds"][0]
    title = embed.get("title") or ""
    assert title.startswith(("Fill-mask", "⚠️")), title
    assert title != "⚠️ Oops", f"an unexpected exception in the bot (see the log): {embed}"
    if entry["id"] in EXPECTED_ERRORS:
        assert title.startswith("⚠️"), f"expected a refusal, got {embed}"
        assert EXPECTED_ERRORS[entry["id"]] in (embed.get("description") or ""), embed
    else:
        assert title == "Fill-mask", f"expected predictions, got {embed}"
        check_result_embed(embed, parse_fill_text(text).text)
    check_no_logged_errors(harness, errors_before)


@module_loop
@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"top_k": 0}, "⚠️"),
        ({"top_k": 999}, "⚠️"),
        ({"top_k": -1}, "⚠️"),
        ({"top_k": 2**53}, "⚠️"),
        ({"targets": " , , "}, "⚠️"),
        ({"targets": "@everyone, <@&1300000000000000002>, [MASK], ||x||"}, "⚠️"),
        ({"targets": "@everyone, **mat**, </fill:1>, mat"}, "Fill-mask"),
        ({"targets": ", ".join(["mat"] * 40)}, "Fill-mask"),  # repeats collapse to one word
        ({"targets": ", ".join(f"w{i}" for i in range(40))}, "⚠️"),
        ({"targets": "x" * 6000}, "⚠️"),
        ({"top_k": 10, "targets": "mat | dog"}, "Fill-mask"),  # one word, not in the vocabulary: its first piece, mat
    ],
    ids=lambda v: re.sub(r"\W+", "_", str(v))[:40],
)
async def test_hostile_slash_options(harness: MonitoredBot, options: dict[str, Any], expected: str) -> None:
    errors_before = len(harness.errors)
    body = await send_fill(harness, "slash", SENTENCE, options)
    embed = body["embeds"][0]
    assert (embed.get("title") or "").startswith(expected), embed
    assert embed.get("title") != "⚠️ Oops", embed
    if expected == "Fill-mask":
        check_result_embed(embed, SENTENCE)
    check_no_logged_errors(harness, errors_before)


# -- predictions that look like mentions and markdown ----------------------------------------


@module_loop
@pytest.mark.parametrize("path", ["prefix", "slash"])
async def test_hostile_predictions_are_escaped(harness: MonitoredBot, hostile_vocab_checkpoint: Path, path: str) -> None:
    errors_before = len(harness.errors)
    async with server_model(harness, hostile_vocab_checkpoint):
        # Top 10 by the output bias, on two masks (two fields).
        if path == "prefix":
            body = await send_fill(harness, path, "k=10 the <mask> sat on the <mask> .")
        else:
            body = await send_fill(harness, path, "the <mask> sat on the <mask> .", {"top_k": 10})
        embed = body["embeds"][0]
        assert embed["title"] == "Fill-mask", embed
        check_result_embed(embed, "the <mask> sat on the <mask> .")
        joint = [f for f in embed["fields"] if f["name"] == JOINT_FIELD_NAME]
        masks = [f for f in embed["fields"] if f["name"] != JOINT_FIELD_NAME]
        assert len(joint) == 1 and len(masks) == 2
        assert not unescaped(joint[0]["value"], frozenset("@<|")), joint[0]["value"]  # the model's words, escaped
        for f in masks:
            shown = [unescape(word) for word in prediction_words(f["value"])]
            assert shown == [visible(token).strip() for token in HOSTILE_VOCAB[:HOSTILE_TOP]]
        best = embed["description"].partition(BEST_GUESS)[2]
        assert unescape(best) == "the @everyone sat on the @everyone."

        # The rest of the hostile vocabulary, reached as targets (near-equal scores: any order).
        rest = HOSTILE_VOCAB[HOSTILE_TOP:]
        if path == "prefix":
            body = await send_fill(harness, path, f"k=10 {SENTENCE} | {', '.join(rest)}")
        else:
            body = await send_fill(harness, path, SENTENCE, {"top_k": 10, "targets": ", ".join(rest)})
        embed = body["embeds"][0]
        assert embed["title"] == "Fill-mask", embed
        check_result_embed(embed, SENTENCE)
        shown = [unescape(word) for word in prediction_words(embed["fields"][0]["value"])]
        assert sorted(shown) == sorted(visible(token).strip() for token in rest)
    check_no_logged_errors(harness, errors_before)


@module_loop
async def test_long_punctuation_predictions_are_safe(harness: MonitoredBot, long_punctuation_checkpoint: Path) -> None:
    """Ten 64-character runs of markdown/mention characters: escaped, within limits, no pings."""
    async with server_model(harness, long_punctuation_checkpoint):
        body = await send_fill(harness, "prefix", f"k=10 {SENTENCE}")  # send_fill checks limits and mentions
    value = body["embeds"][0]["fields"][0]["value"]
    assert not unescaped(value, frozenset("@<|")), unescaped(value, frozenset("@<|"))


@module_loop
async def test_long_punctuation_predictions_keep_every_line(harness: MonitoredBot, long_punctuation_checkpoint: Path) -> None:
    async with server_model(harness, long_punctuation_checkpoint):
        body = await send_fill(harness, "prefix", f"k=10 {SENTENCE}")
    lines = body["embeds"][0]["fields"][0]["value"].split("\n")
    assert len(lines) == 10
    words = prediction_words("\n".join(lines))  # every line whole: rank, bar, score, **word**
    for word, token in zip(words, LONG_PUNCTUATION_VOCAB, strict=False):
        shown = unescape(word).removesuffix("…")
        assert len(shown) >= 8 and token.startswith(shown), (word, token)


@module_loop
async def test_no_mask_hint_names_each_spelling_once(harness: MonitoredBot) -> None:
    body = await send_fill(harness, "prefix", "the cat sat on the {mask} .")
    description = body["embeds"][0]["description"]
    assert "I need a blank" in description
    assert description.count("`[MASK]`") == 1 and description.count("`<mask>`") == 1, description


@module_loop
async def test_missing_text_usage_shows_the_prefix_syntax(harness: MonitoredBot) -> None:
    body = await send_fill(harness, "prefix", "")
    description = body["embeds"][0]["description"]
    assert "Something is missing" in description
    assert "[top_k]" not in description and "[targets]" not in description, description


# -- still alive, nothing lost ---------------------------------------------------------------


@module_loop
async def test_bot_is_still_serving_and_answered_everything(harness: MonitoredBot) -> None:
    fake, bot = harness.fake, harness.bot
    body = await send_fill(harness, "prefix", "the cat sat on the <mask> .")
    assert "**mat**" in body["embeds"][0]["fields"][0]["value"].splitlines()[0]
    assert fake.connected and bot.is_ready() and not bot.is_closed()

    # Over the whole module: one reply per command, every body safe, nothing refused by Discord.
    for kind, key in harness.sent:
        if kind == "prefix":
            replies = [r for r in fake.requests if r.message is not None and replies_to(int(key))(r.message)]
        else:
            replies = [r for r in fake.requests if r.message is not None and r.token == key]
        assert len(replies) == 1, (kind, key, replies)
    check_requests_since(harness, 0)
    check_no_logged_errors(harness, 0)
