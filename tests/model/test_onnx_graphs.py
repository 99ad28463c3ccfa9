"""The encoder, the forced pass and the decoding step in ONNX Runtime (model.onnx_graphs) against the network's own
passes in PyTorch."""

from __future__ import annotations

import weakref

import pytest
import torch

from backends.interface import HeadRef
from model import onnx_graphs
from model.decoding import beam_search, greedy_decode
from model.gates import HeadGates
from model.onnx_graphs import OnnxTransformer, exported_graphs, reuse_graphs
from model.transformer import CACHE_POSITIONS, Seq2SeqTransformer
from model.translator import PAD_MULTIPLE, Translator
from model.vocab import Vocab
from tests.conftest import make_tiny_model, make_tiny_rnn

SOURCES = torch.tensor([[4, 5, 6, 7, Vocab.eos_id], [8, 9, Vocab.eos_id, Vocab.pad_id, Vocab.pad_id]])


# The networks each part is checked on: plain, with politeness control, with learned positions.
NETWORKS = pytest.mark.parametrize(
    "overrides",
    [{}, {"politeness_levels": ("plain", "polite")}, {"positional_encoding": "learned"}],
    ids=["plain", "politeness", "learned"],
)


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


@NETWORKS
def test_each_step_gives_the_logits_of_the_pytorch_step(overrides):
    network = make_tiny_model(**overrides).model.eval()
    graph = OnnxTransformer(network)
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
    graph = OnnxTransformer(network)
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


def passes(model, src, tgt_in, politeness, gates=None) -> list[torch.Tensor]:
    """Every output of encode() then decode() (the forced pass) of `model`: memory, the encoder's weights, the
    logits, the decoder's and the cross weights."""
    with torch.inference_mode():
        memory, encoder = model.encode(src, gates)
        logits, own, cross = model.decode(tgt_in, memory, src, politeness, gates)
    return [memory, *encoder, logits, *own, *cross]


