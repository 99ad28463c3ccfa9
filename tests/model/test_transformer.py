import pytest
import torch

from model.decoding import forced_attention
from model.transformer import ModelConfig, Seq2SeqTransformer, attention
from model.vocab import Vocab
from tests.conftest import make_tiny_model


def test_attention_rows_sum_to_one_and_masked_weights_are_zero():
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8)
    mask = torch.tensor([True, True, True, False, False])[None, None, None, :]
    out, weights, scores = attention(q, k, v, mask)
    assert out.shape == (2, 3, 4, 8)
    assert weights.shape == (2, 3, 4, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 4))
    assert (weights[..., 3:] == 0).all()
    torch.testing.assert_close(scores, q @ k.transpose(-2, -1) / 8**0.5)  # before the mask


def test_attention_matches_the_formula():
    q, k, v = torch.randn(1, 1, 2, 4), torch.randn(1, 1, 3, 4), torch.randn(1, 1, 3, 4)
    out, weights, _ = attention(q, k, v)
    expected = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, expected @ v)


def test_maps_have_the_documented_shapes(tiny_model):
    model = tiny_model.model
    src = torch.tensor([[5, 6, 7, Vocab.eos_id]])
    maps, logp = forced_attention(model, src, [5, 6, 7, 8, Vocab.eos_id])
    layers, heads = model.cfg.n_encoder_layers, model.cfg.n_heads
    assert maps["encoder"].shape == (layers, heads, 4, 4)
    assert maps["decoder"].shape == (model.cfg.n_decoder_layers, heads, 5, 5)
    assert maps["cross"].shape == (model.cfg.n_decoder_layers, heads, 5, 4)
    assert logp.shape == (5,)
    for m in (maps["encoder"], maps["decoder"], maps["cross"]):
        torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1]))
        assert not m.requires_grad


def test_decoder_self_attention_is_exactly_zero_above_the_diagonal(tiny_model):
    maps, _ = forced_attention(tiny_model.model, torch.tensor([[5, 6, Vocab.eos_id]]), [5, 6, 7, 8, Vocab.eos_id])
    above = torch.ones(5, 5, dtype=torch.bool).triu(1)
    assert (maps["decoder"][..., above] == 0).all()
    assert (maps["decoder"][..., ~above] > 0).all()


def test_padded_source_columns_get_zero_weight(tiny_model):
    model = tiny_model.model
    src = torch.tensor([[5, 6, Vocab.eos_id, Vocab.pad_id, Vocab.pad_id], [5, 6, 7, 8, Vocab.eos_id]])
    tgt_in = torch.tensor([[Vocab.bos_id, 5, 6], [Vocab.bos_id, 7, Vocab.pad_id]])
    memory, enc = model.encode(src)
    _, dec, cross = model.decode(tgt_in, memory, src)
    for w in enc + cross:
        assert (w[0, ..., 3:] == 0).all()
    for w in dec:
        assert (w[1, ..., 2] == 0).all()  # the padded decoder input of sentence 2


def test_padding_does_not_change_the_result(tiny_model):
    model = tiny_model.model
    alone = torch.tensor([[5, 6, Vocab.eos_id]])
    padded = torch.tensor([[5, 6, Vocab.eos_id, Vocab.pad_id]])
    tgt_in = torch.tensor([[Vocab.bos_id, 5]])
    torch.testing.assert_close(model(alone, tgt_in), model(padded, tgt_in), atol=1e-5, rtol=1e-5)


def test_learned_positions_and_untied_output_build():
    cfg = ModelConfig(
        src_vocab_size=10,
        tgt_vocab_size=12,
        d_model=16,
        n_heads=2,
        n_encoder_layers=1,
        n_decoder_layers=1,
        d_ff=32,
        positional_encoding="learned",
        tie_target_embeddings=False,
    )
    model = Seq2SeqTransformer(cfg)
    logits = model(torch.tensor([[4, 5, 3]]), torch.tensor([[2, 6]]))
    assert logits.shape == (1, 2, 12)
    assert model.generator.weight is not model.tgt_embed.tokens.weight


@pytest.mark.parametrize("overrides", [{}, {"politeness_levels": ("plain", "polite")}, {"positional_encoding": "learned"}])
def test_incremental_decoding_equals_the_whole_prefix_pass(overrides):
    model = make_tiny_model(**overrides).model.eval()
    src = torch.tensor([[4, 5, 6, 7, Vocab.eos_id], [8, 9, Vocab.eos_id, Vocab.pad_id, Vocab.pad_id]])
    tgt_in = torch.tensor([[Vocab.bos_id, 5, 6, 7, 8], [Vocab.bos_id, 9, 4, 6, 5]])
    politeness = torch.tensor([0, 1]) if model.cfg.politeness_levels else None
    memory, _ = model.encode(src)
    whole, _, _ = model.decode(tgt_in, memory, src, politeness)  # (B, T, V)
    caches = model.start_decoding(memory, src)
    for t in range(tgt_in.size(1)):
        step = model.decode_step(tgt_in[:, t], caches, politeness)
        torch.testing.assert_close(step, whole[:, t], atol=1e-5, rtol=1e-5)


