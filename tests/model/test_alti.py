import pytest
import torch

from model.alti import alti
from model.methods import method_maps
from model.vocab import Vocab
from tests.conftest import make_tiny_model
from tests.model.reference import Block, run_by_hand

SOURCE = [5, 6, 7, 8, Vocab.eos_id]
TARGET = [9, 10, 11, 12, Vocab.eos_id]


def paper_contributions(block: Block, self_attention: bool) -> torch.Tensor:
    """Ferrando et al. 2022, written out: T_i(x_j) = Σ_h α^h_ij f^h(x_j) (+ x_i for j = i, or the residual as one
    more contributor in cross-attention), c_ij = max(0, ‖y_i‖₁ − ‖y_i − T_i(x_j)‖₁), rows divided by their sum."""
    heads, rows, cols = block.weights.shape
    out = torch.zeros(rows, cols if self_attention else cols + 1)
    for i in range(rows):
        y = block.residual_out[i]
        vectors = [sum(block.weights[h, i, j] * block.transformed[h, j] for h in range(heads)) for j in range(cols)]
        if self_attention:
            vectors[i] = vectors[i] + block.residual_in[i]
        else:
            vectors.append(block.residual_in[i])
        scores = [max(0.0, float(y.abs().sum() - (y - t).abs().sum())) for t in vectors]
        out[i] = torch.tensor(scores) / sum(scores)
    return out


def paper_alti(blocks: dict[str, list[Block]]) -> tuple[torch.Tensor, torch.Tensor]:
    """ALTI+ composition by loops: encoder rollout, then decoder layers over [source | prefix]."""
    encoder = [paper_contributions(b, True) for b in blocks["encoder"]]
    rolled = encoder[0]
    for c in encoder[1:]:
        rolled = c @ rolled
    n_source = rolled.size(0)
    source = prefix = None
    for own_block, cross_block in zip(blocks["decoder"], blocks["cross"], strict=True):
        own = paper_contributions(own_block, True)
        cross = paper_contributions(cross_block, False)
        t = own.size(0)
        layer_source = torch.zeros(t, n_source)
        layer_prefix = torch.zeros(t, t)
        for i in range(t):
            for j in range(n_source):
                layer_source[i, j] = sum(cross[i, e] * rolled[e, j] for e in range(n_source))
            for k in range(t):
                layer_prefix[i, k] = own[i, k] * cross[i, n_source]
        if source is None:
            source, prefix = layer_source, layer_prefix
        else:
            new_source = layer_source + layer_prefix @ source
            new_prefix = layer_prefix @ prefix
            total = new_source.sum(1, keepdim=True) + new_prefix.sum(1, keepdim=True)
            source, prefix = new_source / total, new_prefix / total
    return source, prefix


@pytest.fixture
def pair():
    return torch.tensor([SOURCE]), torch.tensor([[Vocab.bos_id, *TARGET[:-1]]])


def test_contributions_are_non_negative_and_sum_to_one(tiny_model, pair):
    result = method_maps(tiny_model.model, pair[0], TARGET, method="alti")
    source, prefix = result.contributions.source, result.contributions.prefix
    assert (source >= 0).all() and (prefix >= 0).all()
    torch.testing.assert_close(source.sum(-1) + prefix.sum(-1), torch.ones(len(TARGET)))
    assert result.contributions.normalised
    for kind in ("encoder", "decoder"):
        torch.testing.assert_close(result.layer_maps[kind].sum(-1), torch.ones(result.layer_maps[kind].shape[:-1]))
    cross = result.layer_maps["cross"].sum(-1) + result.residual_shares["cross"]
    torch.testing.assert_close(cross, torch.ones_like(cross))
    assert (prefix[torch.ones(5, 5, dtype=torch.bool).triu(1)] == 0).all()  # a produced token sees no later input


def test_alti_equals_the_paper_written_out(tiny_model, pair):
    model = tiny_model.model
    result = alti(model, model.trace(*pair))
    blocks = run_by_hand(model, SOURCE, pair[1][0].tolist())
    for kind, field in (("encoder", result.encoder), ("decoder", result.decoder)):
        for layer, block in enumerate(blocks[kind]):
            torch.testing.assert_close(field[0, layer], paper_contributions(block, True), atol=1e-5, rtol=1e-4)
    for layer, block in enumerate(blocks["cross"]):
        expected = paper_contributions(block, False)
        torch.testing.assert_close(result.cross[0, layer], expected[:, :-1], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(result.cross_residual[0, layer], expected[:, -1], atol=1e-5, rtol=1e-4)
    source, prefix = paper_alti(blocks)
    torch.testing.assert_close(result.source[0], source, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(result.prefix[0], prefix, atol=1e-5, rtol=1e-4)


def test_alti_of_a_deeper_model_equals_the_paper_too():
    model = make_tiny_model(seed=3, n_encoder_layers=3, n_decoder_layers=3, n_heads=2).model
    src, tgt_in = torch.tensor([SOURCE[:3]]), torch.tensor([[Vocab.bos_id, 9, 10]])
    result = alti(model, model.trace(src, tgt_in))
    source, prefix = paper_alti(run_by_hand(model, SOURCE[:3], [Vocab.bos_id, 9, 10]))
    torch.testing.assert_close(result.source[0], source, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(result.prefix[0], prefix, atol=1e-5, rtol=1e-4)


def test_the_block_resultant_is_the_sum_of_its_contributors(tiny_model, pair):
    """The decomposition is exact: the recorded block output is Σ_j T_i(x_j) + b_O (pre-LN: nothing linearised)."""
    model = tiny_model.model
    block = model.trace(*pair).encoder[0].blocks["encoder"]
    from model.norms import transformed_values

    moved = torch.einsum("bhqk,bhkd->bqd", block.weights, transformed_values(block.v, model.encoder_layers[0].self_attn.out_proj))
    torch.testing.assert_close(block.residual_out, block.residual_in + moved + model.encoder_layers[0].self_attn.out_proj.bias)
