"""``model search`` and ``model set``'s Hub autocomplete, through discord.py and the console,
with the real huggingface_hub client talking to the Hub stand-in (tests/fakehub)."""

from __future__ import annotations

import asyncio
import io
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from bot.adapters.console import Console
from bot.adapters.discord.cogs.models import ModelCog
from bot.replies.model_search import model_search_reply
from bot.replies.reply import to_markdown
from bot.service.hub_search import HubModel, ModelSearch, SearchTerms, parse_terms, search_url
from tests.card_limits import assert_card_within_limits
from tests.discord_helpers import BotOnFakeDiscord, embed_text, titled
from tests.fakehub import FakeHub

LISTING = r"^/api/models$"
# id, downloads, languages, license
CAMEMBERTS: list[tuple[str, int, str | list[str] | None, str | None]] = [
    ("acme/camembert-large", 90_000, ["fr", "en"], "apache-2.0"),
    ("acme/camembert-small", 5_000, "fr", "mit"),
    ("other/camembert-legal", 700, "fr", "cc-by-4.0"),
    ("enfr/camembert-english", 300, "en", "mit"),
    ("bulk/camembert-v1", 60, "fr", None),
    ("bulk/camembert-v2", 50, None, "mit"),
    ("bulk/camembert-v3", 40, "de", "mit"),
]


def add_models(hub: FakeHub, folder: Path, specs: list[tuple[str, int, str | list[str] | None, str | None]]) -> None:
    for repo_id, downloads, language, license_ in specs:
        hub.add_repo(repo_id, folder, downloads=downloads, language=language, license=license_)


def listed(body: dict[str, Any]) -> list[str]:
    """The model ids a search reply lists, in order."""
    description = body["embeds"][0].get("description") or ""
    return re.findall(r"^\d+\. `([^`]+)`", description, flags=re.M)


def cog(harness: BotOnFakeDiscord) -> ModelCog:
    found = harness.bot.get_cog("Model")
    assert found is not None and type(found).__name__ == "ModelCog"  # loaded as an extension: its own module copy
    return cast("ModelCog", found)


@pytest.fixture
def camemberts(fake_hub: FakeHub, bert_checkpoint: Path) -> FakeHub:
    add_models(fake_hub, bert_checkpoint, CAMEMBERTS)
    fake_hub.add_repo("acme/camembert-writer", bert_checkpoint, downloads=10**7, pipeline_tag="text-generation")
    fake_hub.add_repo("acme/bert-base", bert_checkpoint, downloads=10**6, language="en")
    return fake_hub


# -- search ------------------------------------------------------------------------------


