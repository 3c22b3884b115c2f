"""Model cards: parsing strangers' README.md files, loading them (from the Hub stand-in or mocked), and the reply card."""

from __future__ import annotations

import importlib
import re
import time
from pathlib import Path

import huggingface_hub
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.replies.markup import markdown
from bot.replies.model_card import (
    NO_CARD_MESSAGE,
    NO_LIMITATIONS_MESSAGE,
    model_card_reply,
    summarise_list,
)
from bot.replies.reply import (
    FIELD_VALUE_LIMIT,
    MarkdownReply,
    to_markdown,
)
from bot.service.model_cards import (
    ModelCardInfo,
    load_model_card,
    parse_model_card,
    split_front_matter,
)
from tests.card_limits import assert_card_within_limits
from tests.fakehub import FakeHub

# In the style of camembert-base's card on the Hub (YAML header, an introduction, a table,
# usage code, then a section on limitations).
CAMEMBERT_STYLE = """\
---
language: fr
license: mit
datasets:
- oscar
pipeline_tag: fill-mask
---

# CamemBERT: a Tasty French Language Model

## Introduction

[CamemBERT](https://arxiv.org/abs/1911.03894) is a state-of-the-art language model for French based on the RoBERTa model.

It is now available on Hugging Face in 6 different versions with varying number of parameters, amount of pretraining data and pretraining data source domains.

## Pre-trained models

| Model                          | #params                        |   Arch.   | Training data                     |
|--------------------------------|--------------------------------|-------|-----------------------------------|
| `camembert-base` | 110M   | Base  | OSCAR (138 GB of text)            |

## How to use CamemBERT with HuggingFace

```python
from transformers import pipeline
camembert_fill_mask = pipeline("fill-mask", model="camembert-base", tokenizer="camembert-base")
results = camembert_fill_mask("Le camembert est <mask> :)")
```

## Limitations and bias

CamemBERT was trained on OSCAR, a crawl of the web: its predictions reflect the
stereotypes found in that text.

- It may complete sentences about professions with gendered words.
- It knows little about events after 2019.

## Authors

Louis Martin, Benjamin Muller, Pedro Javier Ortiz Suárez.
"""

FULL_METADATA = """\
---
language:
- en
- fr
- de
license: other
license_name: my-research-licence
datasets:
- wikipedia
- bookcorpus
tags:
- exbert
- fill-mask
library_name: transformers
---

<!-- Provide a quick summary of what the model is/does. -->
![banner](https://example.com/banner.png)
<p align="center"><img src="https://example.com/logo.png" width="200"/></p>

# Model MarkdownReply for Example

This model is a **multilingual** encoder that fills in the <mask> in a sentence.

## Uses

### Direct Use

Fill-mask predictions for research.

### Out-of-Scope Use

Do not use it to make decisions about people.

## Bias, Risks, and Limitations

<!-- This section is meant to convey both technical and sociotechnical limitations. -->

[More Information Needed]

The model over-represents Wikipedia's point of view.



It was not evaluated on dialects.

### Recommendations

Users should be made aware of the risks.

## Training Details

Trained for 3 days.
"""


# -- a card's limits, checked independently of MarkdownReply.fitted() ----------------------------


def field(card: MarkdownReply, name: str) -> str:
    matches = [f.value for f in card.fields if f.name == name]
    assert matches, f"no field {name!r} in {[f.name for f in card.fields]}"
    return matches[0]


def unescaped(text: str, char: str) -> bool:
    """Whether ``char`` occurs in ``text`` without a backslash escaping it."""
    for index, current in enumerate(text):
        if current == char:
            backslashes = len(text[:index]) - len(text[:index].rstrip("\\"))
            if backslashes % 2 == 0:
                return True
    return False


# -- parsing -------------------------------------------------------------------------------


