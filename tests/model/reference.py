"""The built-in transformer run by hand from its parameters, for tests that check a method against an
independent recomputation: plain per-head loops over F.linear and F.layer_norm, not model/transformer.py's
attention code."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from model.transformer import MultiHeadAttention, Seq2SeqTransformer


@dataclass
class Block:
    """One attention block of one sentence (no batch axis)."""

    residual_in: Tensor  # (Tq, D)
    values_in: Tensor  # (Tk, D) what values are made from
    weights: Tensor  # (H, Tq, Tk)
    transformed: Tensor  # (H, Tk, D) f^h(x_j) = (x_j W_V^h + b_V^h) W_O^h
    residual_out: Tensor  # (Tq, D)


def _attend(attention: MultiHeadAttention, residual: Tensor, queries_in: Tensor, values_in: Tensor, causal: bool) -> Block:
    d = residual.size(-1)
    n_heads = attention.n_heads
    d_k = d // n_heads
    weights, transformed = [], []
    out = attention.out_proj.bias.clone()
    for h in range(n_heads):
        rows = slice(h * d_k, (h + 1) * d_k)
        q = F.linear(queries_in, attention.q_proj.weight[rows], attention.q_proj.bias[rows])
        k = F.linear(values_in, attention.k_proj.weight[rows], attention.k_proj.bias[rows])
        v = F.linear(values_in, attention.v_proj.weight[rows], attention.v_proj.bias[rows])
        scores = q @ k.T / math.sqrt(d_k)
        if causal:
            scores = scores.masked_fill(torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf"))
        alpha = scores.softmax(-1)  # (Tq, Tk)
        f = v @ attention.out_proj.weight[:, rows].T  # (Tk, D)
        weights.append(alpha)
        transformed.append(f)
        out = out + alpha @ f
    return Block(residual, values_in, torch.stack(weights), torch.stack(transformed), residual + out)


def _norm(module, x: Tensor) -> Tensor:
    return F.layer_norm(x, module.normalized_shape, module.weight, module.bias, module.eps)


@torch.no_grad()
def run_by_hand(model: Seq2SeqTransformer, src: list[int], tgt_in: list[int]) -> dict[str, list[Block]]:
    """Every attention block of one sentence pair, by kind, in layer order (eval mode, no politeness)."""
    d = model.cfg.d_model
    x = model.src_embed.tokens.weight[src] * math.sqrt(d) + model.src_embed.table[: len(src)]
    blocks: dict[str, list[Block]] = {"encoder": [], "decoder": [], "cross": []}
    for layer in model.encoder_layers:
        h = _norm(layer.self_attn_norm, x)
        block = _attend(layer.self_attn, x, h, h, causal=False)
        blocks["encoder"].append(block)
        x = block.residual_out
        x = x + layer.ff(_norm(layer.ff_norm, x))
    memory = _norm(model.encoder_norm, x)
    y = model.tgt_embed.tokens.weight[tgt_in] * math.sqrt(d) + model.tgt_embed.table[: len(tgt_in)]
    for layer in model.decoder_layers:
        h = _norm(layer.self_attn_norm, y)
        own = _attend(layer.self_attn, y, h, h, causal=True)
        cross = _attend(layer.cross_attn, own.residual_out, _norm(layer.cross_attn_norm, own.residual_out), memory, causal=False)
        blocks["decoder"].append(own)
        blocks["cross"].append(cross)
        y = cross.residual_out
        y = y + layer.ff(_norm(layer.ff_norm, y))
    return blocks
