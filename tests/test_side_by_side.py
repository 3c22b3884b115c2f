"""Answers side by side: ``compare`` (two checkpoints, one sentence) and the bias lens
(``{man|woman}``: one sentence, different words), in the service, the reply and through
discord.py's real command processing on both paths.

Each column must equal ``pipeline("fill-mask")`` on that column's own sentence; the words
shared by every column and the words only one column has come from those lists. The bias lens
uses a tiny BERT trained on tests/data/corpus_bias.txt, where "man" and "woman" go with
different jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import pipeline

from bot.i18n import LOCALES, Locale, using_locale
from bot.inference.checkpoint_policy import CheckpointPolicy, display_name
from bot.inference.errors import CheckpointNotAllowedError, InvalidRequestError, NoMaskError
from bot.inference.loading import load_masked_lm
from bot.inference.masks import parse_fill_text
from bot.inference.registry import ModelRegistry
from bot.inference.types import FillResult, Prediction
from bot.replies.reply import to_markdown
from bot.replies.side_by_side import ONLY_HERE, comparison_reply, variants_reply
from bot.service.fill_mask_service import (
    AnswerColumn,
    ComparedModelUnavailableError,
    ComparisonAnswer,
    FillMaskService,
    VariantsAnswer,
)
from bot.service.guild_settings import DefaultOnlySettings, SqliteGuildSettings
from tests.card_limits import assert_card_within_limits
from tests.checkpoints import BIAS_SENTENCE, BIAS_SHARED, BIAS_TOPS, build_bias_checkpoint
from tests.discord_helpers import BotOnFakeDiscord, bot_on_fake_discord, embed_text, make_settings, titled

GUILD = 4242
EN_SENTENCE = "the cat sat on the [MASK] ."


@pytest.fixture(scope="module")
def bias_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bias_checkpoint(tmp_path_factory.mktemp("bias-checkpoint"))


def pipeline_top(checkpoint: Path, sentence: str, top_k: int, targets: list[str] | None = None) -> list[tuple[str, float]]:
    """What transformers' own fill-mask pipeline says for ``sentence``: (token_str, score) pairs."""
    pipe = pipeline("fill-mask", model=str(checkpoint), device="cpu")
    mask = pipe.tokenizer.mask_token  # pyright: ignore[reportOptionalMemberAccess]
    out: Any = pipe(sentence.replace("[MASK]", mask).replace("<mask>", mask), top_k=top_k, targets=targets)
    return [(str(item["token_str"]), float(item["score"])) for item in out]


def column_pairs(result: FillResult, blank: int = 0) -> list[tuple[str, float]]:
    return [(p.token_str, p.score) for p in result.masks[blank]]


