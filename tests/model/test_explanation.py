"""One head opened up (model.explanation, Translator.explain): each step recomputed from the explanation's own
inputs equals what the model computed, taken in the test from its debug path (Seq2SeqTransformer.trace) and
from the attention maps of the ordinary pass (encode/decode)."""

from __future__ import annotations

import math

import pytest
import torch

from backends.interface import InputError
from model.decoding import decoder_inputs, forced_attention
from model.explanation import POSITION_ROWS, explain_head
from model.transformer import sinusoidal_table
from model.translator import Translator
from tests.conftest import SHIPPED_CHECKPOINT, make_tiny_model, make_tiny_rnn

SOURCE = "this is an example ."
TARGET = "これ は 例 で す 。"
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def shipped() -> Translator:
    return Translator.from_checkpoint(SHIPPED_CHECKPOINT, "cpu")


@pytest.fixture(scope="module")
def tiny() -> Translator:
    return Translator(make_tiny_model(), "cpu")


def traced_pair(translator: Translator, target: str | None = TARGET):
    """The pair's traced pass and its attention maps, computed here, independently of the explanation."""
    pair = translator._pair(SOURCE, target, 1, None, "auto", lambda: None)
    trace = translator.model.trace(pair.src, decoder_inputs(pair.target_ids), pair.politeness)
    maps, _ = forced_attention(translator.model, pair.src, pair.target_ids, pair.politeness)
    return pair, trace, maps


