"""The trained checkpoint that ships in the repo."""

import json

import pytest
import torch

from model.politeness import target_politeness
from model.translator import Translator
from tests.conftest import SHIPPED_CHECKPOINT

CLASSIC_TARGET = "これ は 例 で す 。"  # the corpus segments です as で す (KyTea)


@pytest.fixture(scope="module")
def shipped():
    return Translator.from_checkpoint(SHIPPED_CHECKPOINT, "cpu")


def head_averaged_alignment(result, layer: int) -> dict[str, str]:
    """Produced token -> the source token its head-averaged cross-attention row weighs most."""
    source = [t.text for t in result.source_tokens]
    rows = result.maps["cross"][layer].mean(dim=0)  # (T, S)
    return {t.text: source[int(row.argmax())] for t, row in zip(result.target_tokens, rows, strict=True)}


def test_card_reports_the_target_figures():
    card = json.loads(SHIPPED_CHECKPOINT.with_suffix(".json").read_text(encoding="utf-8"))
    assert card["test_bleu"]["greedy"] >= 35.0
    assert card["checkpoint_bytes"] == SHIPPED_CHECKPOINT.stat().st_size <= 20_000_000
    assert "small_parallel_enja" in card["corpus"]


def test_forced_classic_example_aligns_example_and_this(shipped):
    result = shipped.attention("This is an example.", target=CLASSIC_TARGET)
    alignments = [head_averaged_alignment(result, layer) for layer in range(shipped.config.n_decoder_layers)]
    assert any(a["例"] == "example" for a in alignments)
    assert any(a["これ"] == "this" for a in alignments)


def test_raw_text_gives_the_same_maps_as_corpus_tokens(shipped):
    a = shipped.attention("This is an example.")
    b = shipped.attention("this is an example .")
    assert torch.equal(a.maps["cross"], b.maps["cross"])


def test_everyday_sentences_translate(shipped):
    produced = {s: shipped.translate([s])[0].translation for s in ("I like tea.", "This is a dog.", "Don't go!")}
    assert produced["This is a dog."].startswith("これは犬")
    assert all(t and "<unk>" not in t for t in produced.values())


@pytest.mark.parametrize("source", ["He is a student.", "I like tea.", "This is an example."])
def test_the_politeness_asked_for_is_the_one_produced(shipped, source):
    assert shipped.config.politeness_levels == ("plain", "polite")
    for level in shipped.config.politeness_levels:
        produced = shipped.translate([source], politeness=level)[0]
        assert target_politeness([t.text for t in produced.target_tokens]) == level, produced.translation