def assert_same_predictions(got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [word for word, _ in got] == [word for word, _ in expected]
    for (_, score), (_, want) in zip(got, expected, strict=True):
        assert score == pytest.approx(want, abs=1e-4)


@pytest.fixture
async def service(tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path) -> AsyncIterator[FillMaskService]:
    registry = ModelRegistry(load_masked_lm, max_loaded=3)
    store = await SqliteGuildSettings(tmp_path / "settings.sqlite3").open()
    policy = CheckpointPolicy(allow_local_models=True, local_roots=(bert_checkpoint.parent, camembert_checkpoint.parent))
    yield FillMaskService(registry, store, default_model=str(bert_checkpoint), policy=policy)
    await store.close()
    await registry.aclose()


# -- compare ---------------------------------------------------------------------------------


async def test_compare_answers_with_both_checkpoints_each_with_its_own_mask_token(
    service: FillMaskService, bert_checkpoint: Path, camembert_checkpoint: Path
) -> None:
    # Typed with BERT's [MASK]: the CamemBERT column gets <mask>.
    query = service.query(EN_SENTENCE, top_k=5, compare=str(camembert_checkpoint))
    other = await service.compare_checkpoint(GUILD, str(camembert_checkpoint))
    assert service.needs_load(other)
    answer = await service.compare(GUILD, query, other)
    mine, theirs = answer.columns
    assert mine.result.checkpoint == str(bert_checkpoint) and theirs.result.checkpoint == str(camembert_checkpoint)
    assert "[MASK]" in mine.result.text and "<mask>" in theirs.result.text and "[MASK]" not in theirs.result.text
    assert_same_predictions(column_pairs(mine.result), pipeline_top(bert_checkpoint, EN_SENTENCE, 5))
    assert_same_predictions(column_pairs(theirs.result), pipeline_top(camembert_checkpoint, EN_SENTENCE, 5))
    # Comparing loads the checkpoint for the fill, but the server's model is still its own.
    assert await service.checkpoint_for(GUILD) == str(bert_checkpoint)
    assert await service.store.get_checkpoint(GUILD) is None
    assert not service.needs_load(other)


async def test_compare_shows_the_shared_words_and_marks_the_others(
    service: FillMaskService, bert_checkpoint: Path, camembert_checkpoint: Path
) -> None:
    query = service.query(f"compare={camembert_checkpoint} k=10 {EN_SENTENCE}")
    assert query.compare == str(camembert_checkpoint) and query.top_k == 10 and query.text == EN_SENTENCE
    answer = await service.compare(GUILD, query, await service.compare_checkpoint(GUILD, query.compare))
    reply = to_markdown(comparison_reply(answer))
    first_words = [p.token_str.strip().casefold() for p in answer.columns[0].result.masks[0]]
    second_words = [p.token_str.strip().casefold() for p in answer.columns[1].result.masks[0]]
    shared = [word for word in first_words if word in second_words]
    columns = [f for f in reply.fields if f.inline]
    assert [f.name for f in columns] == [f"`{display_name(c.label)}`" for c in answer.columns]
    summary = next(f for f in reply.fields if not f.inline)
    if shared:
        assert summary.value.endswith(f"{len(shared)} word{'s' if len(shared) != 1 else ''} of the top 10 in common")
    else:
        assert summary.value.startswith("No word in common")
    for field, words, others in ((columns[0], first_words, second_words), (columns[1], second_words, first_words)):
        lines = field.value.splitlines()
        assert len(lines) == 10
        assert [line.endswith(ONLY_HERE) for line in lines] == [word not in others for word in words]


async def test_a_compare_is_resolved_once_per_command(service: FillMaskService, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolving asks the Hub for a renamed repo's id: the cog resolves (for the cooldown) and the
    flow reuses it, so one compare is one Hub request."""
    asked: list[str] = []
    monkeypatch.setattr("bot.service.fill_mask_service.canonical_hub_id", lambda ref: asked.append(ref) or f"new/{ref}")
    query = await service.resolve_compare(GUILD, service.query(EN_SENTENCE, compare="bert-base-uncased"))
    assert query.compared == "new/bert-base-uncased" and query.compare == "bert-base-uncased"
    assert await service.resolve_compare(GUILD, query) is query
    assert asked == ["bert-base-uncased"]


async def test_compare_with_the_servers_own_model_is_refused(service: FillMaskService, bert_checkpoint: Path) -> None:
    with pytest.raises(InvalidRequestError, match="already this server's model"):
        await service.compare_checkpoint(GUILD, str(bert_checkpoint))


async def test_compare_obeys_the_owners_policy(tmp_path: Path, bert_checkpoint: Path, camembert_checkpoint: Path) -> None:
    registry = ModelRegistry(load_masked_lm, max_loaded=2)
    strict = FillMaskService(
        registry, await SqliteGuildSettings(tmp_path / "s.sqlite3").open(), default_model=str(bert_checkpoint)
    )
    try:
        with pytest.raises(CheckpointNotAllowedError):
            await strict.compare_checkpoint(GUILD, str(camembert_checkpoint))
        assert registry.loaded == [] or str(camembert_checkpoint) not in registry.loaded
    finally:
        await strict.store.close()
        await registry.aclose()


async def test_a_compared_checkpoint_that_cannot_load_says_so(service: FillMaskService, tmp_path: Path) -> None:
    missing = Path(service.policy.local_roots[0]) / "no-such-checkpoint"
    query = service.query(EN_SENTENCE, compare=str(missing))
    other = await service.compare_checkpoint(GUILD, str(missing))
    with pytest.raises(ComparedModelUnavailableError, match="can't be compared right now"):
        await service.compare(GUILD, query, other)


# -- the bias lens ----------------------------------------------------------------------------


@pytest.fixture
async def bias_service(tmp_path: Path, bias_checkpoint: Path) -> AsyncIterator[FillMaskService]:
    registry = ModelRegistry(load_masked_lm, max_loaded=1)
    store = await SqliteGuildSettings(tmp_path / "settings.sqlite3").open()
    yield FillMaskService(registry, store, default_model=str(bias_checkpoint))
    await store.close()
    await registry.aclose()


@pytest.mark.parametrize("top_k", [3, 5])
async def test_each_variant_is_the_pipeline_on_its_own_sentence_in_one_batched_pass(
    bias_service: FillMaskService, bias_checkpoint: Path, top_k: int
) -> None:
    answer = await bias_service.variants(GUILD, bias_service.query(BIAS_SENTENCE, top_k=top_k))
    assert [column.label for column in answer.columns] == list(BIAS_TOPS)
    for column in answer.columns:
        sentence = BIAS_SENTENCE.replace("{man|woman}", column.label)
        assert column.result.masks[0][0].token_str == BIAS_TOPS[column.label]
        assert_same_predictions(column_pairs(column.result), pipeline_top(bias_checkpoint, sentence, top_k))
        assert column.result.batch_size == len(answer.columns)  # queued together, answered together


async def test_the_bias_reply_marks_what_only_one_variant_has_and_lists_the_shared_words(
    bias_service: FillMaskService,
) -> None:
    answer = await bias_service.variants(GUILD, bias_service.query(BIAS_SENTENCE, top_k=3))
    reply = to_markdown(variants_reply(answer))
    man, woman, shared = reply.fields
    assert man.name == "man" and woman.name == "woman" and man.inline and woman.inline and not shared.inline
    # doctor/pilot only for "man", nurse/singer only for "woman", teacher in both.
    assert f"**{BIAS_TOPS['man']}**" in man.value.splitlines()[0] and man.value.splitlines()[0].endswith(ONLY_HERE)
    assert f"**{BIAS_TOPS['woman']}**" in woman.value.splitlines()[0] and woman.value.splitlines()[0].endswith(ONLY_HERE)
    teacher = next(line for line in man.value.splitlines() if BIAS_SHARED in line)
    assert not teacher.endswith(ONLY_HERE)
    assert shared.value.splitlines()[0] == f"**{BIAS_SHARED}**"
    assert "model info" in reply.footer and display_name(answer.checkpoint) in reply.footer


async def test_the_variants_score_the_same_targets(bias_service: FillMaskService, bias_checkpoint: Path) -> None:
    answer = await bias_service.variants(GUILD, bias_service.query(f"{BIAS_SENTENCE} | nurse, doctor"))
    for column in answer.columns:
        assert {p.token_str for p in column.result.masks[0]} == {"nurse", "doctor"}
        sentence = BIAS_SENTENCE.replace("{man|woman}", column.label)
        assert_same_predictions(column_pairs(column.result), pipeline_top(bias_checkpoint, sentence, 2, ["nurse", "doctor"]))


def test_a_bar_inside_a_group_belongs_to_the_group() -> None:
    parsed = parse_fill_text("The {man|woman} worked as a <mask>.")
    assert parsed.targets is None and parsed.text == "The {man|woman} worked as a <mask>."
    assert [g.alternatives for g in parsed.groups] == [("man", "woman")]
    parsed = parse_fill_text("The {man | woman | child} worked as a <mask>. | nurse, doctor")
    assert parsed.targets == ("nurse", "doctor") and parsed.groups[0].alternatives == ("man", "woman", "child")
    # Braces without a bar stay part of the sentence; so do unmatched ones.
    assert parse_fill_text("a {set} of <mask> :-{").groups == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("The {a|b|c|d|e} worked as a [MASK] .", "2 to 4 alternatives"),
        ("The {man} and {a|b} and {c|d} [MASK] .", "one `{…|…}` group per sentence"),
        ("The {man|{a|b}} worked as a [MASK] .", "can't hold another group"),
        ("The {man|} worked as a [MASK] .", "needs a word"),
        ("The {" + "x" * 41 + "|y} worked as a [MASK] .", "under 40 characters"),
    ],
)
def test_unsupported_groups_are_told_in_words(bias_service: FillMaskService, text: str, says: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        bias_service.query(text)
    for locale in LOCALES:
        with using_locale(locale):
            shown = refused.value.localized()
        assert "{{" not in shown and "}}" not in shown and "{…|…}" in shown  # literal braces, once
    assert says in str(refused.value)


async def test_a_group_with_several_blanks_or_a_blank_inside_is_refused(bias_service: FillMaskService) -> None:
    with pytest.raises(InvalidRequestError, match="works with one blank: your sentence has 2"):
        await bias_service.variants(GUILD, bias_service.query("the {man|woman} [MASK] as a [MASK] ."))
    with pytest.raises(InvalidRequestError, match="outside the"):
        await bias_service.variants(GUILD, bias_service.query("the {man|[MASK]} worked as a [MASK] ."))
    with pytest.raises(NoMaskError):
        await bias_service.variants(GUILD, bias_service.query("the {man|woman} worked ."))
    with pytest.raises(InvalidRequestError, match="not both at once"):
        bias_service.query("compare=bert-base-uncased the {man|woman} worked as a [MASK] .")


# -- reply limits, any alternatives -------------------------------------------------------------


def _result(words: list[str]) -> FillResult:
    predictions = tuple(Prediction(1 / (i + 2), i, word, f"x {word}") for i, word in enumerate(words))
    return FillResult("some/checkpoint", "x [MASK]", (predictions,), "x " + (words[0] if words else ""))


_hostile = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s)


@pytest.mark.parametrize("locale", LOCALES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alternatives=st.lists(_hostile, min_size=2, max_size=4),
    words=st.lists(st.lists(st.text(min_size=0, max_size=80), min_size=0, max_size=10), min_size=4, max_size=4),
    typed=st.text(max_size=4000),
)
def test_the_bias_reply_stays_within_discords_limits_for_any_alternatives(
    locale: Locale, alternatives: list[str], words: list[list[str]], typed: str
) -> None:
    columns = tuple(AnswerColumn(label, _result(words[i])) for i, label in enumerate(alternatives))
    with using_locale(locale):
        reply = variants_reply(VariantsAnswer(typed, "some/checkpoint", columns))
    assert_card_within_limits(reply)


@pytest.mark.parametrize("locale", LOCALES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words=st.lists(st.lists(st.text(min_size=0, max_size=80), min_size=0, max_size=10), min_size=2, max_size=2),
    checkpoint=st.text(min_size=1, max_size=300),
)
def test_the_comparison_reply_stays_within_discords_limits(locale: Locale, words: list[list[str]], checkpoint: str) -> None:
    columns = (AnswerColumn(checkpoint, _result(words[0])), AnswerColumn("b/two", _result(words[1])))
    with using_locale(locale):
        assert_card_within_limits(comparison_reply(ComparisonAnswer("x [MASK]", columns)))


# -- through Discord ----------------------------------------------------------------------------


@pytest.fixture
async def bias_bot(tmp_path: Path, bias_checkpoint: Path, camembert_checkpoint: Path) -> AsyncIterator[BotOnFakeDiscord]:
    settings_ = make_settings(tmp_path, bias_checkpoint, local_model_dirs=(bias_checkpoint.parent, camembert_checkpoint.parent))
    async with bot_on_fake_discord(settings_) as running:
        yield running


async def test_the_bias_lens_on_the_prefix_and_the_slash_path(bias_bot: BotOnFakeDiscord) -> None:
    fake = bias_bot.fake
    mark = fake.mark()
    await fake.send_message(fake.member_id, f"!fill {BIAS_SENTENCE}")
    prefix = await fake.wait_for_message(titled("Fill-mask: one sentence"), after=mark, timeout=60)
    await bias_bot.bot.tree.sync()
    token = await fake.send_slash(fake.member_id, "fill", {"text": BIAS_SENTENCE, "top_k": 3})
    slash = await fake.wait_for_message(titled("Fill-mask: one sentence"), token=token, timeout=60)
    for body in (prefix, slash):
        fields = body["embeds"][0]["fields"]
        assert [f["name"] for f in fields[:2]] == ["man", "woman"]
        assert f"**{BIAS_TOPS['man']}**" in fields[0]["value"].splitlines()[0]
        assert f"**{BIAS_TOPS['woman']}**" in fields[1]["value"].splitlines()[0]
        assert body.get("allowed_mentions") == {"parse": []}
    assert "I need a blank" not in embed_text(prefix)


async def test_compare_on_the_prefix_and_the_slash_path(bias_bot: BotOnFakeDiscord, camembert_checkpoint: Path) -> None:
    fake = bias_bot.fake
    mark = fake.mark()
    await fake.send_message(fake.member_id, f"!fill compare={camembert_checkpoint} the man worked as a [MASK] .")
    prefix = await fake.wait_for_message(titled("Fill-mask: two checkpoints"), after=mark, timeout=120)
    await bias_bot.bot.tree.sync()
    token = await fake.send_slash(
        fake.member_id, "fill", {"text": "the man worked as a <mask> .", "compare": str(camembert_checkpoint)}
    )
    slash = await fake.wait_for_message(titled("Fill-mask: two checkpoints"), token=token, timeout=60)
    for body in (prefix, slash):
        names = [f["name"] for f in body["embeds"][0]["fields"] if f.get("inline")]
        assert names == [
            f"`{display_name(str(bias_bot.settings.default_model))}`",
            f"`{display_name(str(camembert_checkpoint))}`",
        ]
    # The server's model did not change.
    assert await bias_bot.bot.service.checkpoint_for(fake.guild_id) == bias_bot.bot.service.default_model


async def test_a_compare_that_loads_costs_a_model_set_cooldown_and_a_failed_one_is_refunded(
    tmp_path: Path, bias_checkpoint: Path, camembert_checkpoint: Path, bert_checkpoint: Path
) -> None:
    roots = (bias_checkpoint.parent, camembert_checkpoint.parent, bert_checkpoint.parent, tmp_path)
    settings_ = make_settings(tmp_path, bias_checkpoint, local_model_dirs=roots, model_set_cooldown_seconds=600)
    async with bot_on_fake_discord(settings_) as running:
        fake, bot = running.fake, running.bot

        async def compare(checkpoint: Path) -> dict[str, Any]:
            mark = fake.mark()
            await fake.send_message(fake.member_id, f"!fill compare={checkpoint} the man worked as a [MASK] .")
            return await fake.wait_for_message(lambda m: titled("Fill-mask")(m) or titled("⚠️")(m), after=mark, timeout=120)

        missing = tmp_path / "missing-checkpoint"
        assert "can't be compared right now" in embed_text(await compare(missing))  # refunded
        assert titled("Fill-mask: two checkpoints")(await compare(camembert_checkpoint))  # this one loaded
        cooled = await compare(bert_checkpoint)  # would load another: the server's turn is spent
        assert titled("⚠️ Cooldown")(cooled) and str(bert_checkpoint) not in bot.registry.loaded
        # With a checkpoint already loaded, a compare costs only a fill.
        assert titled("Fill-mask: two checkpoints")(await compare(camembert_checkpoint))
        # A right-clicked `compare=` message shares the server's turn (and otherwise answers it).
        from bot.adapters.discord.cogs.context_menu import MENU_NAME

        await bot.tree.sync()
        for checkpoint, title in ((bert_checkpoint, "⚠️ Cooldown"), (camembert_checkpoint, "Fill-mask: two checkpoints")):
            message_id = await fake.send_message(fake.member_id, f"compare={checkpoint} the man worked as a [MASK] .")
            token = await fake.send_message_command(fake.member_id, MENU_NAME, message_id)
            assert titled(title)(await fake.wait_for_message(token=token, timeout=60))
        assert str(bert_checkpoint) not in bot.registry.loaded


async def test_compare_and_the_bias_lens_in_the_console(bias_checkpoint: Path, camembert_checkpoint: Path) -> None:
    import io

    from bot.adapters.console import Console

    registry = ModelRegistry(load_masked_lm, max_loaded=2)
    policy = CheckpointPolicy(allow_local_models=True, local_roots=(camembert_checkpoint.parent,))
    service = FillMaskService(registry, DefaultOnlySettings(), default_model=str(bias_checkpoint), policy=policy)
    out = io.StringIO()
    console = Console(service, "!", out)
    try:
        await console.handle(f"!fill {BIAS_SENTENCE}")
        await console.handle(f"!fill compare={camembert_checkpoint} the man worked as a [MASK] .")
    finally:
        await registry.aclose()
    text = out.getvalue()
    assert "Fill-mask: one sentence, different words" in text and "-- man --" in text and "-- woman --" in text
    assert "Fill-mask: two checkpoints" in text and f"-- `{display_name(str(camembert_checkpoint))}` --" in text


@pytest.mark.parametrize("mask", ["[MASK]", "<mask>"])
def test_help_shows_the_bias_lens_and_compare_with_the_servers_mask_token(mask: str) -> None:
    from bot.replies.info import help_reply

    reply = to_markdown(help_reply("?", mask, "some/checkpoint"))
    side = next(f for f in reply.fields if f.name == "Side by side")
    assert f"`?fill The {{man|woman}} worked as a {mask}.`" in side.value
    assert f"`?fill compare=bert-base-uncased Paris is the {mask} of France.`" in side.value


async def test_the_compare_option_autocompletes_like_model_set(bias_bot: BotOnFakeDiscord) -> None:
    from bot.adapters.discord.cogs.fill import FillCog
    from bot.adapters.discord.cogs.models import ModelCog

    fill, model = bias_bot.bot.get_cog("Fill"), bias_bot.bot.get_cog("Model")
    assert isinstance(fill, FillCog) and isinstance(model, ModelCog)
    compare = await fill.compare_autocomplete(None, "bert")  # type: ignore[arg-type]
    switch = await model.set_autocomplete(None, "bert")  # type: ignore[arg-type]
    assert compare and [c.value for c in compare] == [c.value for c in switch]
    assert any("bert-base" in c.value for c in compare)
