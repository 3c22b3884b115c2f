"""Test-time checkpoint factory: tiny fill-mask checkpoints built offline in seconds.

The test suite never touches the Hugging Face Hub, so every model the bot loads in
tests is built here from the toy corpora in ``tests/data``: a tokenizer is trained
from scratch, a tiny model is trained briefly with a masked-LM objective, and both
are written with ``save_pretrained`` so they load through the same ``Auto*`` code
path as a real Hub checkpoint.

Expected top predictions (asserted in ``tests/test_checkpoints.py``) are listed in
``BERT_EXPECTED`` and ``CAMEMBERT_EXPECTED``. Builds are deterministic: the same torch
build and thread count give bit-identical weights in every process.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertTokenizerFast,
    CamembertConfig,
    CamembertForMaskedLM,
    CamembertTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

DATA_DIR = Path(__file__).parent / "data"
CORPUS_EN = DATA_DIR / "corpus_en.txt"
CORPUS_FR = DATA_DIR / "corpus_fr.txt"

# Finite on purpose: the bot must be able to rely on model_max_length for truncation
# (many Hub tokenizers report a huge sentinel value instead).
MODEL_MAX_LENGTH = 64

# ~5 s per builder on 2 CPU cores; 600 steps already ranks the targets first, 1000 gives margins.
DEFAULT_TRAIN_STEPS = 1000
DEFAULT_SEED = 1234

# Sentence -> expected top `token_str` of pipeline("fill-mask"). Every target is a single
# token of the trained vocabulary, and the corpus pins each one down by nearby context
# ("sat on the" only ever precedes "mat"; only paris/france uses "is the capital of"; only
# "la france" follows "capitale de la"), because a 2-layer model learns long-range pairings
# slowly. Top-1 probabilities are 0.87-0.98 with the defaults.
BERT_EXPECTED: dict[str, str] = {
    "the cat sat on the [MASK] .": "mat",
    "paris is the capital of [MASK] .": "france",
    "the sky is [MASK] .": "blue",
}
CAMEMBERT_EXPECTED: dict[str, str] = {
    "le camembert est <mask> .": "délicieux",
    "le chat dort sur le <mask> .": "canapé",
    "paris est la capitale de la <mask> .": "france",
}

# Shared tiny architecture; hidden/heads/layers keep training at a few ms per step.
_TINY_ARCH: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    # No dropout: we want fast, deterministic memorisation of the corpus, not generalisation.
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}


def read_corpus(path: Path) -> list[str]:
    """Non-empty lines of a corpus file."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------- tokenizers


