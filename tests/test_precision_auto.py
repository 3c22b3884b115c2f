"""PRECISION=auto: bf16 only where it is native and agrees with fp32 on the probes, else fp32 as loaded."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedModel

from bot.inference import precision as auto
from bot.inference.errors import FillMaskError
from bot.inference.loading import load_masked_lm
from bot.inference.masked_lm import MaskedLM
from bot.inference.types import FillRequest, FillResult
from bot.settings import ConfigError, Settings
from bot.wiring import build_registry
from tests.checkpoints import BERT_EXPECTED, CAMEMBERT_EXPECTED

LOGGER = "bot.inference.precision"


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "native_bf16", lambda device: True)


@pytest.fixture
def not_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "native_bf16", lambda device: False)


@pytest.fixture(scope="module")
def bf16_blind_checkpoint(bert_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained BERT with 4096 added to every vocabulary logit: the same softmax in fp32, but
    bf16 (8 significant bits: steps of 32 there) rounds the logits into ties and reorders them.
    Rounding, not summation order, so it disagrees on every CPU. (Random weights are no good
    here: an untrained BERT mostly predicts its input tokens back, and bf16 agrees on them.)"""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    out = tmp_path_factory.mktemp("bf16-blind-checkpoint")
    model = AutoModelForMaskedLM.from_pretrained(str(bert_checkpoint))
    head = model.get_output_embeddings()
    assert isinstance(head, torch.nn.Linear) and head.bias is not None
    with torch.no_grad():
        head.bias.add_(4096.0)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(bert_checkpoint)).save_pretrained(str(out))
    return out


def _answers(lm: MaskedLM, texts: list[str]) -> list[FillResult]:
    outcomes = lm.predict_batch([FillRequest(text, 5) for text in texts])
    assert all(isinstance(o, FillResult) for o in outcomes)
    return [o for o in outcomes if isinstance(o, FillResult)]


def _same_as_fp32(path: Path, lm: MaskedLM, texts: list[str]) -> None:
    """Tokens and scores bit for bit those of a plain fp32 load."""
    reference = load_masked_lm(str(path))
    assert [r.masks for r in _answers(lm, texts)] == [r.masks for r in _answers(reference, texts)]
    assert all(p.dtype == torch.float32 for p in lm.model.parameters())


def _dtypes(lm: MaskedLM) -> set[torch.dtype]:
    return {p.dtype for p in lm.model.parameters()}


@pytest.mark.parametrize(
    ("fixture", "expected"), [("bert_checkpoint", BERT_EXPECTED), ("camembert_checkpoint", CAMEMBERT_EXPECTED)]
)
def test_native_bf16_that_agrees_is_kept(
    native: None, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture, fixture: str, expected: dict[str, str]
) -> None:
    path: Path = request.getfixturevalue(fixture)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        lm = load_masked_lm(str(path), precision="auto")
    assert lm.precision == "bf16"
    assert _dtypes(lm) == {torch.bfloat16}
    for text, word in expected.items():
        assert lm.predict(FillRequest(text, 1)).masks[0][0].word == word
    (message,) = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert "chose bf16" in message and "top-5 overlap" in message


