"""The checkpoint factory works through the same Auto-class code path as a Hub checkpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertForMaskedLM,
    CamembertForMaskedLM,
    pipeline,
)

from tests.checkpoints import (
    BERT_EXPECTED,
    CAMEMBERT_EXPECTED,
    MODEL_MAX_LENGTH,
    build_untrained_checkpoint,
    train_bert_tokenizer,
    train_camembert_tokenizer,
)


@pytest.mark.parametrize(
    ("fixture", "model_class", "mask_token"),
    [("bert_checkpoint", BertForMaskedLM, "[MASK]"), ("camembert_checkpoint", CamembertForMaskedLM, "<mask>")],
)
def test_auto_classes_load_the_checkpoint(
    request: pytest.FixtureRequest, fixture: str, model_class: type, mask_token: str
) -> None:
    path: Path = request.getfixturevalue(fixture)
    assert (path / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForMaskedLM.from_pretrained(str(path))
    assert isinstance(model, model_class)
    assert tokenizer.mask_token == mask_token
    assert isinstance(tokenizer.mask_token_id, int)
    assert len(tokenizer) == model.config.vocab_size
    assert tokenizer.model_max_length == MODEL_MAX_LENGTH


@pytest.mark.parametrize("fixture", ["bert_checkpoint", "camembert_checkpoint"])
def test_model_accepts_model_max_length_tokens(request: pytest.FixtureRequest, fixture: str) -> None:
    # RoBERTa-style position ids are offset by pad_token_id + 1; a full-length input must still fit.
    path: Path = request.getfixturevalue(fixture)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForMaskedLM.from_pretrained(str(path))
    encoded = tokenizer(" ".join(["le chat dort ."] * 100), truncation=True, return_tensors="pt")
    assert encoded["input_ids"].shape[1] == MODEL_MAX_LENGTH
    with torch.no_grad():
        logits = model(**encoded).logits
    assert logits.shape == (1, MODEL_MAX_LENGTH, model.config.vocab_size)


@pytest.mark.parametrize(("sentence", "word"), BERT_EXPECTED.items())
def test_bert_pipeline_ranks_the_corpus_word_first(bert_checkpoint: Path, sentence: str, word: str) -> None:
    fill = pipeline("fill-mask", model=str(bert_checkpoint))
    assert fill(sentence)[0]["token_str"] == word


@pytest.mark.parametrize(("sentence", "word"), CAMEMBERT_EXPECTED.items())
def test_camembert_pipeline_ranks_the_corpus_word_first(camembert_checkpoint: Path, sentence: str, word: str) -> None:
    fill = pipeline("fill-mask", model=str(camembert_checkpoint))
    best = fill(sentence)[0]
    assert best["token_str"] == word  # the decoded piece: "▁délicieux" -> "délicieux"
    assert word in best["sequence"]


def test_camembert_tokenizer_layout(camembert_checkpoint: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(camembert_checkpoint))
    assert type(tokenizer).__name__ == "CamembertTokenizer"
    # The original CamemBERT layout, as produced by transformers' CamembertConverter.
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 4, 5, 6]) == [
        "<s>NOTUSED", "<pad>", "</s>NOTUSED", "<unk>", "<unk>NOTUSED", "<s>", "</s>",
    ]  # fmt: skip
    assert tokenizer.mask_token_id == len(tokenizer) - 1
    ids = tokenizer("le camembert est <mask> .")["input_ids"]
    assert ids.count(tokenizer.mask_token_id) == 1
    assert tokenizer.unk_token_id not in ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    for word in CAMEMBERT_EXPECTED.values():
        assert tokenizer.tokenize(word) == ["▁" + word], "targets must be single pieces"


def test_camembert_loads_from_the_sentencepiece_model_alone(camembert_checkpoint: Path, tmp_path: Path) -> None:
    # Without tokenizer.json transformers converts sentencepiece.bpe.model on the fly; both
    # serialisations must agree, or checkpoints saved by older versions would drift.
    (tmp_path / "spm").mkdir()
    for name in ("sentencepiece.bpe.model", "tokenizer_config.json", "config.json"):
        shutil.copy(camembert_checkpoint / name, tmp_path / "spm" / name)
    from_json = AutoTokenizer.from_pretrained(str(camembert_checkpoint))
    from_spm = AutoTokenizer.from_pretrained(str(tmp_path / "spm"))
    assert from_spm.get_vocab() == from_json.get_vocab()
    for text in [*CAMEMBERT_EXPECTED, "Le Camembert   est ¤ <mask>."]:
        assert from_spm(text)["input_ids"] == from_json(text)["input_ids"]


def test_bert_tokenizer_keeps_whole_words(bert_checkpoint: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(bert_checkpoint))
    assert tokenizer.tokenize("The Cat sat on the [MASK] .") == ["the", "cat", "sat", "on", "the", "[MASK]", "."]
    for word in BERT_EXPECTED.values():
        assert tokenizer.tokenize(word) == [word], "targets must be single tokens"


def test_no_mask_checkpoint_has_no_mask_token(no_mask_checkpoint: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(no_mask_checkpoint))
    assert tokenizer.mask_token is None
    assert tokenizer.mask_token_id is None
    # Only the tokenizer is wrong: the weights are a perfectly loadable masked LM.
    assert isinstance(AutoModelForMaskedLM.from_pretrained(str(no_mask_checkpoint)), BertForMaskedLM)


def test_not_mlm_checkpoint_is_rejected_by_auto_masked_lm(not_mlm_checkpoint: Path) -> None:
    assert AutoConfig.from_pretrained(str(not_mlm_checkpoint)).architectures == ["GPT2LMHeadModel"]
    # Only the architecture is wrong: the tokenizer does have a mask token.
    assert AutoTokenizer.from_pretrained(str(not_mlm_checkpoint)).mask_token == "[MASK]"
    with pytest.raises(ValueError, match="Unrecognized configuration class"):
        AutoModelForMaskedLM.from_pretrained(str(not_mlm_checkpoint))


@pytest.mark.parametrize("kind", ["bert", "camembert"])
def test_untrained_checkpoint_honours_config_overrides(tmp_path: Path, kind: str) -> None:
    path = build_untrained_checkpoint(tmp_path, kind, num_hidden_layers=1, hidden_size=32)
    model = AutoModelForMaskedLM.from_pretrained(str(path))
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (1, 32)
    assert len(AutoTokenizer.from_pretrained(str(path))) == model.config.vocab_size


def _vocab_fingerprint(tmp_dir: str) -> str:
    bert = train_bert_tokenizer().get_vocab()
    camembert = train_camembert_tokenizer(Path(tmp_dir)).get_vocab()
    return json.dumps([sorted(bert.items()), sorted(camembert.items())])


def test_tokenizer_ids_are_identical_across_processes(tmp_path: Path) -> None:
    # The tokenizers trainers use Rust hash maps seeded per process; ids must not depend on that.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import tests.test_checkpoints as t; "
        "print(t._vocab_fingerprint(sys.argv[2]))"
    )
    other = (
        subprocess.run(
            [sys.executable, "-c", script, str(Path(__file__).parents[1]), str(tmp_path / "other")],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert other == _vocab_fingerprint(str(tmp_path / "here"))