def explanation(translator, trace, pair, kind, layer, head, query):
    return explain_head(
        translator.model,
        trace,
        kind,
        layer,
        head,
        query,
        source_tokens=pair.source_tokens,
        target_tokens=pair.target_tokens,
        decoder_input_tokens=[],
        translation="",
        forced=True,
        controls={},
    )


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal to 1e-6 of the larger of 1 and b's largest entry: weights (at most 1) to 1e-6 absolute, vectors as
    far as float32 sums in another order agree (a projection of the shipped model's 256 numbers differs by ~2e-6)."""
    return a.shape == b.shape and torch.allclose(a, b, atol=TOLERANCE * max(1.0, b.abs().max().item()), rtol=0)


def modules(model, kind, layer):
    """The layer, the LayerNorm before the block of `kind` and its attention module."""
    layer_module = (model.encoder_layers if kind == "encoder" else model.decoder_layers)[layer]
    if kind == "cross":
        return layer_module, layer_module.cross_attn_norm, layer_module.cross_attn
    return layer_module, layer_module.self_attn_norm, layer_module.self_attn


def check_every_step(translator: Translator, trace, maps, e) -> None:
    layer_trace = (trace.encoder if e.kind == "encoder" else trace.decoder)[e.layer]
    block = layer_trace.blocks[e.kind]
    layer_module, norm, attn = modules(translator.model, e.kind, e.layer)
    heads, d_k = e.head_outputs.shape
    columns = slice(e.head * d_k, (e.head + 1) * d_k)

    # x: the LayerNorm of the residual stream (pre-LN); q, K, V: this head's columns of the projections
    assert close(e.query_input, norm(e.residual_in))
    assert close(e.queries[e.query], attn.q_proj(e.query_input)[columns])
    assert close(e.keys, attn.k_proj(e.key_inputs)[:, columns])
    assert close(e.values, attn.v_proj(e.key_inputs)[:, columns])

    # scores, mask, softmax: the row of the map the ordinary pass returned
    q = e.queries[e.query]
    assert close(e.scores, e.keys @ q / math.sqrt(d_k))
    recomputed = (e.keys @ q / math.sqrt(d_k)).masked_fill(~e.allowed, float("-inf")).softmax(-1)
    assert close(recomputed, maps[e.kind][e.layer, e.head, e.query])
    if e.kind == "decoder":  # the future is masked
        assert e.allowed.tolist() == [j <= e.query for j in range(len(e.allowed))]
    else:
        assert bool(e.allowed.all())

    # Σ α_j v_j, the heads concatenated, W_O, the residual add: the model's own intermediates
    head_output = recomputed @ e.values
    assert close(head_output, block.head_outputs[0, e.head, e.query])
    assert close(e.head_outputs, block.head_outputs[0, :, e.query])
    concatenated = e.head_outputs.reshape(heads * d_k)
    attention_output = attn.out_proj(concatenated)
    assert close(attention_output, block.attn_out[0, e.query])
    assert close(e.attention_output, attention_output)
    assert close(e.residual_in + attention_output, block.residual_out[0, e.query])
    assert close(e.residual_out, block.residual_out[0, e.query])

    # the feed-forward block closing the layer
    ff = e.feed_forward
    assert close(ff.input, layer_trace.ff_in[0, e.query])
    assert close(ff.normed, layer_module.ff_norm(ff.input))
    assert close(ff.output, layer_module.ff(ff.normed))
    assert close(ff.result, ff.input + ff.output)
    assert close(ff.result, layer_trace.out[0, e.query])
    if e.kind != "decoder":  # the decoder's self-attention block is followed by cross-attention, then the feed-forward
        assert close(ff.input, e.residual_out)


@pytest.mark.parametrize("kind", ["encoder", "decoder", "cross"])
def test_tiny_model_every_layer_head_and_query(tiny, kind):
    pair, trace, maps = traced_pair(tiny)
    rows = len(pair.source_tokens) if kind == "encoder" else len(pair.target_tokens)
    for layer in range(2):
        for head in range(4):
            for query in range(rows):
                check_every_step(tiny, trace, maps, explanation(tiny, trace, pair, kind, layer, head, query))


@pytest.mark.parametrize("kind", ["encoder", "decoder", "cross"])
def test_shipped_model_every_layer_and_head(shipped, kind):
    pair, trace, maps = traced_pair(shipped)
    query = 2  # "an" in the source, 例 in the target
    for layer in range(shipped.config.n_encoder_layers if kind == "encoder" else shipped.config.n_decoder_layers):
        for head in range(shipped.config.n_heads):
            check_every_step(shipped, trace, maps, explanation(shipped, trace, pair, kind, layer, head, query))


def test_explain_decodes_as_attention_does_and_opens_the_same_row(shipped):
    """Without a target, explain() decodes the model's own translation, as attention() does."""
    attention = shipped.attention(SOURCE)
    for kind in ("encoder", "decoder", "cross"):
        e = shipped.explain(SOURCE, None, kind, 1, 3, 1)
        assert [t.text for t in e.target_tokens] == [t.text for t in attention.target_tokens]
        assert e.controls == attention.controls and not e.forced
        row = (e.keys @ e.queries[1] / math.sqrt(e.keys.size(1))).masked_fill(~e.allowed, float("-inf")).softmax(-1)
        assert close(row, attention.maps[kind][1, 3, 1])


def test_politeness_is_the_one_the_maps_were_made_with(shipped):
    for politeness in ("plain", "polite"):
        attention = shipped.attention(SOURCE, politeness=politeness)
        e = shipped.explain(SOURCE, None, "cross", 2, 0, 0, politeness=politeness)
        assert e.translation == attention.translation and e.controls == {"politeness": politeness}
        assert close(e.weights, attention.maps["cross"][2, 0, 0])


def test_the_position_table_is_the_models(tiny):
    e = tiny.explain(SOURCE, TARGET, "cross", 0, 0, 0)
    assert e.positions.encoding == "sinusoidal" and e.positions.side == "target"
    assert torch.equal(e.positions.table, sinusoidal_table(64, 32)[:POSITION_ROWS])
    learned = Translator(make_tiny_model(positional_encoding="learned"), "cpu")
    e = learned.explain(SOURCE, TARGET, "encoder", 0, 0, 0)
    assert e.positions.encoding == "learned" and e.positions.side == "source"
    assert torch.equal(e.positions.table, learned.model.src_embed.positions.weight[:POSITION_ROWS])


def test_a_query_past_the_translation_is_refused(tiny):
    with pytest.raises(InputError, match="query 7 out of range: the translation has 7 tokens, so valid queries are 0 to 6"):
        tiny.explain(SOURCE, TARGET, "decoder", 0, 0, 7)
    with pytest.raises(InputError, match="cross head 4 out of range"):
        tiny.explain(SOURCE, TARGET, "cross", 0, 4, 0)


def test_the_rnn_cannot_be_explained():
    with pytest.raises(InputError, match="cannot be explained"):
        Translator(make_tiny_rnn(), "cpu").explain(SOURCE, TARGET, "cross", 0, 0, 0)