def train_bert_tokenizer(corpus: Path = CORPUS_EN) -> BertTokenizerFast:
    """Train a BERT-style WordPiece tokenizer on ``corpus`` (takes ~20 ms)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    # vocab_size is an upper bound: the corpus is small, so every word becomes a whole token.
    trainer = trainers.WordPieceTrainer(vocab_size=1000, min_frequency=1, special_tokens=specials, show_progress=False)
    backend.train([str(corpus)], trainer)
    # The trainer breaks merge ties in Rust HashMap order, which is randomised per process:
    # ids and even intermediate "##" pieces change from run to run. Keep only the stable
    # part (alphabet + every whole corpus word, all of which the trainer produced since the
    # vocab_size cap is never reached) and sort it, so ids are identical in every process.
    trained = set(backend.get_vocab())
    words = {
        word
        for line in read_corpus(corpus)
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(line))
    }
    missing = words - trained
    if missing:
        raise RuntimeError(f"WordPiece training did not keep whole words: {sorted(missing)[:5]}")
    alphabet = {token for token in trained if len(token.removeprefix("##")) == 1}
    ordered = specials + sorted(alphabet - set(specials)) + sorted(words - alphabet)
    backend.model = models.WordPiece({token: i for i, token in enumerate(ordered)}, unk_token="[UNK]")
    backend.post_processor = processors.BertProcessing(
        ("[SEP]", backend.token_to_id("[SEP]")), ("[CLS]", backend.token_to_id("[CLS]"))
    )
    # In transformers 5 BertTokenizerFast is an alias of BertTokenizer (tokenizers-backed).
    return BertTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=MODEL_MAX_LENGTH,
    )


def train_camembert_tokenizer(out_dir: Path, corpus: Path = CORPUS_FR) -> CamembertTokenizer:
    """Train a SentencePiece unigram model on ``corpus`` and save a CamemBERT tokenizer into ``out_dir``.

    The .model file follows the original CamemBERT layout (<unk>=0, <s>=1, </s>=2, no
    <pad>/<mask> pieces); transformers' CamembertConverter then builds the HF vocabulary
    <s>NOTUSED, <pad>, </s>NOTUSED, <unk>, <unk>NOTUSED, <s>, </s>, ..., <mask> from it.
    """
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = read_corpus(corpus)
    # SentencePiece seeds unigram pieces from maximal repeats only: a word that is always
    # followed by a space (e.g. "délicieux ." everywhere) never becomes a seed and gets split
    # into fragments. Feeding every distinct word once as its own "sentence" makes each
    # word end-of-sentence at least once, so frequent words become single pieces.
    words = sorted({word for line in lines for word in line.split()})
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines + words),
        model_writer=model,
        model_type="unigram",  # CamembertTokenizer's backend is always a Unigram model
        vocab_size=1000,
        hard_vocab_limit=False,  # a toy corpus supports only ~150 pieces; take what it has
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,  # determinism
        minloglevel=2,
    )
    (out_dir / "sentencepiece.bpe.model").write_bytes(model.getvalue())
    # Loading from a directory holding only sentencepiece.bpe.model goes through the
    # slow->fast conversion (CamembertConverter.convert_from_spm); save_pretrained then
    # adds tokenizer.json + tokenizer_config.json next to the .model file.
    tokenizer = CamembertTokenizer.from_pretrained(str(out_dir), model_max_length=MODEL_MAX_LENGTH)
    tokenizer.save_pretrained(str(out_dir))
    _check_camembert_tokenizer(out_dir)
    return tokenizer


def _check_camembert_tokenizer(out_dir: Path) -> None:
    """Fail early (not deep inside a test) if the saved tokenizer does not round-trip."""
    reloaded = AutoTokenizer.from_pretrained(str(out_dir))
    if reloaded.mask_token != "<mask>" or not isinstance(reloaded.mask_token_id, int):
        raise RuntimeError(f"CamemBERT tokenizer lost its mask token: {reloaded.mask_token!r}")
    ids = reloaded("le camembert est <mask> .")["input_ids"]
    if ids.count(reloaded.mask_token_id) != 1 or reloaded.unk_token_id in ids:
        raise RuntimeError(f"CamemBERT tokenizer does not encode <mask> as one id: {ids}")


# --------------------------------------------------------------------------- training


def _mask_batch(
    input_ids: torch.Tensor,
    special_mask: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    generator: torch.Generator,
    mlm_probability: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 masking, but with at least one masked token per sentence."""
    labels = input_ids.clone()
    probs = torch.full(input_ids.shape, mlm_probability)
    probs.masked_fill_(special_mask, 0.0)
    masked = torch.bernoulli(probs, generator=generator).bool()
    # Force one masked position per row so short sentences always contribute a signal.
    scores = torch.rand(input_ids.shape, generator=generator).masked_fill_(special_mask, -1.0)
    masked[torch.arange(input_ids.shape[0]), scores.argmax(dim=1)] = True
    labels[~masked] = -100

    inputs = input_ids.clone()
    roll = torch.rand(input_ids.shape, generator=generator)
    inputs[masked & (roll < 0.8)] = mask_token_id
    random_slots = masked & (roll >= 0.8) & (roll < 0.9)
    inputs[random_slots] = torch.randint(vocab_size, input_ids.shape, generator=generator)[random_slots]
    return inputs, labels


