"""The decoding step in ONNX Runtime (model.step_graph) against the network's own step in PyTorch."""

from __future__ import annotations

import pytest
import torch

from backends.interface import HeadRef
from model.decoding import beam_search, greedy_decode
from model.gates import HeadGates
from model.step_graph import StepGraph
from model.transformer import CACHE_POSITIONS, Seq2SeqTransformer
from model.translator import Translator
from model.vocab import Vocab
from tests.conftest import make_tiny_model, make_tiny_rnn

SOURCES = torch.tensor([[4, 5, 6, 7, Vocab.eos_id], [8, 9, Vocab.eos_id, Vocab.pad_id, Vocab.pad_id]])


def stepped(network, steps: int, src: torch.Tensor, tokens: torch.Tensor, politeness, gates=None, select=None):
    """The logits (B, steps, V) of decoding `tokens` (B, steps) one step at a time; `select` (B',) picks the state's
    rows after the second step, as beam search does."""
    memory, _ = network.encode(src, gates)
    state = network.start_decoding(memory, src, gates)
    out = []
    for t in range(steps):
        out.append(network.decode_step(tokens[:, t], state, politeness))
        if t == 1 and select is not None:
            state, tokens, politeness = state.select(select), tokens[select], None if politeness is None else politeness[select]
    return out


@pytest.mark.parametrize(
    "overrides",
    [{}, {"politeness_levels": ("plain", "polite")}, {"positional_encoding": "learned"}],
    ids=["plain", "politeness", "learned"],
)
def test_each_step_gives_the_logits_of_the_pytorch_step(overrides):
    network = make_tiny_model(**overrides).model.eval()
    graph = StepGraph(network)
    tokens = torch.randint(4, network.cfg.tgt_vocab_size, (2, CACHE_POSITIONS + 8))  # past the first cache buffer
    politeness = torch.tensor([0, 1]) if network.cfg.politeness_levels else None
    with torch.inference_mode():
        expected = stepped(network, tokens.size(1), SOURCES, tokens, politeness)
        got = stepped(graph, tokens.size(1), SOURCES, tokens, politeness)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not network.training  # the export leaves the network in eval mode


@pytest.mark.parametrize("per_row", [False, True], ids=["shared gates", "gates per sentence"])
def test_heads_switched_off_and_selected_rows_step_as_in_pytorch(per_row):
    network = make_tiny_model().model.eval()
    graph = StepGraph(network)
    gates = HeadGates.switching_off([HeadRef("cross", 0, 1), HeadRef("decoder", 1, 0)], network.attention_shapes)
    if per_row:  # one sentence with the heads off, the other with every head on
        gates = HeadGates(
            None,
            torch.stack([gates.decoder, torch.ones_like(gates.decoder)]),
            torch.stack([gates.cross, torch.ones_like(gates.cross)]),
        )
    tokens = torch.randint(4, network.cfg.tgt_vocab_size, (2, 6))
    rows = torch.tensor([1, 0, 0])  # the rows swapped, one twice
    with torch.inference_mode():
        expected = stepped(network, 6, SOURCES, tokens, None, gates, rows)
        got = stepped(graph, 6, SOURCES, tokens, None, gates, rows)
        ungated = stepped(graph, 6, SOURCES, tokens, None, None, rows)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got[-1], ungated[-1], atol=1e-3)  # the gates reached the graph


def test_greedy_and_beam_search_decode_the_same_tokens_as_pytorch():
    network = make_tiny_model(politeness_levels=("plain", "polite")).model.eval()
    graph = StepGraph(network)
    src = torch.randint(4, network.cfg.src_vocab_size, (6, 7))
    src[:, -1] = Vocab.eos_id
    politeness = torch.tensor([0, 1, 0, 1, 0, 1])
    for a, b in zip(greedy_decode(graph, src, 12, politeness), greedy_decode(network, src, 12, politeness), strict=True):
        assert a.ids == b.ids
        assert a.score == pytest.approx(b.score, abs=1e-4)
    beams = beam_search(graph, src, 3, 12, n_best=3, politeness=politeness)
    for a, b in zip(beams, beam_search(network, src, 3, 12, n_best=3, politeness=politeness), strict=True):
        assert [h.ids for h in a] == [h.ids for h in b]


def test_the_translator_steps_a_cpu_transformer_in_onnx_runtime_and_an_rnn_in_pytorch():
    transformer = Translator(make_tiny_model(), "cpu")
    assert isinstance(transformer.decoder, StepGraph) and transformer.decoder.network is transformer.model
    rnn = Translator(make_tiny_rnn(), "cpu")
    assert rnn.decoder is rnn.model and not isinstance(rnn.model, Seq2SeqTransformer)


def test_the_step_refuses_politeness_the_model_lacks():
    graph = StepGraph(make_tiny_model().model.eval())
    memory, _ = graph.encode(SOURCES)
    with pytest.raises(ValueError, match="politeness"):
        graph.decode_step(torch.tensor([Vocab.bos_id] * 2), graph.start_decoding(memory, SOURCES), torch.tensor([0, 1]))


def test_a_network_built_again_reuses_its_export_and_other_weights_get_their_own():
    first, again, changed = (make_tiny_model().model.eval() for _ in range(3))
    with torch.no_grad():
        changed.decoder_layers[0].ff.net[0].weight.mul_(1.5)
    graphs = [StepGraph(network) for network in (first, again, changed)]
    assert graphs[0]._exported() is graphs[1]._exported()
    with torch.inference_mode():
        tokens = torch.randint(4, changed.cfg.tgt_vocab_size, (2, 3))
        expected = stepped(changed, 3, SOURCES, tokens, None)
        got = stepped(graphs[2], 3, SOURCES, tokens, None)
        before = stepped(graphs[0], 3, SOURCES, tokens, None)
    torch.testing.assert_close(got[-1], expected[-1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got[-1], before[-1], atol=1e-3)
