"""Broken checkpoint folders and odd names get plain words, not "Oops" (issue 9).

Each case is a copy of the trained BERT test checkpoint broken in one way, offered with
``!model set`` through the real bot: the reply says what is wrong, the log holds no ERROR
(no traceback), the cooldown is left unused, and the server keeps its model.
"""

from __future__ import annotations

import json
import logging
import shutil
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from bot.adapters.discord.bot import FillMaskBot
from tests.discord_helpers import BotOnFakeDiscord, embed_text, make_settings, titled
from tests.fakediscord import FakeDiscord, start_bot, stop_bot

module_loop = pytest.mark.asyncio(loop_scope="module")


def _safetensors(folder: Path, header: bytes, *, size: int | None = None) -> None:
    path = folder / "model.safetensors"
    path.unlink()
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        if size is not None:
            handle.truncate(size)  # sparse: no disk used


def _replace(name: str, text: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_text(text)


def _sparse_giant(folder: Path, gigabytes: float = 5) -> None:
    count = int(gigabytes * 1024**3) // 4  # one tensor the model has no room for
    header = {"bert.embeddings.word_embeddings.weight": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}}
    encoded = json.dumps(header).encode()
    _safetensors(folder, encoded, size=8 + len(encoded) + count * 4)


def _negative_shape(folder: Path) -> None:
    _safetensors(folder, json.dumps({"x": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}).encode() + b" " * 16)