def test_camembert_style_card_parses_to_its_fields() -> None:
    info = parse_model_card(CAMEMBERT_STYLE, "camembert-base")
    assert info.source == "hub"
    assert info.url == "https://huggingface.co/camembert-base"
    assert info.task == "fill-mask"
    assert info.languages == ("fr",)
    assert info.license == "mit"
    assert info.datasets == ("oscar",)
    assert info.summary == ("CamemBERT is a state-of-the-art language model for French based on the RoBERTa model.")
    assert info.limitations.startswith("CamemBERT was trained on OSCAR, a crawl of the web: its predictions reflect the")
    assert "stereotypes found in that text." in info.limitations
    assert "- It may complete sentences about professions with gendered words." in info.limitations
    assert "events after 2019" in info.limitations
    # Other sections stay out of it.
    assert "Louis Martin" not in info.limitations
    assert "pipeline" not in info.limitations

    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    assert card.title == "Model card: `camembert-base`"
    assert "https://huggingface.co/camembert-base" in card.description
    assert field(card, "Task") == "fill\\-mask"
    assert field(card, "Languages") == "fr"
    assert field(card, "License") == "mit"
    assert field(card, "Datasets") == "oscar"
    assert [f.inline for f in card.fields[:4]] == [True] * 4
    assert "OSCAR" in field(card, "Limitations and biases")
    assert "more on the model page" not in field(card, "Limitations and biases")
    assert "French based on the RoBERTa model" in field(card, "Summary")


def test_full_metadata_and_every_kind_of_limitations_section() -> None:
    info = parse_model_card(FULL_METADATA, "someone/example-model")
    assert info.languages == ("en", "fr", "de")
    assert info.license == "my-research-licence"  # "other" names its licence
    assert info.datasets == ("wikipedia", "bookcorpus")
    assert info.task == "fill-mask"  # from the tags, as there is no pipeline_tag
    assert info.tags == ("exbert", "fill-mask")
    # Comments, images and known HTML tags are gone; the prose (and its "<mask>") stays.
    assert info.summary == "This model is a multilingual encoder that fills in the <mask> in a sentence."
    text = info.limitations
    assert "Do not use it to make decisions about people." in text  # "Out-of-Scope Use", a subsection
    assert "over-represents Wikipedia" in text  # "Bias, Risks, and Limitations"
    assert "Users should be made aware of the risks." in text  # its subsection
    assert "More Information Needed" not in text
    assert "This section is meant" not in text
    assert "\n\n\n" not in text  # blank runs collapsed
    assert "Fill-mask predictions for research" not in text  # "Direct Use" is not a limitation
    assert "Trained for 3 days" not in text
    assert text.index("Out-of-Scope Use") < text.index("Bias, Risks, and Limitations")

    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    assert field(card, "Languages") == "en, fr, de"


@pytest.mark.parametrize(
    "heading",
    [
        "## Limitations",
        "### BIAS",
        "# Risks",
        "#### limitations and bias",
        "## Intended uses & limitations",
        "## Out-of-scope use",
        "Limitations\n-----------",
    ],
)
def test_limitation_headings_any_level_any_case(heading: str) -> None:
    text = f"Intro paragraph that says what this model is.\n\n{heading}\n\nIt is biased towards X.\n\n# Next\n\nOther text.\n"
    info = parse_model_card(text, "a/b")
    assert info.limitations == "It is biased towards X."
    assert info.summary == "Intro paragraph that says what this model is."


def test_usage_code_inside_a_limitations_section_is_left_out() -> None:
    text = """\
## Intended uses & limitations

You can use the raw model for masked language modeling.

### How to use

```python
>>> unmasker("Hello I'm a [MASK] model.")
```

### Limitations and bias

Even if the training data could be characterized as fairly neutral, this model can have biased
predictions:

```python
>>> unmasker("The man worked as a [MASK].")
```

This bias will also affect all fine-tuned versions of this model.
"""
    info = parse_model_card(text, "bert-base-uncased")
    assert "unmasker" not in info.limitations
    assert "How to use" not in info.limitations
    assert "this model can have biased predictions:" in info.limitations  # soft line break joined
    assert info.limitations.index("raw model") < info.limitations.index("Limitations and bias:")
    assert info.limitations.endswith("This bias will also affect all fine-tuned versions of this model.")


def test_headings_inside_code_blocks_are_not_sections() -> None:
    text = "Some model that does things well.\n\n```\n# Limitations\nnot a heading\n```\n"
    info = parse_model_card(text, "a/b")
    assert info.limitations == ""


def test_card_without_metadata() -> None:
    info = parse_model_card("# My model\n\nA small model trained on my own notes.\n", "me/my-model")
    assert (info.task, info.languages, info.license, info.datasets) == (None, (), None, ())
    assert info.summary == "A small model trained on my own notes."
    assert info.limitations == ""
    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    assert field(card, "Task") == field(card, "License") == field(card, "Datasets") == "not stated"
    assert field(card, "Limitations and biases") == NO_LIMITATIONS_MESSAGE