@NETWORKS
def test_the_encoder_and_forced_passes_give_the_outputs_of_pytorch(overrides):
    network = make_tiny_model(**overrides).model.eval()
    graph = OnnxTransformer(network)
    politeness = torch.tensor([0, 1]) if network.cfg.politeness_levels else None
    for target_length in (1, 6, CACHE_POSITIONS + 3):  # other lengths than the export's example
        tgt_in = torch.randint(4, network.cfg.tgt_vocab_size, (2, target_length))
        tgt_in[1, 1:] = Vocab.pad_id  # a shorter target of the batch: its inputs padded after <s>'s position
        got, expected = passes(graph, SOURCES, tgt_in, politeness), passes(network, SOURCES, tgt_in, politeness)
        assert [a.shape for a in got] == [b.shape for b in expected]
        for a, b in zip(got, expected, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("per_row", [False, True], ids=["shared gates", "gates per sentence"])
def test_heads_switched_off_reach_the_encoder_and_forced_passes(per_row):
    network = make_tiny_model().model.eval()
    graph = OnnxTransformer(network)
    heads = [HeadRef("encoder", 0, 0), HeadRef("cross", 0, 1), HeadRef("decoder", 1, 0)]
    gates = HeadGates.switching_off(heads, network.attention_shapes)
    if per_row:
        gates = HeadGates(*(torch.stack([g, torch.ones_like(g)]) for g in (gates.encoder, gates.decoder, gates.cross)))
    tgt_in = torch.randint(4, network.cfg.tgt_vocab_size, (2, 5))
    got, expected = passes(graph, SOURCES, tgt_in, None, gates), passes(network, SOURCES, tgt_in, None, gates)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    ungated = passes(graph, SOURCES, tgt_in, None)
    assert not torch.allclose(got[0], ungated[0], atol=1e-3)  # the encoder's gates reached the graph
    logits = 1 + network.cfg.n_encoder_layers
    assert not torch.allclose(got[logits], ungated[logits], atol=1e-3)  # and the decoder's


def test_a_row_of_a_batch_gets_the_bytes_it_gets_alone_at_padded_shapes():
    """What Translator.batches_exactly counts on: with one thread, at PAD_MULTIPLE shapes, each row of a pass is
    computed the same way whatever the number of rows."""
    network = make_tiny_model(politeness_levels=("plain", "polite")).model.eval()
    graph = OnnxTransformer(network, threads=1)
    generator = torch.Generator().manual_seed(0)
    src = torch.randint(4, network.cfg.src_vocab_size, (5, PAD_MULTIPLE * 2), generator=generator)
    src[1:, -5:] = Vocab.pad_id  # padding within the padded length, as shorter sources of the class have
    tgt_in = torch.randint(4, network.cfg.tgt_vocab_size, (5, PAD_MULTIPLE), generator=generator)
    tgt_in[2:, -3:] = Vocab.pad_id
    politeness = torch.tensor([0, 1, 1, 0, 1])
    together = passes(graph, src, tgt_in, politeness)
    for row in range(5):
        alone = passes(graph, src[row : row + 1], tgt_in[row : row + 1], politeness[row : row + 1])
        for a, b in zip(together, alone, strict=True):
            assert torch.equal(a[row : row + 1], b)


def test_the_translators_weights_come_from_the_graphs_and_the_traced_methods_from_the_network(monkeypatch):
    translator = Translator(make_tiny_model(), "cpu")
    calls = {"graphs": 0, "network": 0}
    for owner, name in ((translator.inference, "graphs"), (translator.model, "network")):
        real = owner.decode

        def counted(*args, real=real, name=name, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, "decode", counted)
    translator.attention("the cat", method="weights")
    assert calls == {"graphs": 1, "network": 0}
    translator.attention("the cat", method="norms")  # traced: Seq2SeqTransformer.trace, not decode()
    assert calls == {"graphs": 1, "network": 0}


def test_greedy_and_beam_search_decode_the_same_tokens_as_pytorch():
    network = make_tiny_model(politeness_levels=("plain", "polite")).model.eval()
    graph = OnnxTransformer(network)
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
    assert isinstance(transformer.inference, OnnxTransformer) and transformer.inference.network is transformer.model
    rnn = Translator(make_tiny_rnn(), "cpu")
    assert rnn.inference is rnn.model and not isinstance(rnn.model, Seq2SeqTransformer)


def test_the_step_refuses_politeness_the_model_lacks():
    graph = OnnxTransformer(make_tiny_model().model.eval())
    memory, _ = graph.encode(SOURCES)
    with pytest.raises(ValueError, match="politeness"):
        graph.decode_step(torch.tensor([Vocab.bos_id] * 2), graph.start_decoding(memory, SOURCES), torch.tensor([0, 1]))


def test_a_network_built_again_reuses_its_export_and_other_weights_get_their_own():
    first, again, changed = (make_tiny_model().model.eval() for _ in range(3))
    with torch.no_grad():
        changed.decoder_layers[0].ff.net[0].weight.mul_(1.5)
    graphs = [OnnxTransformer(network) for network in (first, again, changed)]
    assert graphs[0].key == graphs[1].key != graphs[2].key
    assert graphs[0].graph("step") is graphs[1].graph("step")
    with torch.inference_mode():
        tokens = torch.randint(4, changed.cfg.tgt_vocab_size, (2, 3))
        expected = stepped(changed, 3, SOURCES, tokens, None)
        got = stepped(graphs[2], 3, SOURCES, tokens, None)
        before = stepped(graphs[0], 3, SOURCES, tokens, None)
    torch.testing.assert_close(got[-1], expected[-1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got[-1], before[-1], atol=1e-3)


def test_a_part_is_exported_when_first_run_and_a_process_given_the_graphs_exports_none(monkeypatch):
    """Each part is exported the first time it runs (a model that only translates never exports its forced pass);
    exported_graphs() exports the rest, and an OnnxTransformer made after reuse_graphs() of them exports nothing."""
    network = make_tiny_model().model.eval()
    with torch.no_grad():
        network.decoder_layers[0].ff.net[0].weight.mul_(0.5)  # weights of its own: no other test has exported them
    exported: list[str] = []
    export = torch.onnx.export
    monkeypatch.setattr(
        torch.onnx,
        "export",
        lambda module, *args, **kwargs: exported.append(type(module).__name__) or export(module, *args, **kwargs),
    )
    monkeypatch.setattr(onnx_graphs, "_LIVE", weakref.WeakSet())  # this test's networks only, not other tests' left alive
    graph = OnnxTransformer(network)
    assert exported == []
    with torch.inference_mode():
        memory, _ = graph.encode(SOURCES)
        graph.encode(SOURCES)
    assert exported == ["_Encoder"]
    graphs = exported_graphs()[graph.key]
    assert sorted(exported) == ["_Decoder", "_Encoder", "_Start", "_Step"]
    assert sorted(graphs) == sorted(onnx_graphs.PARTS)

    reuse_graphs({graph.key: graphs})  # as a model process is given them (app.registry.ModelRegistry.load_sources)
    monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: pytest.fail("exported again"))
    again = OnnxTransformer(network)
    tokens = torch.randint(4, network.cfg.tgt_vocab_size, (2, 3))
    with torch.inference_mode():
        torch.testing.assert_close(stepped(again, 3, SOURCES, tokens, None)[-1], stepped(graph, 3, SOURCES, tokens, None)[-1])
        torch.testing.assert_close(again.decode(tokens, memory, SOURCES)[0], graph.decode(tokens, memory, SOURCES)[0])
