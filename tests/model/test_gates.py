"""Head gates (model.gates) in the built-in networks: switching heads off, and the gradients of the gates."""

from __future__ import annotations

import pytest
import torch

from backends.interface import HeadRef
from model.gates import HeadGates
from model.translator import Translator
from model.vocab import Vocab
from tests.conftest import make_tiny_model, make_tiny_rnn

EXAMPLE = "this is an example ."
OTHER = "do n't go the cat ?"  # as many tokens as EXAMPLE, so the length limit is the same
TARGET = "これ は 例 で す 。"
CROSS_0_1 = frozenset({HeadRef("cross", 0, 1)})


def every_head(kind: str, layers: int, heads: int) -> frozenset[HeadRef]:
    return frozenset(HeadRef(kind, layer, head) for layer in range(layers) for head in range(heads))


def test_gates_are_ones_with_zeros_for_the_heads_off():
    gates = HeadGates.switching_off([HeadRef("cross", 1, 2), HeadRef("cross", 0, 0)], {"cross": (2, 4), "encoder": (2, 4)})
    assert gates.encoder is None and gates.decoder is None
    expected = torch.ones(2, 4)
    expected[1, 2] = expected[0, 0] = 0
    assert torch.equal(gates.cross, expected)
    assert HeadGates.switching_off([], {"cross": (2, 4)}) is None
    with pytest.raises(ValueError, match="cross layer 2, head 0 is not in a 2 × 4 network"):
        HeadGates.switching_off([HeadRef("cross", 2, 0)], {"cross": (2, 4)})


def test_no_head_off_is_exactly_the_model_as_it_is(tiny_translator):
    plain = tiny_translator.attention(EXAMPLE)
    none_off = tiny_translator.attention(EXAMPLE, ablate=frozenset())
    assert none_off.translation == plain.translation and none_off.score == plain.score
    assert all(torch.equal(none_off.maps[kind], plain.maps[kind]) for kind in plain.maps)


def test_a_head_off_changes_the_result_and_only_what_follows_it(tiny_translator):
    plain = tiny_translator.attention(EXAMPLE, TARGET)
    off = tiny_translator.attention(EXAMPLE, TARGET, ablate=frozenset({HeadRef("decoder", 1, 3)}))
    assert off.score != plain.score
    # the encoder runs before the decoder: its maps are the same; the last decoder layer's maps come before its output
    assert torch.equal(off.maps["encoder"], plain.maps["encoder"])
    assert torch.equal(off.maps["decoder"][:2], plain.maps["decoder"][:2])
    assert torch.equal(off.maps["cross"][0], plain.maps["cross"][0])


@pytest.mark.parametrize("make", [make_tiny_model, make_tiny_rnn], ids=["transformer", "rnn"])
def test_decoding_steps_switch_heads_off_as_the_teacher_forced_pass_does(make):
    network = make().model
    shapes = network.attention_shapes
    off = [HeadRef("cross", 0, 0)] + ([HeadRef("encoder", 1, 3), HeadRef("decoder", 0, 2)] if "encoder" in shapes else [])
    gates = HeadGates.switching_off(off, shapes)
    src = torch.tensor([[5, 6, 7, Vocab.eos_id], [8, 9, Vocab.eos_id, Vocab.pad_id]])
    tgt_in = torch.tensor([[Vocab.bos_id, 5, 6, 7], [Vocab.bos_id, 8, 9, 10]])
    with torch.no_grad():
        memory, _ = network.encode(src, gates)
        forced, _, _ = network.decode(tgt_in, memory, src, None, gates)  # (B, T, V)
        state = network.start_decoding(memory, src, gates)
        stepped = torch.stack([network.decode_step(tgt_in[:, t], state) for t in range(tgt_in.size(1))], 1)
        ungated, _, _ = network.decode(tgt_in, network.encode(src)[0], src)
    torch.testing.assert_close(stepped, forced, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(forced, ungated, atol=1e-3)


def test_every_cross_head_off_makes_the_translation_independent_of_the_source(tiny_translator):
    layers, heads = tiny_translator.model.attention_shapes["cross"]
    off = every_head("cross", layers, heads)
    with_heads = [tiny_translator.attention(s, TARGET).score for s in (EXAMPLE, OTHER)]
    assert with_heads[0] != with_heads[1]
    forced = [tiny_translator.attention(s, TARGET, ablate=off) for s in (EXAMPLE, OTHER)]
    assert forced[0].score == forced[1].score
    for beam_size in (1, 3):  # the beams' states keep their gates as they are selected
        decoded = tiny_translator.translate([EXAMPLE, OTHER], beam_size=beam_size, max_length=8, ablate=off)
        assert [t.text for t in decoded[0].target_tokens] == [t.text for t in decoded[1].target_tokens]
        assert decoded[0].score == decoded[1].score


def test_the_rnn_head_off_is_no_attention_not_no_source():
    translator = Translator(make_tiny_rnn(), "cpu")
    off = frozenset({HeadRef("cross", 0, 0)})
    # its decoder starts from the encoder's last backward state, so the source still counts
    scores = [translator.attention(s, TARGET, ablate=off).score for s in (EXAMPLE, OTHER)]
    assert scores[0] != scores[1]
    with pytest.raises(ValueError, match="the network has no encoder attention; it has cross"):
        translator.attention(EXAMPLE, ablate=frozenset({HeadRef("encoder", 0, 0)}))


def test_gate_gradients_are_the_sum_of_each_pairs_absolute_gradients(tiny_translator):
    pairs = [(EXAMPLE, TARGET), ("i like tea !", "私 は お 茶 が 好き")]
    both = tiny_translator.gate_gradients([s for s, _ in pairs], [t for _, t in pairs])
    one_by_one = [tiny_translator.gate_gradients([s], [t]) for s, t in pairs]
    assert set(both) == {"encoder", "decoder", "cross"}
    for kind, grads in both.items():
        assert grads.shape == (2, 4)
        torch.testing.assert_close(grads, one_by_one[0][kind] + one_by_one[1][kind])
        assert (grads > 0).all()
    assert all(p.grad is None for p in tiny_translator.model.parameters())  # nothing left on the weights


def test_the_gradient_importance_of_a_head_whose_output_projection_is_zero_is_zero():
    loaded = make_tiny_model()
    projection = loaded.model.decoder_layers[1].cross_attn.out_proj
    d_k = projection.in_features // 4
    with torch.no_grad():
        projection.weight[:, 2 * d_k : 3 * d_k] = 0  # head 2's slice of the output projection's input
    grads = Translator(loaded, "cpu").gate_gradients([EXAMPLE, OTHER], [TARGET, "猫 は 犬"])
    assert grads["cross"][1, 2] == 0
    assert (grads["cross"].flatten()[torch.arange(8) != 6] > 0).all()


def test_the_rnn_gate_gradient_is_its_one_heads():
    grads = Translator(make_tiny_rnn(), "cpu").gate_gradients([EXAMPLE], [TARGET])
    assert list(grads) == ["cross"] and grads["cross"].shape == (1, 1) and grads["cross"].item() > 0