def test_a_selected_cache_follows_its_rows(tiny_model):
    model = tiny_model.model.eval()
    src = torch.tensor([[4, 5, Vocab.eos_id], [6, 7, Vocab.eos_id]])
    memory, _ = model.encode(src)
    caches = model.start_decoding(memory, src)
    model.decode_step(torch.tensor([Vocab.bos_id, Vocab.bos_id]), caches)
    model.decode_step(torch.tensor([5, 8]), caches)
    swapped = caches.select(torch.tensor([1, 0]))
    expected, _, _ = model.decode(torch.tensor([[Vocab.bos_id, 8, 6]]), memory[1:], src[1:])
    torch.testing.assert_close(model.decode_step(torch.tensor([6, 6]), swapped)[0], expected[0, -1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("overrides", [{}, {"politeness_levels": ("plain", "polite")}])
def test_the_trace_is_the_pass_of_encode_and_decode(overrides):
    model = make_tiny_model(**overrides).model.eval()
    src = torch.tensor([[4, 5, 6, 7, Vocab.eos_id], [8, 9, Vocab.eos_id, Vocab.pad_id, Vocab.pad_id]])
    tgt_in = torch.tensor([[Vocab.bos_id, 5, 6, 7], [Vocab.bos_id, 9, 4, Vocab.pad_id]])
    politeness = torch.tensor([0, 1]) if model.cfg.politeness_levels else None
    memory, enc = model.encode(src)
    logits, dec, cross = model.decode(tgt_in, memory, src, politeness)
    trace = model.trace(src, tgt_in, politeness)
    assert torch.equal(trace.memory, memory) and torch.equal(trace.logits, logits)
    assert all(torch.equal(a.blocks["encoder"].weights, b) for a, b in zip(trace.encoder, enc, strict=True))
    for layer, d, c in zip(trace.decoder, dec, cross, strict=True):
        assert torch.equal(layer.blocks["decoder"].weights, d) and torch.equal(layer.blocks["cross"].weights, c)
    assert not trace.logits.requires_grad


def test_the_trace_fields_recompute_each_other(tiny_model):
    """Each recorded intermediate is what the documented formula makes of the ones before it."""
    model = tiny_model.model.eval()
    src = torch.tensor([[4, 5, 6, Vocab.eos_id]])
    tgt_in = torch.tensor([[Vocab.bos_id, 5, 6]])
    trace = model.trace(src, tgt_in)
    torch.testing.assert_close(trace.source_embeddings, model.src_embed(src))
    x = trace.source_embeddings
    for layer, module in zip(trace.encoder, model.encoder_layers, strict=True):
        block = layer.blocks["encoder"]
        torch.testing.assert_close(block.residual_in, x)
        torch.testing.assert_close(block.query_in, module.self_attn_norm(x))
        assert block.key_value_in is block.query_in
        b, h, t, d_k = block.q.shape
        torch.testing.assert_close(block.q, module.self_attn.q_proj(block.query_in).view(b, t, h, d_k).transpose(1, 2))
        torch.testing.assert_close(block.scores, block.q @ block.k.transpose(-2, -1) / d_k**0.5)
        torch.testing.assert_close(block.weights, block.scores.masked_fill(~block.mask, float("-inf")).softmax(-1))
        torch.testing.assert_close(block.head_outputs, block.weights @ block.v)
        concat = block.head_outputs.transpose(1, 2).reshape(b, t, h * d_k)
        torch.testing.assert_close(block.attn_out, module.self_attn.out_proj(concat))
        torch.testing.assert_close(block.residual_out, block.residual_in + block.attn_out)
        torch.testing.assert_close(layer.ff_in, block.residual_out)
        torch.testing.assert_close(layer.ff_out, module.ff(module.ff_norm(layer.ff_in)))
        torch.testing.assert_close(layer.out, layer.ff_in + layer.ff_out)
        x = layer.out
    torch.testing.assert_close(trace.memory, model.encoder_norm(x))
    y = trace.target_embeddings
    for layer in trace.decoder:
        own, cross = layer.blocks["decoder"], layer.blocks["cross"]
        torch.testing.assert_close(own.residual_in, y)
        assert own.mask.shape[-2:] == (3, 3) and not own.mask[..., 0, 1:].any()
        torch.testing.assert_close(cross.residual_in, own.residual_out)
        assert cross.key_value_in is trace.memory
        torch.testing.assert_close(layer.ff_in, cross.residual_out)
        y = layer.out
    torch.testing.assert_close(trace.logits, model.generator(model.decoder_norm(y)))


def test_a_trace_reuses_an_encoder_trace_and_encode_is_its_encoded(tiny_model):
    model = tiny_model.model.eval()
    src, tgt_in = torch.tensor([[4, 5, 6, Vocab.eos_id]]), torch.tensor([[Vocab.bos_id, 5, 6]])
    encoder = model.trace_encoder(src)
    memory, weights = model.encode(src)
    assert torch.equal(encoder.encoded[0], memory)
    assert all(torch.equal(a, b) for a, b in zip(encoder.encoded[1], weights, strict=True))
    reused, fresh = model.trace(src, tgt_in, encoder=encoder), model.trace(src, tgt_in)
    assert reused.encoder is encoder.layers and torch.equal(reused.logits, fresh.logits)