@pytest.mark.parametrize(
    "header",
    [
        "language: [fr\nlicense: mit",  # unclosed flow sequence
        "language: fr\n  license: : mit\n\t- x",  # bad indentation, tab
        "- just\n- a list",  # valid YAML, not a mapping
        "just a string",
        "!!python/object/apply:os.system ['echo hacked']",  # safe_load refuses
        "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nlanguage: *c",  # aliases
        "",
    ],
)
def test_invalid_yaml_is_ignored_and_the_body_still_parses(header: str) -> None:
    text = f"---\n{header}\n---\n\nA French model for filling blanks.\n\n## Bias\n\nBiased.\n"
    info = parse_model_card(text, "a/b")
    assert info.summary == "A French model for filling blanks."
    assert info.limitations == "Biased."
    assert info.license is None
    assert all(isinstance(language, str) for language in info.languages)
    assert_card_within_limits(model_card_reply(info))


def test_odd_but_valid_metadata() -> None:
    text = "---\nlanguage: no\nlicense: [mit, apache-2.0]\ndatasets: 42\npipeline_tag: {a: b}\n---\nbody text with four words\n"
    info = parse_model_card(text, "a/b")
    assert info.languages == ("no",)  # YAML 1.1 reads Norwegian as false
    assert info.license == "mit, apache-2.0"
    assert info.datasets == ("42",)
    assert info.task is None


def test_unclosed_front_matter_is_not_metadata() -> None:
    metadata, body = split_front_matter("---\nlanguage: fr\n\nNo closing line here.\n")
    assert metadata == {}
    assert "No closing line here." in body


def test_crlf_bom_and_null_bytes() -> None:
    text = "\ufeff---\r\nlanguage: fr\r\n---\r\n\r\nUn mod\x00èle pour le français, vraiment.\r\n"
    info = parse_model_card(text, "a/b")
    assert info.languages == ("fr",)
    assert info.summary == "Un modèle pour le français, vraiment."


def test_local_checkpoints_have_no_url(tmp_path: Path) -> None:
    assert parse_model_card("text", str(tmp_path)).url is None
    assert parse_model_card("text", str(tmp_path)).source == "local"
    assert parse_model_card("text", "./models/x").url is None
    assert parse_model_card("text", "models/x", local=True).url is None
    assert parse_model_card("text", "owner/name", local=False).url == "https://huggingface.co/owner/name"


# -- long content is cut, with a way to read the rest -------------------------------------------


def test_huge_sections_are_cut_with_a_link_to_the_model_page() -> None:
    huge = "This model has a known limitation. " * 1500  # ~50 KB
    text = f"---\nlanguage: fr\n---\n{huge}\n\n## Limitations\n\n{huge}\n"
    assert len(text) > 100_000
    info = parse_model_card(text, "almanach/camembert-base")
    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    for name in ("Limitations and biases", "Summary"):
        value = field(card, name)
        assert len(value) <= FIELD_VALUE_LIMIT
        assert value.endswith("… (more on the model page: <https://huggingface.co/almanach/camembert-base>)")


