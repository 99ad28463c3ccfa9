import pytest
import torch

from model.decoding import forced_attention
from model.transformer import ModelConfig, Seq2SeqTransformer, attention
from model.vocab import Vocab
from tests.conftest import make_tiny_model


def test_attention_rows_sum_to_one_and_masked_weights_are_zero():
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8)
    mask = torch.tensor([True, True, True, False, False])[None, None, None, :]
    out, weights = attention(q, k, v, mask)
    assert out.shape == (2, 3, 4, 8)
    assert weights.shape == (2, 3, 4, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 4))
    assert (weights[..., 3:] == 0).all()


def test_attention_matches_the_formula():
    q, k, v = torch.randn(1, 1, 2, 4), torch.randn(1, 1, 3, 4), torch.randn(1, 1, 3, 4)
    out, weights = attention(q, k, v)
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
