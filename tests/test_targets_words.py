"""Targets mean words (issue 9, point 6), and special tokens as targets (point 10).

Users type ``| mat, dog`` and cannot type the leading space that byte-level BPE vocabularies
(roberta-base, distilroberta-base) put on a word's first piece (``Ġmat``), so resolving the
target verbatim scored the mid-word piece ``mat`` (as in "format") at about 0 %. A target is
now the token that starts that word in a sentence, for every family: ``Ġmat`` (byte-level BPE),
``▁à`` (SentencePiece), ``mat</w>`` (word-end BPE, XLM/FlauBERT), the bare word (WordPiece).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

from bot.inference.errors import InvalidRequestError, SpecialTargetsError
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.types import FillRequest
from tests.checkpoints import CORPUS_EN, build_roberta_bpe_checkpoint, read_corpus
from tests.discord_helpers import BotOnFakeDiscord, embed_text, titled

SENTENCE_BPE = "the cat sat on the <mask> ."
# One prediction line of a reply: `rank.` `bar` percent % **word**.
LINE = re.compile(r"^`(?: \d|\d\d)\.` `[█░]{10}` +(?P<percent>\d{1,3}\.\d) % \*\*(?P<word>.+)\*\*$")


@pytest.fixture(scope="module")
def roberta_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny trained RoBERTa, byte-level BPE: " mat" after "the cat sat on the" (~95 %)."""
    return build_roberta_bpe_checkpoint(tmp_path_factory.mktemp("roberta-bpe-checkpoint"))


@pytest.fixture(scope="module")
def roberta_lm(roberta_checkpoint: Path) -> MaskedLM:
    return load_masked_lm(str(roberta_checkpoint))


def lines_of(body: dict[str, Any]) -> list[tuple[str, float]]:
    """(word, percent) of each prediction line of a result's first field."""
    value: str = body["embeds"][0]["fields"][0]["value"]
    found = []
    for line in value.splitlines():
        match = LINE.match(line)
        assert match, line
        found.append((match.group("word"), float(match.group("percent"))))
    return found


async def use_model(harness: BotOnFakeDiscord, checkpoint: Path) -> None:
    fake = harness.fake
    mark = fake.mark()
    await fake.send_message(fake.admin_id, f"!model set {checkpoint}")
    done = await fake.wait_for_message(titled("✅"), after=mark, timeout=60)
    assert "Model changed" in embed_text(done)


# -- byte-level BPE ----------------------------------------------------------------------


def test_bpe_targets_resolve_to_the_word_start_piece(roberta_lm: MaskedLM) -> None:
    vocab = roberta_lm.tokenizer.get_vocab()
    # The trap the old rule fell into: both forms exist, the bare one is a mid-word piece.
    assert {"mat", "dog", "\u0120mat", "\u0120dog"} <= set(vocab)
    result = roberta_lm.predict(FillRequest(SENTENCE_BPE, 5, ("mat", "dog")))
    ranked = result.masks[0]
    assert [p.token for p in ranked] == [vocab["\u0120mat"], vocab["\u0120dog"]]
    assert [p.word for p in ranked] == ["mat", "dog"]
    assert ranked[0].score > 0.5
    # The same probability as the unrestricted prediction of " mat".
    free = {p.token: p.score for p in roberta_lm.predict(FillRequest(SENTENCE_BPE, 10)).masks[0]}
    assert ranked[0].score == pytest.approx(free[vocab["\u0120mat"]], abs=1e-6)


def test_bpe_target_typed_with_its_marker_or_unknown_still_works(roberta_lm: MaskedLM) -> None:
    vocab = roberta_lm.tokenizer.get_vocab()
    ranked = roberta_lm.predict(FillRequest(SENTENCE_BPE, 5, ("\u0120mat",))).masks[0]
    assert [p.token for p in ranked] == [vocab["\u0120mat"]]
    # Not a vocabulary word: the first piece of " matsat", which starts with " m..." (a word start).
    ranked = roberta_lm.predict(FillRequest(SENTENCE_BPE, 5, ("matsat",))).masks[0]
    assert ranked[0].token_str.startswith(" ")


async def test_bpe_targets_through_discord_prefix_and_slash(harness: BotOnFakeDiscord, roberta_checkpoint: Path) -> None:
    fake = harness.fake
    await use_model(harness, roberta_checkpoint)
    mark = fake.mark()
    await fake.send_message(fake.member_id, f"!fill {SENTENCE_BPE} | mat, dog")
    body = await fake.wait_for_message(titled("Fill-mask"), after=mark, timeout=20)
    ranked = lines_of(body)
    assert [word for word, _ in ranked] == ["mat", "dog"]
    assert ranked[0][1] > 50.0, ranked  # was 0.0 %: the mid-word piece "mat"

    token = await fake.send_slash(fake.member_id, "fill", {"text": SENTENCE_BPE, "targets": "dog, mat"})
    body = await fake.wait_for_message(titled("Fill-mask"), token=token, timeout=20)
    ranked = lines_of(body)
    assert ranked[0][0] == "mat" and ranked[0][1] > 50.0, ranked