def test_huge_local_sections_point_to_the_readme(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("## Risks\n\n" + "x " * 30_000, encoding="utf-8")
    info = load_model_card(str(tmp_path), local=True)
    assert info.source == "local"
    value = field(to_markdown(model_card_reply(info)), "Limitations and biases")
    assert value.endswith("… (more in the model folder's README.md)")
    assert len(value) <= FIELD_VALUE_LIMIT


def test_long_lists_are_summarised() -> None:
    languages = tuple(f"l{i:03d}" for i in range(200))
    datasets = tuple(f"org/dataset-number-{i}" for i in range(100))
    info = ModelCardInfo("xlm-roberta-base", languages=languages, datasets=datasets, source="hub")
    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    shown_languages = field(card, "Languages")
    assert shown_languages.startswith("l000, l001, ")
    match = re.search(r", … and (\d+) more$", shown_languages)
    assert match
    assert shown_languages.count(",") + int(match.group(1)) == 200  # shown + hidden = all
    assert len(shown_languages) <= 200
    assert re.search(r"… and \d+ more$", field(card, "Datasets"))
    assert markdown(summarise_list(("en", "fr"))) == "en, fr"
    assert markdown(summarise_list(())) == "not stated"


# -- hostile content ---------------------------------------------------------------------------


HOSTILE = """\
---
language:
- "@everyone"
- "<@&1>"
license: "**bold** ||spoiler|| `code`"
datasets:
- "```js\\nalert(1)\\n```"
- "<@123456789012345678>"
pipeline_tag: "@here"
---

@everyone look at **this** [link](https://evil.example) <@&1> ||spoiler|| \x00 ~~strike~~ _it_

## Limitations

```
@everyone
```
> @here <@&1> # not a heading
- [click](javascript:alert(1)) \u202egnp.exe
"""


def test_hostile_card_content_is_escaped() -> None:
    info = parse_model_card(HOSTILE, "evil/model")
    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    for f in card.fields:
        assert "\x00" not in f.value and "\u202e" not in f.value
        for char in "@<`*|~_[]>#":
            assert not unescaped(f.value, char), (f.name, char, f.value)
    assert "everyone" in field(card, "Languages")
    assert field(card, "Task") == "\\@here"
    assert "everyone" in field(card, "Summary")


def test_hostile_checkpoint_name_stays_in_its_code_span() -> None:
    name = "`@everyone` **x**\n" + "y" * 500
    info = ModelCardInfo(name, source="none", problem="It's not there.")
    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    assert card.title.startswith("Model card: `")
    assert card.title.endswith("`") and card.title.count("`") == 2
    assert info.url is None


# -- no card -------------------------------------------------------------------------------------


def test_local_folder_without_readme(tmp_path: Path) -> None:
    info = load_model_card(str(tmp_path), local=True)
    assert info.source == "none"
    assert info.problem and "README.md" in str(info.problem)
    assert info.url is None
    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    assert NO_CARD_MESSAGE in card.description
    assert str(info.problem) in card.description.replace("\\", "")


def test_local_folder_that_does_not_exist(tmp_path: Path) -> None:
    info = load_model_card(str(tmp_path / "nope"), local=True)
    assert info.source == "none" and info.problem


def test_local_readme_is_parsed(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(CAMEMBERT_STYLE, encoding="utf-8")
    info = load_model_card(str(tmp_path), local=True)
    assert (info.source, info.url, info.languages, info.license) == ("local", None, ("fr",), "mit")
    card = to_markdown(model_card_reply(info))
    assert "README.md in its folder" in card.description


def test_local_readme_linking_out_of_the_folder_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("A private file that must never be shown to anyone.", encoding="utf-8")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "README.md").symlink_to(secret)
    info = load_model_card(str(folder), local=True)
    assert info.source == "none" and "private" not in info.summary


def _http_error(cls_name: str, status: int) -> Exception:
    """One of huggingface_hub's HTTP errors, built on the HTTP library it uses."""
    response_cls = huggingface_hub.errors.Response
    http = importlib.import_module(response_cls.__module__.split(".")[0])
    response = response_cls(status, request=http.Request("GET", "https://huggingface.co/x"))
    return getattr(huggingface_hub.errors, cls_name)("failed (token hf_secret in the message)", response=response)


@pytest.mark.parametrize(
    ("make_error", "expected"),
    [
        (lambda: huggingface_hub.errors.LocalEntryNotFoundError("offline"), "can't reach the Hugging Face Hub"),
        (lambda: _http_error("RepositoryNotFoundError", 404), "no public model"),
        (lambda: _http_error("GatedRepoError", 403), "gated"),
        (lambda: _http_error("RemoteEntryNotFoundError", 404), "no card (README.md)"),
        (lambda: _http_error("HfHubHTTPError", 429), "try again in a few minutes"),
        (lambda: _http_error("HfHubHTTPError", 503), "having trouble"),
        (lambda: ConnectionError("network down"), "can't reach"),
        (lambda: RuntimeError("something odd"), "couldn't read this model's card"),
    ],
)
def test_hub_failures_become_plain_words(monkeypatch: pytest.MonkeyPatch, make_error, expected: str) -> None:
    calls = []

    def failing_download(repo_id: str, filename: str, **kwargs: object) -> str:
        calls.append((repo_id, filename))
        raise make_error()

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing_download)
    info = load_model_card("camembert-base", local=False)
    assert calls == [("camembert-base", "README.md")]
    assert info.source == "none"
    assert info.url == "https://huggingface.co/camembert-base"
    assert info.problem and expected in str(info.problem)
    assert "hf_secret" not in str(info.problem) and "failed" not in str(info.problem)
    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    assert NO_CARD_MESSAGE in card.description
    assert "https://huggingface.co/camembert-base" in card.description


