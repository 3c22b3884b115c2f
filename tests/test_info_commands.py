"""help, stats, model list, model info and model set's autocomplete, through discord.py."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.discord_helpers import BotOnFakeDiscord, embed_text, titled


async def test_help_on_both_paths_uses_the_servers_mask_token(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!help")
    text = embed_text(await fake.wait_for_message(titled("Fill-mask bot: help")))
    assert "`!fill Paris is the [MASK] of France.`" in text
    assert "top_k" in text and "targets" in text and "model set" in text and "Manage Server" in text
    token = await fake.send_slash(fake.member_id, "help")
    assert "[MASK]" in embed_text(await fake.wait_for_message(titled("Fill-mask bot: help"), token=token))


async def test_stats_are_for_the_owner_only(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    for _ in range(3):
        mark = fake.mark()
        await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> .")
        await fake.wait_for_message(titled("Fill-mask"), after=mark)
    await fake.send_message(fake.member_id, "!stats")
    assert "owner" in embed_text(await fake.wait_for_message(titled("⚠️")))
    token = await fake.send_slash(fake.owner_id, "stats")
    body = await fake.wait_for_message(titled("Bot statistics"), token=token)
    text = embed_text(body)
    assert "3 answered" in text and "p50" in text and "p95" in text and "(3 requests)" in text
    assert "MiB" in text and "bert-checkpoint" in text and " fp32 · " in text
    assert body.get("flags", 0) & (1 << 6)  # ephemeral


async def test_model_list_marks_loaded_and_default(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model list")
    text = embed_text(await fake.wait_for_message(titled("Fill-mask models")))
    assert "camembert-base" in text and "bert-base-uncased" in text and "xlm-roberta-base" in text
    assert harness.bot.service.default_model in text


async def test_model_info_reads_a_local_card(harness: BotOnFakeDiscord, bert_checkpoint: Path) -> None:
    fake = harness.fake
    carded = bert_checkpoint.parent / "carded-bert"
    if not carded.exists():
        shutil.copytree(bert_checkpoint, carded)
        (carded / "README.md").write_text(
            "---\nlanguage: en\nlicense: mit\ndatasets:\n- toy-corpus\npipeline_tag: fill-mask\n---\n"
            "# Carded BERT\n\nA tiny test model.\n\n## Limitations and bias\n\nIt only knows @everyone and cats.\n",
            encoding="utf-8",
        )
    await fake.send_message(fake.member_id, f"!model info {carded}")
    text = embed_text(await fake.wait_for_message(titled("Model card")))
    assert "fill\\-mask" in text and "mit" in text and "toy\\-corpus" in text  # escaped card text
    assert "It only knows \\@everyone and cats" in text
    mark = fake.mark()
    await fake.send_message(fake.member_id, "!model info")  # the server's own model: no README
    text = embed_text(await fake.wait_for_message(titled("Model card"), after=mark))
    assert "no card" in text.lower() or "README" in text


async def test_model_info_keeps_local_folders_behind_the_policy(harness: BotOnFakeDiscord, tmp_path: Path) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model info /etc")
    text = embed_text(await fake.wait_for_message(titled("⚠️")))
    assert "outside the directories" in text


async def test_model_set_autocomplete_offers_catalog_matches(harness: BotOnFakeDiscord) -> None:
    cog = harness.bot.get_cog("Model")
    choices = await cog.set_autocomplete(None, "camem")  # type: ignore[union-attr]
    assert choices and all("camembert" in c.value.lower() for c in choices[:2])
    assert len(await cog.set_autocomplete(None, "")) <= 25  # type: ignore[union-attr]