def _weights_dir(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").mkdir()


def _config_loop(folder: Path) -> None:
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to("config.json")


def _dangling_tokenizer(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer.json").symlink_to(folder / "gone.json")


def _no_tokenizer(folder: Path) -> None:
    # The common `model.save_pretrained(...)` without the tokenizer: config and weights only.
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()


# name -> (how to break a copy of the checkpoint, words the reply must hold)
BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "config_null": (_replace("config.json", "null"), "isn't a valid model configuration"),
    "config_nested": (_replace("config.json", "[" * 100_000 + "]" * 100_000), "isn't a valid model configuration"),
    "config_bad_json": (_replace("config.json", "{not json"), "`config.json`"),
    "config_loop": (_config_loop, "symbolic link loop"),
    "tokenizer_wrong_shape": (_replace("tokenizer.json", '{"version": "1.0", "truncation": 5}'), "no tokenizer I can load"),
    "tokenizer_bad_json": (_replace("tokenizer.json", "{not json"), "no tokenizer I can load"),
    "tokenizer_dangling": (_dangling_tokenizer, "broken link"),
    "no_tokenizer": (_no_tokenizer, "no tokenizer files"),
    # The parameter count reads the headers first (MAX_MODEL_PARAMETERS): they are judged there.
    "safetensors_bad_json": (lambda f: _safetensors(f, b"{bad json"), "not a valid safetensors file"),
    "safetensors_negative": (_negative_shape, "not a valid safetensors file"),
    "safetensors_sparse_5gb": (_sparse_giant, "1.3 billion parameters"),
    "weights_is_a_folder": (_weights_dir, "is a folder"),
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def broken_harness(tmp_path_factory: pytest.TempPathFactory, bert_checkpoint: Path) -> AsyncIterator[BotOnFakeDiscord]:
    root = tmp_path_factory.mktemp("broken")
    for name, (breaker, _) in BROKEN.items():
        folder = root / name
        shutil.copytree(bert_checkpoint, folder)
        breaker(folder)
    # A real cooldown: a failed switch must leave it unused.
    settings = make_settings(
        root, bert_checkpoint, local_model_dirs=(root, bert_checkpoint.parent), model_set_cooldown_seconds=600
    )
    async with FakeDiscord() as fake:
        bot = FillMaskBot(settings)
        await start_bot(bot)
        try:
            yield BotOnFakeDiscord(fake, bot, settings)
        finally:
            await stop_bot(bot)


def _root(harness: BotOnFakeDiscord) -> Path:
    return harness.settings.local_model_dirs[0]


@module_loop
@pytest.mark.parametrize("case", sorted(BROKEN))
async def test_a_broken_checkpoint_is_refused_in_plain_words(
    broken_harness: BotOnFakeDiscord, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake, bot = broken_harness.fake, broken_harness.bot
    expected = BROKEN[case][1]
    for attempt in range(2):  # twice: the failed first one did not use up the cooldown
        mark = fake.mark()
        with caplog.at_level(logging.WARNING):
            await fake.send_message(fake.admin_id, f"!model set {_root(broken_harness) / case}")
            reply = embed_text(await fake.wait_for_message(titled("⚠️"), after=mark, timeout=60))
        assert "Model not changed" in reply and expected in reply, (attempt, reply)
        assert "Oops" not in reply and "Slow down" not in reply and "Traceback" not in reply
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert await bot.service.checkpoint_for(fake.guild_id) == bot.service.default_model


@module_loop
async def test_home_folders_of_other_accounts_are_not_probed(broken_harness: BotOnFakeDiscord) -> None:
    fake = broken_harness.fake
    replies: dict[str, str] = {}
    for command in ("info", "set"):
        for name in ("~root", "~nosuchuser"):
            mark = fake.mark()
            await fake.send_message(fake.admin_id, f"!model {command} {name}")
            body = await fake.wait_for_message(titled("⚠️"), after=mark, timeout=20)  # the final reply
            replies[f"{command} {name}"] = embed_text(body).replace(name, "NAME")
    assert replies["info ~root"] == replies["info ~nosuchuser"]
    assert replies["set ~root"] == replies["set ~nosuchuser"]
    assert "Oops" not in "".join(replies.values())


NAMES = {
    "bidi_override": "evil\u202etxt.\u202dname",
    "c0_controls": "na\x07me\x1b[31m",
    "nul_byte": "/tmp/a\x00b",
    "lone_surrogate": "model\ud800",
    "isolates": "\u2066owner/name\u2069",
}


@module_loop
@pytest.mark.parametrize("command", ["set", "info"])
@pytest.mark.parametrize("case", sorted(NAMES))
async def test_odd_names_are_echoed_clean(broken_harness: BotOnFakeDiscord, command: str, case: str) -> None:
    fake = broken_harness.fake
    token = await fake.send_slash(fake.admin_id, "model", {"checkpoint": NAMES[case]}, subcommand=command)
    body = await fake.wait_for_message(token=token, timeout=30)
    text = embed_text(body)
    assert "Oops" not in text, text
    for ch in text:
        assert ch in "\n\t" or not (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0), repr(text)
        assert ch not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", repr(text)
        assert not 0xD800 <= ord(ch) <= 0xDFFF, repr(text)


@module_loop
async def test_a_hub_url_is_read_as_its_id(broken_harness: BotOnFakeDiscord) -> None:
    fake = broken_harness.fake
    mark = fake.mark()
    await fake.send_message(fake.admin_id, "!model set https://huggingface.co/someone/some-model/tree/main")
    text = embed_text(await fake.wait_for_message(titled("⚠️"), after=mark, timeout=30))
    # Offline in the tests, so it cannot be fetched; but it was understood as `someone/some-model`.
    assert "`someone/some-model`" in text and "https://" not in text, text


def test_a_lying_header_without_a_size_limit_is_still_refused_in_plain_words(tmp_path: Path, bert_checkpoint: Path) -> None:
    from bot.inference.errors import CheckpointLoadError
    from bot.inference.loading import load_masked_lm

    folder = tmp_path / "sparse"
    shutil.copytree(bert_checkpoint, folder)
    _sparse_giant(folder, gigabytes=0.06)  # read in full without a size limit: keep it small
    with pytest.raises(CheckpointLoadError, match="weights file is damaged or doesn't match"):
        load_masked_lm(str(folder), max_parameters=None)