async def test_search_lists_fill_mask_models_by_downloads_across_pages(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model search camembert")
    body = await fake.wait_for_message(titled("Hub search"))
    # Most downloaded first; the text-generation model and the non-matching one left out.
    assert listed(body) == [spec[0] for spec in CAMEMBERTS]
    text = embed_text(body)
    assert "90k downloads · fr, en · apache\\-2.0" in text
    assert "`bulk/camembert-v1` — 60 downloads · fr · license not stated" in text
    assert "`bulk/camembert-v2` — 50 downloads · language not stated · mit" in text
    assert "Filtered" not in text  # no allow-list: nothing is filtered
    assert "/model set" in text or "!model set" in text
    # 7 matches, the stand-in's pages hold 5: the second page was followed.
    pages = camemberts.find(method="GET", path=LISTING)
    assert len(pages) == 2
    first = pages[0]
    assert first.query["pipeline_tag"] == ["fill-mask"] and first.query["search"] == ["camembert"]
    assert first.query["sort"] == ["downloads"]
    assert {"downloads", "cardData"} <= set(first.query["expand"])


async def test_search_shows_ten_and_counts_the_rest(harness: BotOnFakeDiscord, fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    add_models(fake_hub, bert_checkpoint, [(f"many/roberta-{i:02d}", 1000 - i, "en", "mit") for i in range(13)])
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model search roberta")
    body = await fake.wait_for_message(titled("Hub search"))
    assert listed(body) == [f"many/roberta-{i:02d}" for i in range(10)]
    assert "… and 3 more" in body["embeds"][0]["footer"]["text"]


async def test_search_by_language_on_both_paths(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model search camembert en")
    body = await fake.wait_for_message(titled("Hub search"))
    assert listed(body) == ["acme/camembert-large", "enfr/camembert-english"]
    assert "in `en`" in embed_text(body)

    mark = fake.mark()
    token = await fake.send_slash(fake.member_id, "model", {"words": "camembert", "language": "German"}, subcommand="search")
    body = await fake.wait_for_message(titled("Hub search"), token=token, after=mark)
    assert listed(body) == ["bulk/camembert-v3"]


async def test_search_keeps_to_the_owners_allow_list(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    service = harness.bot.service
    service.policy = replace(service.policy, allowed_models=("acme/*", "bulk/camembert-v2"))
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model search camembert")
    body = await fake.wait_for_message(titled("Hub search"))
    assert listed(body) == ["acme/camembert-large", "acme/camembert-small", "bulk/camembert-v2"]
    assert "**Filtered**: only the models this bot's owner allows are listed (4 left out)" in embed_text(body)

    mark = fake.mark()
    service.policy = replace(service.policy, allowed_models=("nobody/*",))
    await fake.send_message(fake.member_id, "!model search camembert fr")
    text = embed_text(await fake.wait_for_message(titled("Hub search"), after=mark))
    assert "allows none of them (4 left out)" in text


async def test_search_escapes_what_the_hub_says(harness: BotOnFakeDiscord, fake_hub: FakeHub, bert_checkpoint: Path) -> None:
    fake_hub.add_repo("evil/xlm_thing", bert_checkpoint, downloads=5, language="@everyone", license="**mine** <@1>")
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model search xlm_thing")
    body = await fake.wait_for_message(titled("Hub search"))
    description = body["embeds"][0]["description"]
    assert "\\@everyone" in description and "\\*\\*mine\\*\\* \\<\\@1\\>" in description
    assert "@everyone" not in description.replace("\\@everyone", "")


async def test_no_match_is_not_a_hub_failure(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model search flaubert")
    text = embed_text(await fake.wait_for_message(titled("Hub search")))
    assert "No fill-mask model on the Hugging Face Hub matches “flaubert”" in text


async def test_hub_errors_are_told_as_what_they_are(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    fake = harness.fake
    camemberts.fail(LISTING, 503)
    await fake.send_message(fake.member_id, "!model search camembert")
    body = await fake.wait_for_message(titled("⚠️"))
    text = embed_text(body)
    assert "I can't reach the Hugging Face Hub right now" in text and "HTTP 503" in text
    assert "Traceback" not in text
    assert len(camemberts.find(path=LISTING)) == 1  # asked once: no retry storm

    # The failure is kept a little while (the same answer, no new request), then asked again.
    mark = fake.mark()
    await fake.send_message(fake.member_id, "!model search camembert")
    assert "HTTP 503" in embed_text(await fake.wait_for_message(titled("⚠️"), after=mark))
    assert len(camemberts.find(path=LISTING)) == 1
    harness.bot.service.hub_search.clear()
    mark = fake.mark()
    await fake.send_message(fake.member_id, "!model search camembert")
    assert listed(await fake.wait_for_message(titled("Hub search"), after=mark))

    harness.bot.service.hub_search.clear()
    camemberts.fail(LISTING, 429)
    mark = fake.mark()
    token = await fake.send_slash(fake.admin_id, "model", {"words": "camembert"}, subcommand="search")
    text = embed_text(await fake.wait_for_message(titled("⚠️"), token=token, after=mark))
    assert "limiting how often I can ask" in text


async def test_search_answers_are_cached(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    fake = harness.fake
    for _ in range(2):
        mark = fake.mark()
        await fake.send_message(fake.member_id, "!model search CamemBERT")
        assert len(listed(await fake.wait_for_message(titled("Hub search"), after=mark))) == 7
    assert len(camemberts.find(path=LISTING)) == 2  # one search, its two pages


async def test_search_has_a_per_user_cooldown(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    fake = harness.fake
    for _ in range(3):
        mark = fake.mark()
        await fake.send_message(fake.member_id, "!model search camembert")
        await fake.wait_for_message(titled("Hub search"), after=mark)
    mark = fake.mark()
    await fake.send_message(fake.member_id, "!model search camembert")
    assert "Slow down" in embed_text(await fake.wait_for_message(titled("⚠️"), after=mark))
    mark = fake.mark()
    await fake.send_message(fake.admin_id, "!model search camembert")  # another user is not slowed
    await fake.wait_for_message(titled("Hub search"), after=mark)


async def test_offline_search_says_it_needs_the_hub(harness: BotOnFakeDiscord) -> None:
    # The session runs with HF_HUB_OFFLINE=1 (no fake_hub fixture here).
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model search camembert fr")
    text = embed_text(await fake.wait_for_message(titled("⚠️")))
    assert "Searching needs the Hugging Face Hub" in text and "offline" in text


async def test_empty_search_and_unknown_language(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model search")
    assert "words" in embed_text(await fake.wait_for_message(titled("⚠️")))
    mark = fake.mark()
    token = await fake.send_slash(fake.member_id, "model", {"words": "bert", "language": "klingon!"}, subcommand="search")
    text = embed_text(await fake.wait_for_message(titled("⚠️"), token=token, after=mark))
    assert "language" in text


async def test_console_search(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    out = io.StringIO()
    console = Console(harness.bot.service, "!", out)
    await console.handle("!model search camembert language:fr")
    text = out.getvalue()
    assert "Hub search: `camembert`" in text
    assert "1. `acme/camembert-large` — 90k downloads · fr, en · apache-2.0" in text  # plain text: not escaped
    assert "enfr/camembert-english" not in text and "!model set" in text


def test_search_terms() -> None:
    assert parse_terms("camembert fr") == parse_terms("camembert", "fr") == parse_terms("language:fr camembert")
    assert parse_terms("camembert fr").words == "camembert"
    assert parse_terms("bert base uncased").language is None
    assert parse_terms("bert french").language == "fr"
    assert parse_terms("fr").words == "fr"  # a lone word is what to search for


def test_reply_stays_within_discord_limits() -> None:
    owner, name = "o" * 96, "n" * 90
    models = tuple(
        HubModel(f"{owner}/{name}{i:04d}", downloads=10**9, languages=("*_`|<@&" * 5,) * 40, license="~" * 300, gated=True)
        for i in range(100)
    )
    terms = SearchTerms("x" * 100, "fr")
    search = ModelSearch(terms, models, 900, True, False, None, search_url(terms))
    reply = model_search_reply(search)
    assert_card_within_limits(reply)
    card = to_markdown(reply)
    assert listed({"embeds": [{"description": card.description}]})[0] == models[0].id  # whole ids
    assert "more matches" in card.footer and "Filtered" in card.description


# -- autocomplete ------------------------------------------------------------------------


async def test_autocomplete_offers_hub_models_when_online(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    choices = await cog(harness).set_autocomplete(None, "camem")  # type: ignore[arg-type]
    values = [choice.value for choice in choices]
    # One page of the Hub's answer (the stand-in's pages hold 5), most downloaded first.
    assert values[:5] == [spec[0] for spec in CAMEMBERTS[:5]]
    assert "acme/camembert-writer" not in values  # not fill-mask
    assert "camembert-base" in values  # the curated ones still come after
    assert len(choices) <= 25 and all(len(c.name) <= 100 for c in choices)
    assert any("90,000 downloads" in choice.name for choice in choices)
    # Kept per prefix: the next call asks nothing.
    before = len(camemberts.find(path=LISTING))
    await cog(harness).set_autocomplete(None, "camem")  # type: ignore[arg-type]
    assert len(camemberts.find(path=LISTING)) == before


async def test_autocomplete_keeps_to_the_allow_list(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    service = harness.bot.service
    service.policy = replace(service.policy, allowed_models=("bulk/*",))
    values = [c.value for c in await cog(harness).set_autocomplete(None, "camem")]  # type: ignore[arg-type]
    assert values and all(value.startswith("bulk/") for value in values)
    # Exact ids only: the Hub is not asked at all.
    camemberts.clear_requests()
    service.policy = replace(service.policy, allowed_models=("camembert-base", "acme/camembert-large"))
    values = [c.value for c in await cog(harness).set_autocomplete(None, "camem")]  # type: ignore[arg-type]
    assert values == ["camembert-base", "acme/camembert-large"]
    assert not camemberts.find(path=LISTING)


async def test_autocomplete_is_curated_when_offline(
    harness: BotOnFakeDiscord, camemberts: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    values = [c.value for c in await cog(harness).set_autocomplete(None, "camem")]  # type: ignore[arg-type]
    assert "camembert-base" in values and not any(v.startswith(("acme/", "bulk/")) for v in values)
    assert not camemberts.find(path=LISTING)


async def test_autocomplete_is_curated_after_a_hub_failure(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    camemberts.fail(LISTING, 502)
    fake = harness.fake
    await fake.send_message(fake.member_id, "!model search camembert")
    await fake.wait_for_message(titled("⚠️"))
    values = [c.value for c in await cog(harness).set_autocomplete(None, "camem")]  # type: ignore[arg-type]
    assert "camembert-base" in values and not any(v.startswith(("acme/", "bulk/")) for v in values)
    assert len(camemberts.find(path=LISTING)) == 1  # the Hub counts as down for a while: not asked


async def test_autocomplete_answers_fast_when_the_hub_is_slow(harness: BotOnFakeDiscord, camemberts: FakeHub) -> None:
    # One unthrottled page for another prefix (the same 5 models) gives the body's size...
    await cog(harness).set_autocomplete(None, "camemb")  # type: ignore[arg-type]
    (page,) = camemberts.find(path=LISTING)
    assert page.bytes_sent > 500
    # ... so that the next one takes about 2.5 s: slower than an autocomplete may wait.
    camemberts.throttle(page.bytes_sent * 2 // 5, path=LISTING)
    started = time.monotonic()
    choices = await cog(harness).set_autocomplete(None, "camem")  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.5
    values = [c.value for c in choices]
    assert "camembert-base" in values and not any(v.startswith(("acme/", "bulk/")) for v in values)
    # The Hub's answer goes on in the background and serves the member's next keystroke.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        started = time.monotonic()
        values = [c.value for c in await cog(harness).set_autocomplete(None, "camem")]  # type: ignore[arg-type]
        assert time.monotonic() - started < 1.5
        if "acme/camembert-large" in values:
            break
    else:
        pytest.fail("the Hub's slow answer never reached the autocomplete")
    assert len(camemberts.find(path=LISTING)) == 2  # one request per prefix
