"""Switching heads off in Hugging Face models (backends.huggingface): a pre-hook on each attention's output projection."""

from __future__ import annotations

import threading

import pytest
import torch

from backends.interface import HeadRef, InputError
from tests.backends.conftest import FAMILIES

pytest.importorskip("transformers", reason="the hf extra is not installed")

from backends.huggingface import HuggingFaceModel, _head_outputs  # noqa: E402

SOURCES = ("i like tea .", "the dog is big and old .")
TARGET = "私 は お 茶 が 好き で す 。"


@pytest.fixture(scope="session")
def models(tiny_hf_dirs) -> dict[str, HuggingFaceModel]:
    return {family: HuggingFaceModel.load(directory) for family, directory in tiny_hf_dirs.items()}


def every_head(model, kind: str) -> frozenset[HeadRef]:
    shape = model.describe().kinds[kind]
    return frozenset(HeadRef(kind, layer, head) for layer in range(shape.layers) for head in range(shape.heads))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_here_can_switch_heads_off_and_no_head_off_is_the_model_as_it_is(models, family):
    model = models[family]
    assert model.describe().ablation is True
    plain = model.attention(SOURCES[0], TARGET)
    none_off = model.attention(SOURCES[0], TARGET, ablate=frozenset())
    assert none_off.score == plain.score
    assert all(torch.equal(none_off.maps[kind], plain.maps[kind]) for kind in plain.maps)
    one_off = model.attention(SOURCES[0], TARGET, ablate=frozenset({HeadRef("encoder", 0, 1)}))
    assert one_off.score != plain.score
    assert torch.equal(one_off.maps["encoder"][0], plain.maps["encoder"][0])  # the maps before the head's output
    assert not torch.equal(one_off.maps["cross"], plain.maps["cross"])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_cross_head_off_makes_the_translation_independent_of_the_source(models, family):
    model = models[family]
    off = every_head(model, "cross")
    assert model.attention(SOURCES[0], TARGET).score != model.attention(SOURCES[1], TARGET).score
    forced = [model.attention(source, TARGET, ablate=off).score for source in SOURCES]
    assert forced[0] == pytest.approx(forced[1], abs=1e-5)
    for beam_size in (1, 2):
        decoded = model.translate(list(SOURCES), beam_size=beam_size, max_length=12, ablate=off)
        assert decoded[0].translation == decoded[1].translation


@pytest.mark.parametrize("family", ["marian", "t5"])
def test_gate_gradients_are_zero_for_a_head_whose_output_projection_is_zero(tiny_hf_dirs, family):
    model = HuggingFaceModel.load(tiny_hf_dirs[family])  # its own copy: the weights change
    projections = _head_outputs(model._model, model.describe().kinds)
    projection = projections[("cross", 0)]
    heads = model.describe().kinds["cross"].heads
    width = projection.in_features // heads
    with torch.no_grad():
        projection.weight[:, width : 2 * width] = 0  # head 1's slice of the projection's input
    grads = model.gate_gradients(list(SOURCES), [TARGET, "犬 は 大き い"])
    assert grads["cross"][0, 1] == 0
    assert grads["cross"][0, 0] > 0 and (grads["encoder"] > 0).all()
    assert all(p.grad is None for p in model._model.parameters())


def test_concurrent_calls_keep_their_own_heads(models):
    """The gates live with the call, not the modules: two threads with other heads off never mix."""
    model = models["marian"]
    off = every_head(model, "cross")
    expected = {True: model.attention(SOURCES[0], TARGET, ablate=off).score, False: model.attention(SOURCES[0], TARGET).score}
    seen: dict[bool, set[float]] = {True: set(), False: set()}

    def run(ablated: bool) -> None:
        for _ in range(15):
            seen[ablated].add(model.attention(SOURCES[0], TARGET, ablate=off if ablated else frozenset()).score)

    threads = [threading.Thread(target=run, args=(ablated,)) for ablated in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {True: {expected[True]}, False: {expected[False]}}


def test_a_layout_it_does_not_know_is_not_ablatable(models):
    model = models["bart"]
    kinds = dict(model.describe().kinds)
    kinds["encoder"] = type(kinds["encoder"])(layers=kinds["encoder"].layers + 1, heads=kinds["encoder"].heads)
    assert _head_outputs(model._model, kinds) is None  # a layer it cannot find


def test_heads_out_of_range_are_input_errors(models):
    with pytest.raises(InputError, match="cross layers are 0 to 0, heads 0 to 1"):
        models["marian"].translate(["i like tea ."], ablate=frozenset({HeadRef("cross", 1, 0)}))