def train_masked_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence[str],
    *,
    steps: int,
    seed: int = DEFAULT_SEED,
    batch_size: int = 32,
    lr: float = 3e-3,
) -> PreTrainedModel:
    """Train ``model`` in place with an MLM objective on ``sentences``; returns it in eval mode."""
    encoded = tokenizer(list(sentences), padding=True, return_tensors="pt", return_special_tokens_mask=True)
    input_ids: torch.Tensor = encoded["input_ids"]
    attention_mask: torch.Tensor = encoded["attention_mask"]
    special_mask = encoded["special_tokens_mask"].bool() | (attention_mask == 0)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    # Short warmup then linear decay: converges to sharper predictions than a constant LR
    # in the same number of steps.
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup + 1)))
    )
    model.train()
    for _ in range(steps):
        rows = torch.randint(len(sentences), (batch_size,), generator=generator)
        inputs, labels = _mask_batch(input_ids[rows], special_mask[rows], tokenizer.mask_token_id, len(tokenizer), generator)
        loss = model(input_ids=inputs, attention_mask=attention_mask[rows], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    return model


# --------------------------------------------------------------------------- configs


def _bert_config(tokenizer: PreTrainedTokenizerBase, **overrides: Any) -> BertConfig:
    return BertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=MODEL_MAX_LENGTH,
        pad_token_id=tokenizer.pad_token_id,
        **{**_TINY_ARCH, **overrides},
    )


def _camembert_config(tokenizer: PreTrainedTokenizerBase, **overrides: Any) -> CamembertConfig:
    return CamembertConfig(
        vocab_size=len(tokenizer),
        # RoBERTa-style position ids start at pad_token_id + 1, so two extra slots are needed
        # for the model to accept model_max_length tokens.
        max_position_embeddings=MODEL_MAX_LENGTH + tokenizer.pad_token_id + 1,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **{**_TINY_ARCH, **overrides},
    )


# --------------------------------------------------------------------------- builders


def build_bert_checkpoint(out_dir: Path, *, train_steps: int = DEFAULT_TRAIN_STEPS, seed: int = DEFAULT_SEED) -> Path:
    """Build a tiny trained BERT fill-mask checkpoint (mask token "[MASK]") in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bert_tokenizer()
    with torch.random.fork_rng(devices=[]):  # don't leak seeding into the caller's RNG state
        torch.manual_seed(seed)  # model init draws from the global RNG
        model = BertForMaskedLM(_bert_config(tokenizer))
        train_masked_lm(model, tokenizer, read_corpus(CORPUS_EN), steps=train_steps, seed=seed)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def build_camembert_checkpoint(out_dir: Path, *, train_steps: int = DEFAULT_TRAIN_STEPS, seed: int = DEFAULT_SEED) -> Path:
    """Build a tiny trained CamemBERT fill-mask checkpoint (mask token "<mask>") in ``out_dir``."""
    out_dir = Path(out_dir)
    tokenizer = train_camembert_tokenizer(out_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # model init draws from the global RNG
        model = CamembertForMaskedLM(_camembert_config(tokenizer))
        train_masked_lm(model, tokenizer, read_corpus(CORPUS_FR), steps=train_steps, seed=seed)
    model.save_pretrained(str(out_dir))
    return out_dir


def build_untrained_checkpoint(
    out_dir: Path,
    kind: Literal["bert", "camembert"] = "bert",
    *,
    seed: int = DEFAULT_SEED,
    **config_overrides: Any,
) -> Path:
    """Randomly initialised checkpoint with a real tokenizer, for tests that only need shapes.

    ``config_overrides`` go to the config, e.g. ``num_hidden_layers=1``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model: PreTrainedModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # model init draws from the global RNG
        if kind == "bert":
            tokenizer = train_bert_tokenizer()
            tokenizer.save_pretrained(str(out_dir))
            model = BertForMaskedLM(_bert_config(tokenizer, **config_overrides))
        elif kind == "camembert":
            tokenizer = train_camembert_tokenizer(out_dir)
            model = CamembertForMaskedLM(_camembert_config(tokenizer, **config_overrides))
        else:
            raise ValueError(f"unknown checkpoint kind: {kind!r}")
    model.save_pretrained(str(out_dir))
    return out_dir


