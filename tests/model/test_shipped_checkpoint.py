"""The trained checkpoint that ships in the repo."""

import json

import pytest
import torch

from model.translator import Translator
from tests.conftest import SHIPPED_CHECKPOINT

pytestmark = pytest.mark.skipif(not SHIPPED_CHECKPOINT.with_suffix(".json").exists(), reason="no trained checkpoint yet")


@pytest.fixture(scope="module")
def shipped():
    return Translator.from_checkpoint(SHIPPED_CHECKPOINT, "cpu")


def test_card_reports_the_target_figures():
    card = json.loads(SHIPPED_CHECKPOINT.with_suffix(".json").read_text(encoding="utf-8"))
    assert card["test_bleu"]["greedy"] >= 35.0
    assert SHIPPED_CHECKPOINT.stat().st_size <= 20_000_000
    assert "small_parallel_enja" in card["corpus"]


def test_classic_example_translates_and_aligns(shipped):
    result = shipped.attention("this is an example .")
    # The corpus segments です as で す (KyTea), so the produced tokens are これ は 例 で す 。
    assert [t.text for t in result.target_tokens] == ["これ", "は", "例", "で", "す", "。", "</s>"]
    assert result.translation == "これは例です。"
    source = [t.text for t in result.source_tokens]
    target = [t.text for t in result.target_tokens]

    def aligned_in_some_layer(target_word, source_word):
        for layer in result.maps.cross.mean(dim=1):  # (T, S) averaged over heads
            if source[int(layer[target.index(target_word)].argmax())] == source_word:
                return True
        return False

    assert aligned_in_some_layer("例", "example")
    assert aligned_in_some_layer("これ", "this")


def test_raw_text_gives_the_same_maps_as_corpus_tokens(shipped):
    a = shipped.attention("This is an example.")
    b = shipped.attention("this is an example .")
    assert torch.equal(a.maps.cross, b.maps.cross)