def test_hub_card_is_downloaded_and_parsed(fake_hub: FakeHub, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "camembert"}', encoding="utf-8")
    fake_hub.add_repo("almanach/camembert-base", tmp_path, card=CAMEMBERT_STYLE)
    info = load_model_card("almanach/camembert-base", local=False)
    assert (info.source, info.license, info.datasets) == ("hub", "mit", ("oscar",))
    assert info.url == "https://huggingface.co/almanach/camembert-base"  # the page's address, whatever the endpoint
    assert [r.path for r in fake_hub.find(method="GET")] == ["/almanach/camembert-base/resolve/main/README.md"]


def test_invalid_hub_id_is_not_fetched(fake_hub: FakeHub) -> None:
    for name in ("../etc/passwd", "a b", "", "x" * 300):
        info = load_model_card(name, local=False)
        assert info.source == "none" and info.problem and info.url is None
    assert fake_hub.requests == []


def test_offline_hub_without_a_cached_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real client, offline (conftest sets HF_HUB_OFFLINE=1), with an empty cache."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    info = load_model_card("fillmask-bot-tests/no-such-model", local=False)
    assert info.source == "none"
    assert info.problem and "Hugging Face Hub" in str(info.problem)


def test_parse_errors_never_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.service.model_cards as modelcards

    def broken(*args: object, **kwargs: object) -> None:
        raise RecursionError("deep")

    monkeypatch.setattr(modelcards, "_sections", broken)
    info = parse_model_card("# x\n\ny", "a/b")
    assert info.source == "hub" and info.summary == "" and info.limitations == ""


@pytest.mark.parametrize(
    "piece",
    ["**a ", "__a ", "[a](b", "![a](b", "<img ", "<p ", "<http://", "[", "*a ", "`a", "**a**\n\n", "## Bias\nx\n", "- - "],
)
def test_hostile_markup_parses_in_linear_time(piece: str) -> None:
    # Each of these made a naive pattern quadratic (minutes for a 1 MB card).
    text = "## Limitations\n" + piece * (1_000_000 // len(piece))
    started = time.perf_counter()
    info = parse_model_card(text, "a/b")
    model_card_reply(info)
    assert time.perf_counter() - started < 5


def test_closing_hashes_comments_and_images() -> None:
    text = "<!-- hidden\n## Bias\nnot this\n-->\n[![badge](https://x/y.svg)](https://x)\nA model for filling blanks well.\n\n## Risks ##\n\nRisky.\n<!-- unclosed"
    info = parse_model_card(text, "a/b")
    assert info.summary == "A model for filling blanks well."
    assert info.limitations == "Risky."


# -- any input ---------------------------------------------------------------------------------


hostile_text = st.lists(
    st.one_of(
        st.text(max_size=200),
        st.sampled_from(list("*_~`|>#-[]()<@:\\\n\t\u200b\u202e\x00\r")),
        st.sampled_from(
            [
                "---\n", "\n---\n", "## Limitations\n", "# Bias\n", "```\n", "<!--", "-->", "![x](y)",
                "language: [fr\n", "datasets:\n- a\n", "@everyone", "<@&1>", "[More Information Needed]\n", "\n\n\n",
            ]
        ),
        st.just("word " * 400),
    ),
    max_size=60,
).map("".join)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=hostile_text, checkpoint=st.text(min_size=1, max_size=300), local=st.booleans())
def test_any_card_text_gives_a_card_within_limits(text: str, checkpoint: str, local: bool) -> None:
    info = parse_model_card(text, checkpoint, local=local)
    card = to_markdown(model_card_reply(info))
    assert_card_within_limits(card)
    for f in card.fields:
        assert "\x00" not in f.value
        assert not unescaped(f.value, "@")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    strings=st.lists(st.text(max_size=300), max_size=250),
    text=st.text(max_size=3000),
    source=st.sampled_from(["hub", "local", "none"]),
)
def test_any_info_gives_a_card_within_limits(strings: list[str], text: str, source: str) -> None:
    info = ModelCardInfo(
        checkpoint=text[:150] or "x",
        task=text[:500] or None,
        languages=tuple(strings),
        license=text or None,
        datasets=tuple(reversed(strings)),
        limitations=text * 3,
        summary=text,
        url="https://huggingface.co/x" if source == "hub" else None,
        source=source,
        problem=text or None,
    )
    assert_card_within_limits(model_card_reply(info))
