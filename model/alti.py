"""ALTI+ for the built-in transformer: how much each source and target-prefix token contributes to each
produced token (Ferrando, Gállego, Alastruey, Escolano & Costa-jussà 2022, "Towards Opening the Black Box of
Neural Machine Translation: Source and Target Contributions in the Prediction Process", EMNLP; reference code
mt-upc/transformer-contributions-nmt, wrappers/transformer_wrapper.py). Read from one Seq2SeqTransformer.trace().

One attention block, layer-wise (ALTI, Ferrando et al. 2022 "Measuring the Mixing of Contextual Information in
the Transformer"). The block's output for query i is a sum of one vector per input token j:

    y_i = Σ_j T_i(x_j) + b_O,    T_i(x_j) = Σ_h α^h_ij f^h(x_j)  [+ x_i when j = i: the residual]

with f^h as in model/norms.py. Token j's contribution is how close T_i(x_j) is to y_i in L1 distance, with the
"min-sum" normalisation of the reference code (normalize_contrib, mode "min_sum" given the resultant's norm):

    c_ij = max(0, ‖y_i‖₁ − ‖y_i − T_i(x_j)‖₁) / Σ_k max(0, ‖y_i‖₁ − ‖y_i − T_i(x_k)‖₁)

Self-attention blocks (encoder, decoder) have the residual on the diagonal. A cross-attention block's residual
is the decoder's own stream, kept as one more contributor beside the source tokens (the reference code
concatenates it as an extra value vector): its share goes to the target prefix.

Composition (the reference's get_contribution_rollout): the encoder's layer maps are multiplied, R = C_L … C_1,
so a memory token is a mixture of source tokens. In decoder layer l the self-attention block feeds the
cross-attention block's residual, so the layer's contributions are [cross source columns · R | self map ·
residual share]; across decoder layers a prefix column is expanded into the previous layer's contributions
while source columns add directly, each row renormalised to sum to 1:

    source_l = Cs_l R + P_l source_{l-1},   prefix_l = P_l prefix_{l-1}

Pre-LN here, post-LN in the paper. The paper's NMT models are post-LN, y_i = LN(Σ_j T_i(x_j) + b_O), so it
linearises the LayerNorm (centring and γ applied per vector, divided by the standard deviation of the whole sum)
to split its output into per-token parts. This model normalises before each block (model/transformer.py): the
LayerNorm acts on each token's own vector before any mixing, inside f^h(x_j) = (LN(x_j) W_V^h + b_V^h) W_O^h,
and the block's output is the un-normalised residual sum. So T_i(x_j) is exact, there is nothing to linearise,
and contributions are measured on the residual stream (AttentionTrace.residual_out), as the reference code does
for pre-LN fairseq models (its pre_layer_norm branch). As in the paper, the feed-forward blocks and the final
encoder_norm / decoder_norm act on each token alone and are not modelled: they mix nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from model.norms import transformed_values
from model.transformer import AttentionTrace, ForwardTrace, MultiHeadAttention, Seq2SeqTransformer


@dataclass
class AltiContributions:
    encoder: Tensor  # (B, L, S, S) each encoder self-attention block's contributions
    decoder: Tensor  # (B, L, T, T) each decoder self-attention block's; columns the decoder inputs
    cross: Tensor  # (B, L, T, S) each cross-attention block's source contributions
    cross_residual: Tensor  # (B, L, T) … and its decoder residual stream's share (cross + it sum to 1)
    source: Tensor  # (B, T, S) composed through every layer: each source token's contribution to each produced token
    prefix: Tensor  # (B, T, T) each decoder input's (source + prefix sum to 1 per row)


def _normalise(contributions: Tensor) -> Tensor:
    return contributions / contributions.sum(-1, keepdim=True).clamp_min(torch.finfo(contributions.dtype).tiny)


def block_contributions(block: AttentionTrace, attention: MultiHeadAttention, self_attention: bool) -> Tensor:
    """One block's layer-wise contributions: (B, Tq, Tk) for self-attention, (B, Tq, Tk + 1) for cross-attention
    (the last column: the residual stream)."""
    transformed = transformed_values(block.v, attention.out_proj)
    moved = torch.einsum("bhqk,bhkd->bqkd", block.weights, transformed)  # (B, Tq, Tk, D)
    residual = block.residual_in[:, :, None, :]  # (B, Tq, 1, D)
    if self_attention:
        eye = torch.eye(moved.size(1), device=moved.device, dtype=moved.dtype)[None, :, :, None]  # (1, Tq, Tk, 1)
        vectors = moved + eye * residual  # T_i(x_j)
    else:
        vectors = torch.cat([moved, residual], dim=2)
    resultant = block.residual_out[:, :, None, :]  # y_i = Σ_j T_i(x_j) + b_O, (B, Tq, 1, D)
    distance = (resultant - vectors).abs().sum(-1)  # (B, Tq, Tk[+1])
    return _normalise((resultant.abs().sum(-1) - distance).clamp(min=0))


def alti(model: Seq2SeqTransformer, trace: ForwardTrace) -> AltiContributions:
    """ALTI+ of one teacher-forced pass (run model.trace() in eval mode)."""
    encoder = [
        block_contributions(layer.blocks["encoder"], module.self_attn, True)
        for layer, module in zip(trace.encoder, model.encoder_layers, strict=True)
    ]
    rolled = encoder[0]
    for layer in encoder[1:]:
        rolled = layer @ rolled  # (B, S, S) memory tokens as mixtures of source tokens
    n_source = trace.memory.size(1)
    decoder, cross, residual = [], [], []
    source = prefix = None
    for layer, module in zip(trace.decoder, model.decoder_layers, strict=True):
        own = block_contributions(layer.blocks["decoder"], module.self_attn, True)  # (B, T, T)
        mixed = block_contributions(layer.blocks["cross"], module.cross_attn, False)  # (B, T, S + 1)
        decoder.append(own)
        cross.append(mixed[..., :n_source])
        residual.append(mixed[..., n_source])
        layer_source = mixed[..., :n_source] @ rolled  # (B, T, S)
        layer_prefix = own * mixed[..., n_source:]  # (B, T, T): the self block is the cross block's residual
        if source is None:
            source, prefix = layer_source, layer_prefix
        else:
            source, prefix = layer_source + layer_prefix @ source, layer_prefix @ prefix
        total = source.sum(-1, keepdim=True) + prefix.sum(-1, keepdim=True)
        source, prefix = source / total, prefix / total
    return AltiContributions(
        encoder=torch.stack(encoder, 1),
        decoder=torch.stack(decoder, 1),
        cross=torch.stack(cross, 1),
        cross_residual=torch.stack(residual, 1),
        source=source,
        prefix=prefix,
    )
