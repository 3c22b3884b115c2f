"""Checkpoints with bert-base and camembert-base dimensions and random weights.

Random weights cost exactly what trained ones cost to run; only the predictions are
meaningless. Tokenizers are real (WordPiece with a ~30k vocabulary, SentencePiece unigram
with 32k pieces) so tokenization costs are realistic too.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
SEED = 20261122
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def synthetic_words(count: int, seed: int = SEED) -> list[str]:
    """``count`` distinct pronounceable-ish lowercase words, deterministic."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice(_LETTERS) for _ in range(rng.randint(3, 9))))
    return sorted(words)


def bert_words() -> list[str]:
    """The whole words of the bert-base-shaped vocabulary (one token each)."""
    return synthetic_words(30522 - 5 - 2 * len(_LETTERS) - 18)


def camembert_words() -> list[str]:
    """Words frequent enough in the SentencePiece training text to be mostly single pieces."""
    return synthetic_words(40000, seed=SEED + 1)


def bert_base(cache: Path = CACHE) -> Path:
    """bert-base-uncased's shape: 12 layers, hidden 768, 12 heads, vocab 30522."""
    out = cache / "bert-base-random"
    if (out / "model.safetensors").is_file():
        return out
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    out.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(_LETTERS) + [f"##{c}" for c in _LETTERS] + list(".,;:!?'-0123456789")
    words = bert_words()
    vocab = {token: i for i, token in enumerate(specials + chars + words)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    tokenizer = BertTokenizer(
        tokenizer_object=backend,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    torch.manual_seed(SEED)
    model = BertForMaskedLM(BertConfig(vocab_size=30522))  # the defaults are bert-base
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out


def camembert_base(cache: Path = CACHE) -> Path:
    """camembert-base's shape: 12 layers, hidden 768, vocab 32005 from a 32k SentencePiece model."""
    out = cache / "camembert-base-random"
    if (out / "model.safetensors").is_file():
        return out
    import sentencepiece as spm
    import torch
    from transformers import CamembertConfig, CamembertForMaskedLM, CamembertTokenizer

    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    words = camembert_words()
    lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(60000)]
    model_file = io.BytesIO()
    # CamemBERT's layout: <unk>=0, <s>=1, </s>=2, no pad/mask pieces (transformers adds them).
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model_file,
        vocab_size=32000,
        model_type="unigram",
        hard_vocab_limit=False,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=2,
        minloglevel=2,
    )
    (out / "sentencepiece.bpe.model").write_bytes(model_file.getvalue())
    tokenizer = CamembertTokenizer.from_pretrained(out, model_max_length=512)
    torch.manual_seed(SEED)
    config = CamembertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = CamembertForMaskedLM(config)
    tokenizer.save_pretrained(out)
    model.save_pretrained(out)
    return out


def sentences(count: int, mask_token: str, *, seed: int = SEED, vocabulary: list[str] | None = None) -> list[str]:
    """``count`` sentences of 10 to 20 words, each with one mask at a random position."""
    rng = random.Random(seed)
    words = vocabulary or synthetic_words(5000, seed=seed + 2)
    out = []
    for _ in range(count):
        chosen = [rng.choice(words) for _ in range(rng.randint(10, 20))]
        chosen[rng.randrange(len(chosen))] = mask_token
        out.append(" ".join(chosen) + " .")
    return out