def test_no_native_bf16_means_fp32_without_a_check(
    not_native: None, bert_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_probes(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("no check should run without native bf16")

    monkeypatch.setattr(auto, "probe_texts", no_probes)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        lm = load_masked_lm(str(bert_checkpoint), precision="auto")
    assert lm.precision == "fp32"
    _same_as_fp32(bert_checkpoint, lm, list(BERT_EXPECTED))
    assert any("chose fp32" in r.getMessage() and "no native bf16" in r.getMessage() for r in caplog.records)


def test_a_disagreement_restores_the_fp32_weights(
    native: None, bert_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[auto.Agreement] = []

    def one_top1_differs(reference: object, candidate: object) -> auto.Agreement:
        assert _dtypes_now == {torch.bfloat16}  # the candidate really ran in bf16
        seen.append(auto.Agreement(masks=24, same_top1=23, top5_overlap=0.995))
        return seen[-1]

    real_set_precision = MaskedLM.set_precision
    _dtypes_now: set[torch.dtype] = set()

    def spying_set_precision(self: MaskedLM, precision: str) -> None:
        real_set_precision(self, precision)
        _dtypes_now.clear()
        _dtypes_now.update(_dtypes(self))

    monkeypatch.setattr(MaskedLM, "set_precision", spying_set_precision)
    monkeypatch.setattr(auto, "compare", one_top1_differs)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        lm = load_masked_lm(str(bert_checkpoint), precision="auto")
    assert seen and lm.precision == "fp32"
    # The same Parameter objects again: the head's weight is still the embedding's.
    model = lm.model
    assert isinstance(model, PreTrainedModel)
    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    assert head is not None and head.weight is embeddings.weight
    _same_as_fp32(bert_checkpoint, lm, [*BERT_EXPECTED, *auto.probe_texts(lm.tokenizer, lm.mask_token, max_masks=5)])
    (message,) = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]
    assert "chose fp32" in message and "same top-1 on 23/24" in message and "99.5 %" in message


def test_bf16_that_raises_falls_back_to_fp32(native: None, bert_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(reference: object, candidate: object) -> auto.Agreement:
        raise RuntimeError("no bf16 kernel for this op")

    monkeypatch.setattr(auto, "compare", broken)
    lm = load_masked_lm(str(bert_checkpoint), precision="auto")
    assert lm.precision == "fp32"
    _same_as_fp32(bert_checkpoint, lm, list(BERT_EXPECTED))


def test_logits_bf16_cannot_resolve_keep_fp32(
    native: None, bf16_blind_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        lm = load_masked_lm(str(bf16_blind_checkpoint), precision="auto")
    assert lm.precision == "fp32"
    _same_as_fp32(bf16_blind_checkpoint, lm, auto.probe_texts(lm.tokenizer, lm.mask_token, max_masks=5))
    for text, word in BERT_EXPECTED.items():  # fp32 still sees through the offset
        assert lm.predict(FillRequest(text, 1)).masks[0][0].word == word
    assert any("bf16 disagrees with fp32" in r.getMessage() for r in caplog.records)


def test_compare_counts_every_mask() -> None:
    def result(*masks: list[int]) -> FillResult:
        from bot.inference.types import Prediction

        return FillResult(
            checkpoint="x",
            text="t",
            masks=tuple(tuple(Prediction(score=0.1, token=t, token_str=str(t), sequence="") for t in m) for m in masks),
            best_sequence="",
        )

    refused: FillResult | FillMaskError = FillMaskError("too long")
    same = auto.compare([result([1, 2, 3, 4, 5]), refused], [result([1, 2, 3, 4, 5]), refused])
    assert same == auto.Agreement(1, 1, 1.0) and same.holds
    swapped = auto.compare([result([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])], [result([2, 1, 3, 4, 5], [6, 7, 8, 9, 11])])
    assert swapped == auto.Agreement(2, 1, 0.9) and not swapped.holds
    failed = auto.compare([result([1, 2, 3, 4, 5])], [FillMaskError("boom")])
    assert failed.failed == 1 and not failed.holds
    assert not auto.compare([refused], [refused]).holds  # nothing compared proves nothing


def test_probes_are_deterministic_and_fit_the_model(bert_checkpoint: Path, camembert_checkpoint: Path) -> None:
    for path in (bert_checkpoint, camembert_checkpoint):
        lm = load_masked_lm(str(path))
        probes = auto.probe_texts(lm.tokenizer, lm.mask_token, max_masks=5)
        assert probes == auto.probe_texts(lm.tokenizer, lm.mask_token, max_masks=5)
        assert len(probes) == 20 and all(lm.mask_token in p for p in probes)
        assert any(p.count(lm.mask_token) == 2 for p in probes)
        single = auto.probe_texts(lm.tokenizer, lm.mask_token, max_masks=1)
        assert single and all(p.count(lm.mask_token) == 1 for p in single)
        # The frequent-word probes are made of whole words of this vocabulary.
        vocab_probe = probes[-1].replace(lm.mask_token, " ").split()
        unknown = lm.tokenizer.unk_token_id
        assert unknown not in lm.tokenizer(" ".join(vocab_probe), add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    ("capabilities", "native"),
    [({"avx512_bf16": True, "avx512_f": True}, True), ({"amx_bf16": True}, True), ({"avx512_f": True, "avx2": True}, False)],
)
def test_cpu_detection_reads_torchs_cpuinfo(monkeypatch: pytest.MonkeyPatch, capabilities: dict[str, bool], native: bool) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    assert auto.native_bf16(torch.device("cpu")) is native


def test_cpu_detection_falls_back_to_proc_cpuinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def missing() -> dict[str, bool]:
        raise AttributeError("get_capabilities")

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    monkeypatch.setattr(torch.cpu, "get_capabilities", missing)
    monkeypatch.setattr(auto, "Path", lambda _: cpuinfo)
    assert auto.native_bf16(torch.device("cpu"))
    cpuinfo.write_text("flags\t\t: fpu sse2 avx512f\n")
    assert not auto.native_bf16(torch.device("cpu"))


def test_cuda_detection_needs_a_native_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not auto.native_bf16(torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # Ampere or later
    assert auto.native_bf16(torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert not auto.native_bf16(torch.device("cuda"))  # emulated only (pre-Ampere)


async def test_the_check_runs_on_the_loader_thread(bert_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []

    def detect(device: torch.device) -> bool:
        threads.append(threading.current_thread())
        return True

    monkeypatch.setattr(auto, "native_bf16", detect)
    registry = build_registry(Settings(precision="auto", device="cpu"))
    try:
        served = await registry.get(str(bert_checkpoint))
        assert served.lm.precision == "bf16"
    finally:
        await registry.aclose()
    assert threads and threads[0] is not threading.main_thread()


def test_settings_accept_auto_and_still_refuse_bad_values() -> None:
    assert Settings.from_env({"PRECISION": "auto"}).precision == "auto"
    assert Settings.from_env({"PRECISION": " AUTO "}).precision == "auto"
    assert Settings.from_env({"PRECISION": "auto", "DEVICE": "cpu"}).precision == "auto"
    assert Settings.from_env({"PRECISION": "auto", "DEVICE": "cuda"}).precision == "auto"
    assert Settings.from_env({}).precision == "fp32"  # the default stays exact
    with pytest.raises(ConfigError, match=r"PRECISION must be one of .*auto"):
        Settings.from_env({"PRECISION": "automatic"})
    with pytest.raises(ConfigError, match="PRECISION"):
        Settings.from_env({"PRECISION": "bf8"})
