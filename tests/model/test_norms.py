import torch

from model.methods import method_maps
from model.vocab import Vocab
from tests.conftest import make_tiny_model
from tests.model.reference import run_by_hand

SOURCE = [5, 6, 7, 8, Vocab.eos_id]
TARGET = [9, 10, 11, Vocab.eos_id]


def test_norms_equal_a_recomputation_from_the_weights(tiny_model):
    """Kobayashi et al. 2020 eq. 5 per head and eq. 6 for the layer, recomputed head by head from the parameters."""
    model = tiny_model.model
    result = method_maps(model, torch.tensor([SOURCE]), TARGET, method="norms")
    blocks = run_by_hand(model, SOURCE, [Vocab.bos_id, *TARGET[:-1]])
    for kind, layers in blocks.items():
        assert result.maps[kind].shape == (len(layers), model.cfg.n_heads, *layers[0].weights.shape[1:])
        for layer, block in enumerate(layers):
            # ‖α^h_ij f^h(x_j)‖ by explicit loops over heads, queries and keys
            heads, rows, cols = block.weights.shape
            expected = torch.zeros(heads, rows, cols)
            together = torch.zeros(rows, cols)
            for i in range(rows):
                for j in range(cols):
                    moved = [block.weights[h, i, j] * block.transformed[h, j] for h in range(heads)]
                    for h in range(heads):
                        expected[h, i, j] = moved[h].norm()
                    together[i, j] = torch.stack(moved).sum(0).norm()
            torch.testing.assert_close(result.maps[kind][layer], expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(result.layer_maps[kind][layer], together, atol=1e-5, rtol=1e-5)


def test_rows_are_not_normalised_and_masked_cells_are_zero(tiny_model):
    result = method_maps(tiny_model.model, torch.tensor([SOURCE]), TARGET, method="norms")
    decoder = result.layer_maps["decoder"]
    assert (decoder[..., torch.ones(4, 4, dtype=torch.bool).triu(1)] == 0).all()
    assert not torch.allclose(result.layer_maps["cross"].sum(-1), torch.ones(2, 4))


def _identity_projections(model) -> None:
    with torch.no_grad():
        layers = [*model.encoder_layers, *model.decoder_layers]
        for attention in [layer.self_attn for layer in layers]:
            attention.v_proj.weight.copy_(torch.eye(model.cfg.d_model))
            attention.v_proj.bias.zero_()
            attention.out_proj.weight.copy_(torch.eye(model.cfg.d_model))
        for layer in model.decoder_layers:
            layer.cross_attn.v_proj.weight.copy_(torch.eye(model.cfg.d_model))
            layer.cross_attn.v_proj.bias.zero_()
            layer.cross_attn.out_proj.weight.copy_(torch.eye(model.cfg.d_model))


def test_with_identity_projections_a_norm_is_the_weight_times_the_value_input_norm():
    """f(x) = x: one head's map is α_ij ‖x_j‖, x_j the LayerNorm output the values are made from."""
    model = make_tiny_model(n_heads=1).model
    _identity_projections(model)
    src, tgt_in = torch.tensor([SOURCE]), torch.tensor([[Vocab.bos_id, *TARGET[:-1]]])
    result = method_maps(model, src, TARGET, method="norms")
    trace = model.trace(src, tgt_in)
    sides = {"encoder": trace.encoder, "decoder": trace.decoder, "cross": trace.decoder}
    for kind, layers in sides.items():
        for index, layer in enumerate(layers):
            block = layer.blocks[kind]
            expected = block.weights[0, 0] * block.key_value_in[0].norm(dim=-1)[None, :]  # (Tq, Tk)
            torch.testing.assert_close(result.maps[kind][index, 0], expected, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(result.layer_maps[kind][index], expected, atol=1e-5, rtol=1e-5)


def test_with_identity_projections_each_head_sees_its_own_slice():
    model = make_tiny_model(n_heads=4).model
    _identity_projections(model)
    src, tgt_in = torch.tensor([SOURCE]), torch.tensor([[Vocab.bos_id, *TARGET[:-1]]])
    result = method_maps(model, src, TARGET, method="norms")
    block = model.trace(src, tgt_in).encoder[1].blocks["encoder"]
    slices = block.key_value_in[0].view(len(SOURCE), 4, -1).norm(dim=-1).T  # (H, S): ‖x_j restricted to head h‖
    torch.testing.assert_close(result.maps["encoder"][1], block.weights[0] * slices[:, None, :], atol=1e-5, rtol=1e-5)


def test_rnn_norms_are_the_weights_times_the_annotation_norms():
    from tests.conftest import make_tiny_rnn

    model = make_tiny_rnn().model
    src = torch.tensor([SOURCE])
    weights = method_maps(model, src, TARGET).maps["cross"]
    result = method_maps(model, src, TARGET, method="norms")
    annotations = model.encode(src)[0][0].detach()  # (S, D)
    torch.testing.assert_close(result.maps["cross"][0, 0], weights[0, 0] * annotations.norm(dim=-1)[None, :])
    torch.testing.assert_close(result.layer_maps["cross"][0], result.maps["cross"][0, 0])