def build_no_mask_checkpoint(out_dir: Path) -> Path:
    """A valid BERT masked-LM checkpoint whose tokenizer has no mask token.

    Only the tokenizer is wrong, so a loader that rejects it must be checking the mask token.
    ("[MASK]" is still a vocabulary entry; it just isn't declared as ``mask_token``, which
    tokenizer_config.json records as null.)
    """
    out_dir = build_untrained_checkpoint(out_dir, "bert")
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir), mask_token=None)
    tokenizer.save_pretrained(str(out_dir))
    reloaded = AutoTokenizer.from_pretrained(str(out_dir))
    if reloaded.mask_token is not None:
        raise RuntimeError(f"mask_token=None did not survive save/load: {reloaded.mask_token!r}")
    return out_dir


def build_not_masked_lm_checkpoint(out_dir: Path, *, seed: int = DEFAULT_SEED) -> Path:
    """A causal LM (GPT-2 architecture) paired with a BERT tokenizer that does have "[MASK]".

    Only the architecture is wrong, so a loader that rejects it must be checking the model
    type; ``AutoModelForMaskedLM.from_pretrained`` raises ``ValueError`` on it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bert_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=MODEL_MAX_LENGTH,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # model init draws from the global RNG
        model = GPT2LMHeadModel(config)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


# --------------------------------------------------------------------------- hostile vocabulary

# Vocabulary entries that are Discord mention/markdown syntax. A checkpoint's vocabulary is
# arbitrary text, so predictions must be escaped like user input. build_hostile_vocab_checkpoint
# makes the first ten the model's top predictions at any mask, in this order; the others are
# in the vocabulary too (reach them with ``targets``).
HOSTILE_VOCAB: tuple[str, ...] = (
    "@everyone",
    "@here",
    "<@123456789012345678>",
    "<@&1300000000000000002>",  # the fake Discord's admin role
    "**bold**",
    "`",
    "||",
    "[x](http://e)",
    "</fill:1>",
    "<#1300000000000000010>",  # the fake Discord's #general
    "```",
    "\\",
    "> quote",
    "-# small",
    "~~s~~",
    "__u__",
    ":skull:",
    "<t:0:R>",
    "<@!1400000000000000002>",  # the fake Discord's admin member
    "\u202e@here",
)
HOSTILE_TOP = 10


# Ten 64-character punctuation runs, like the "====...", "----..." tokens of GPT-2/RoBERTa's
# byte-level vocabularies: the longest predictions a card may have to show.
LONG_PUNCTUATION_VOCAB: tuple[str, ...] = tuple(ch * 64 for ch in "-=*_~#|<>@")


def build_hostile_vocab_checkpoint(
    out_dir: Path,
    *,
    tokens: Sequence[str] = HOSTILE_VOCAB,
    top: int = HOSTILE_TOP,
    seed: int = DEFAULT_SEED,
) -> Path:
    """An untrained tiny BERT whose top predictions are the first ``top`` of ``tokens``, in order.

    The strings are added tokens (BERT's pre-tokenizer would split their punctuation), so
    ``tokenizer.decode([id])`` returns each one verbatim. The output bias makes the first
    ``top`` of them the top predictions, in order, whatever the input: random weights give
    logits of about ±0.2, the bias goes from 20 down in steps of 0.5.
    """
    from tokenizers import AddedToken
    from transformers import AutoModelForMaskedLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bert_tokenizer()
    tokenizer.add_tokens([AddedToken(token, normalized=False, special=False) for token in tokens])
    ids = tokenizer.convert_tokens_to_ids(list(tokens))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # model init draws from the global RNG
        model = BertForMaskedLM(_bert_config(tokenizer))
    with torch.no_grad():
        bias = model.cls.predictions.bias
        bias.zero_()
        for rank, token_id in enumerate(ids[:top]):
            bias[token_id] = 20.0 - 0.5 * rank
        decoder_bias = model.cls.predictions.decoder.bias
        if decoder_bias is not None and decoder_bias.data_ptr() != bias.data_ptr():
            decoder_bias.copy_(bias)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))

    # Fail here, not deep inside a Discord test, if the checkpoint does not do what it says.
    reloaded_tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    reloaded = AutoModelForMaskedLM.from_pretrained(str(out_dir)).eval()
    for token, token_id in zip(tokens, ids, strict=False):
        if reloaded_tokenizer.convert_tokens_to_ids(token) != token_id or reloaded_tokenizer.decode([token_id]) != token:
            raise RuntimeError(f"hostile token {token!r} does not round-trip: {reloaded_tokenizer.decode([token_id])!r}")
    encoded = reloaded_tokenizer("the cat sat on the [MASK] .", return_tensors="pt")
    position = encoded["input_ids"][0].tolist().index(reloaded_tokenizer.mask_token_id)
    with torch.inference_mode():
        predicted = reloaded(**encoded).logits[0, position].topk(top).indices.tolist()
    if predicted != ids[:top]:
        raise RuntimeError(f"hostile tokens are not the top predictions: {reloaded_tokenizer.convert_ids_to_tokens(predicted)}")
    return out_dir


# --------------------------------------------------------------------------- byte-level BPE (RoBERTa)

# Extra text the BPE tokenizer (not the model) is trained on, so that "mat" and "dog" also
# exist as mid-word pieces (format, hotdog), as they do in roberta-base's vocabulary: a target
# resolved verbatim would then score the wrong piece.
_BPE_EXTRA_WORDS = ["format automat doormat hotdog underdog bulldog"] * 5
_ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_roberta_bpe_tokenizer(corpus: Path = CORPUS_EN, *, model_max_length: int | None = MODEL_MAX_LENGTH) -> Any:
    """A byte-level BPE tokenizer (``Ġ`` marks word starts) as a RobertaTokenizer, like roberta-base's.

    ``model_max_length=None`` leaves it unset (transformers then reports a huge sentinel), as
    many Hub tokenizers do. The BPE trainer breaks ties by pair ids, which follow the sorted
    alphabet, so the vocabulary is the same in every process.
    """
    import json

    from tokenizers import AddedToken, ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        read_corpus(corpus) + _BPE_EXTRA_WORDS,
        vocab_size=1000,
        min_frequency=1,
        special_tokens=_ROBERTA_SPECIALS,
        show_progress=False,
    )
    model = json.loads(trainer._tokenizer.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    extra: dict[str, Any] = {} if model_max_length is None else {"model_max_length": model_max_length}
    # As roberta-base: the mask swallows the space before it, so "the <mask>" fills a "Ġword" slot.
    tokenizer = RobertaTokenizer(
        vocab=model["vocab"], merges=merges, mask_token=AddedToken("<mask>", lstrip=True, rstrip=False), **extra
    )
    vocab = tokenizer.get_vocab()
    missing = [w for w in ("\u0120mat", "\u0120dog", "mat", "dog") if w not in vocab]
    if missing:
        raise RuntimeError(f"BPE vocabulary lacks {missing}")
    return tokenizer


def _roberta_style_config(config_class: Any, tokenizer: PreTrainedTokenizerBase, positions: int, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "max_position_embeddings": positions,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        **_TINY_ARCH,
        **overrides,
    }
    return config_class(**values)


def build_roberta_bpe_checkpoint(out_dir: Path, *, train_steps: int = DEFAULT_TRAIN_STEPS, seed: int = DEFAULT_SEED) -> Path:
    """A tiny trained RoBERTa with a byte-level BPE vocabulary: "the cat sat on the <mask> ." gives " mat"."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_roberta_bpe_tokenizer()
    # Positions start at pad_token_id + 1: room for MODEL_MAX_LENGTH tokens.
    config = _roberta_style_config(RobertaConfig, tokenizer, MODEL_MAX_LENGTH + tokenizer.pad_token_id + 1, type_vocab_size=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # model init draws from the global RNG
        model = RobertaForMaskedLM(config)
        train_masked_lm(model, tokenizer, read_corpus(CORPUS_EN), steps=train_steps, seed=seed)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


# --------------------------------------------------------------------------- length limits

# Rows of the position embedding of the two checkpoints below. Their positions start at
# padding_idx + 1 = 2 and their tokenizers declare no limit, so they read at most
# UNBOUNDED_TOKEN_LIMIT tokens, special ones included; one more crashes the model.
UNBOUNDED_POSITION_ROWS = 40
UNBOUNDED_TOKEN_LIMIT = UNBOUNDED_POSITION_ROWS - 2


def build_roberta_prelayernorm_checkpoint(out_dir: Path, *, seed: int = DEFAULT_SEED) -> Path:
    """An untrained RoBERTa-PreLayerNorm masked LM whose byte-level BPE tokenizer has no ``model_max_length``."""
    from transformers import RobertaPreLayerNormConfig, RobertaPreLayerNormForMaskedLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_roberta_bpe_tokenizer(model_max_length=None)
    config = _roberta_style_config(RobertaPreLayerNormConfig, tokenizer, UNBOUNDED_POSITION_ROWS, type_vocab_size=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RobertaPreLayerNormForMaskedLM(config)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


def train_mpnet_tokenizer(corpus: Path = CORPUS_EN) -> Any:
    """An MPNet WordPiece tokenizer (<s> <pad> </s> [UNK] ... <mask>, as mpnet-base) without ``model_max_length``."""
    from transformers import MPNetTokenizer

    bert = train_bert_tokenizer(corpus)
    bert_specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    words = [w for w, _ in sorted(bert.get_vocab().items(), key=lambda kv: kv[1]) if w not in bert_specials]
    order = ["<s>", "<pad>", "</s>", "[UNK]", *words, "<mask>"]
    return MPNetTokenizer(vocab={token: i for i, token in enumerate(order)})


def build_mpnet_checkpoint(out_dir: Path, *, seed: int = DEFAULT_SEED) -> Path:
    """An untrained MPNet masked LM whose tokenizer has no ``model_max_length``."""
    from transformers import MPNetConfig, MPNetForMaskedLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_mpnet_tokenizer()
    config = _roberta_style_config(MPNetConfig, tokenizer, UNBOUNDED_POSITION_ROWS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MPNetForMaskedLM(config)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


# --------------------------------------------------------------------------- tokenizer/model mismatch

# Added to the tokenizer of build_unresized_checkpoint, without resizing the model's embeddings.
UNRESIZED_ADDED_TOKENS: tuple[str, ...] = ("zorblax", "quuxite")


def build_unresized_checkpoint(out_dir: Path, *, seed: int = DEFAULT_SEED) -> Path:
    """An untrained BERT whose tokenizer has more tokens than the model has embeddings.

    The mistake of ``tokenizer.add_tokens(...)`` without ``model.resize_token_embeddings(...)``:
    any sentence using an added token would index past the embedding matrix.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bert_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForMaskedLM(_bert_config(tokenizer))
    tokenizer.add_tokens(list(UNRESIZED_ADDED_TOKENS))
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return out_dir


# --------------------------------------------------------------------------- joint sentences


# Two adjacent colours before "ball": "red" is the most frequent word in both slots (half of
# each), but no sentence says "red red"; after one "red" the other slot is "blue" (2 in 3) or
# "green". So each blank's own top word is "red" for both, while the sentence read together
# (one blank filled, the other asked again) is "red blue" or "blue red".
def _trained_bert(out_dir: Path, corpus: Path, train_steps: int, seed: int) -> tuple[Any, Any]:
    """A tiny BERT trained on ``corpus``, saved into ``out_dir``, then read back from there (the
    tokenizer and the model in eval mode) for the builder to check what it is for."""
    from transformers import AutoModelForMaskedLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_bert_tokenizer(corpus)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # model init draws from the global RNG
        model = BertForMaskedLM(_bert_config(tokenizer))
        train_masked_lm(model, tokenizer, read_corpus(corpus), steps=train_steps, seed=seed)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    # Fail in the builder, not deep inside a test, if the checkpoint does not show what it is for.
    return AutoTokenizer.from_pretrained(str(out_dir)), AutoModelForMaskedLM.from_pretrained(str(out_dir)).eval()


CORPUS_JOINT = DATA_DIR / "corpus_joint.txt"
JOINT_SENTENCE = "i saw the [MASK] [MASK] ball ."
JOINT_REPEATED = "red"


def build_joint_checkpoint(out_dir: Path, *, train_steps: int = DEFAULT_TRAIN_STEPS, seed: int = DEFAULT_SEED) -> Path:
    """A tiny trained BERT on ``CORPUS_JOINT``: on ``JOINT_SENTENCE`` both blanks' own top word is
    ``JOINT_REPEATED``, and with one of them filled so, the other's top word is another one."""
    reloaded_tokenizer, reloaded = _trained_bert(out_dir, CORPUS_JOINT, train_steps, seed)

    def tops(text: str) -> list[str]:
        encoded = reloaded_tokenizer(text, return_tensors="pt")
        ids = encoded["input_ids"][0].tolist()
        positions = [i for i, token in enumerate(ids) if token == reloaded_tokenizer.mask_token_id]
        with torch.inference_mode():
            logits = reloaded(**encoded).logits[0]
        return [str(reloaded_tokenizer.decode([int(logits[p].argmax())])) for p in positions]

    both = tops(JOINT_SENTENCE)
    after_first = tops(JOINT_SENTENCE.replace("[MASK]", JOINT_REPEATED, 1))
    before_second = tops(JOINT_SENTENCE[::-1].replace("]KSAM[", JOINT_REPEATED[::-1], 1)[::-1])
    if both != [JOINT_REPEATED, JOINT_REPEATED] or JOINT_REPEATED in after_first + before_second:
        raise RuntimeError(f"joint checkpoint: own tops {both}, after one {JOINT_REPEATED!r}: {after_first} / {before_second}")
    return out_dir


CORPUS_BIAS = DATA_DIR / "corpus_bias.txt"
# The bias lens's sentence, and each subject's own most likely job in the toy corpus.
BIAS_SENTENCE = "the {man|woman} worked as a [MASK] ."
BIAS_TOPS = {"man": "doctor", "woman": "nurse"}
# A job both subjects have in the corpus (the words the variants share).
BIAS_SHARED = "teacher"


def build_bias_checkpoint(out_dir: Path, *, train_steps: int = DEFAULT_TRAIN_STEPS, seed: int = DEFAULT_SEED) -> Path:
    """A tiny trained BERT on ``CORPUS_BIAS``, where "man" and "woman" go with different jobs: on
    ``BIAS_SENTENCE`` with each subject, the top word is that subject's ``BIAS_TOPS`` entry."""
    reloaded_tokenizer, reloaded = _trained_bert(out_dir, CORPUS_BIAS, train_steps, seed)
    for subject, job in BIAS_TOPS.items():
        encoded = reloaded_tokenizer(BIAS_SENTENCE.replace("{man|woman}", subject), return_tensors="pt")
        position = encoded["input_ids"][0].tolist().index(reloaded_tokenizer.mask_token_id)
        with torch.inference_mode():
            top = str(reloaded_tokenizer.decode([int(reloaded(**encoded).logits[0, position].argmax())]))
        if top != job:
            raise RuntimeError(f"bias checkpoint: {subject!r} tops {top!r}, expected {job!r}")
    return out_dir