# -- the other families ------------------------------------------------------------------------


def test_sentencepiece_targets_take_the_marked_piece(camembert_checkpoint: Path) -> None:
    lm = load_masked_lm(str(camembert_checkpoint))
    vocab = lm.tokenizer.get_vocab()
    # "à" is both a mid-word piece and, with its marker, the word: the word is scored.
    assert "à" in vocab and "\u2581à" in vocab
    ranked = lm.predict(FillRequest("le camembert est <mask> .", 5, ("à", "bon", "\u2581délicieux"))).masks[0]
    assert sorted(p.token for p in ranked) == sorted([vocab["\u2581à"], vocab["\u2581bon"], vocab["\u2581délicieux"]])


def test_wordpiece_targets_are_the_bare_words(bert_checkpoint: Path) -> None:
    lm = load_masked_lm(str(bert_checkpoint))
    vocab = lm.tokenizer.get_vocab()
    ranked = lm.predict(FillRequest("the cat sat on the [MASK] .", 5, ("mat", "dog"))).masks[0]
    assert [p.token for p in ranked] == [vocab["mat"], vocab["dog"]]


def word_end_bpe_lm() -> MaskedLM:
    """An untrained BERT over a BPE vocabulary that marks word *ends* with ``</w>`` (as XLM/FlauBERT)."""
    backend = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.BPEDecoder(suffix="</w>")
    specials = ["<s>", "</s>", "<pad>", "<unk>", "<special1>"]
    trainer = trainers.BpeTrainer(
        vocab_size=1000, min_frequency=1, special_tokens=specials, end_of_word_suffix="</w>", show_progress=False
    )
    # "matte", "doggy": so that "mat" and "dog" are also pieces that continue a word.
    backend.train_from_iterator([*read_corpus(CORPUS_EN), *["matte mattress doggy dogma"] * 5], trainer)
    backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 1)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<special1>",
        model_max_length=64,
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertForMaskedLM(config)
    return MaskedLM("word-end-bpe", tokenizer, model)


def test_word_end_bpe_targets_take_the_whole_word_piece() -> None:
    lm = word_end_bpe_lm()
    vocab = lm.tokenizer.get_vocab()
    assert {"mat", "mat</w>", "dog", "dog</w>"} <= set(vocab)
    ranked = lm.predict(FillRequest("the cat sat on the <special1> .", 5, ("mat", "dog"))).masks[0]
    assert sorted(p.token for p in ranked) == sorted([vocab["mat</w>"], vocab["dog</w>"]])


# -- special tokens as targets ---------------------------------------------------------------


def test_only_special_targets_are_named_as_such(bert_checkpoint: Path, roberta_lm: MaskedLM) -> None:
    bert = load_masked_lm(str(bert_checkpoint))
    with pytest.raises(SpecialTargetsError) as caught:
        bert.predict(FillRequest("the cat sat on the [MASK] .", 5, ("[CLS]", "[SEP]")))
    assert "`[CLS]`, `[SEP]` are this model's special tokens" in str(caught.value)
    with pytest.raises(SpecialTargetsError, match="`<s>` is this model's special token"):
        roberta_lm.predict(FillRequest(SENTENCE_BPE, 5, ("<s>",)))
    # Special tokens among real words are dropped silently, as before.
    ranked = bert.predict(FillRequest("the cat sat on the [MASK] .", 5, ("[CLS]", "mat"))).masks[0]
    assert [p.word for p in ranked] == ["mat"]
    # Unknown words (and special ones) together: the vocabulary message, as before.
    with pytest.raises(InvalidRequestError, match="None of those target words"):
        bert.predict(FillRequest("the cat sat on the [MASK] .", 5, ("[CLS]", "@@@")))


async def test_special_targets_reply_on_both_paths(harness: BotOnFakeDiscord) -> None:
    fake = harness.fake
    await fake.send_message(fake.member_id, "!fill the cat sat on the <mask> . | [CLS], [SEP]")
    body = await fake.wait_for_message(titled("⚠️"))
    assert "special tokens" in embed_text(body) and "None of those" not in embed_text(body)
    token = await fake.send_slash(fake.member_id, "fill", {"text": "the cat sat on the <mask> .", "targets": "[MASK]"})
    body = await fake.wait_for_message(titled("⚠️"), token=token)
    assert "`[MASK]` is this model's special token" in embed_text(body)
