"""The norm-based view of attention (Kobayashi et al. 2020, "Attention is Not Only a Weight: Analyzing
Transformers with Vector Norms", EMNLP).

A head does not move α_ij into query i: it moves the vector α_ij f(x_j). A large weight on a token whose
transformed vector is small moves little, so the paper measures

    per head h (eq. 5):   ‖α^h_ij f^h(x_j)‖,   f^h(x) = (x W_V^h + b_V^h) W_O^h
    the layer (eq. 6):    ‖Σ_h α^h_ij f^h(x_j)‖

where W_O^h are the rows of W_O that take head h's output, so Σ_h Σ_j α^h_ij f^h(x_j) + b_O is the block's
output. b_O belongs to no token and is left out, as in the paper. The layer's map is the norm of what the
heads move together (not the sum of their norms: heads can cancel). Rows are not normalised: a row's
total says how much the block moves into that query, which is the point of the measure.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def transformed_values(values: Tensor, out_proj: nn.Linear) -> Tensor:
    """f^h(x_j) of every head and key: values (B, H, Tk, d_k), x_j W_V^h + b_V^h as a head computed them
    -> (B, H, Tk, D)."""
    _, n_heads, _, d_k = values.shape
    w_o = out_proj.weight.view(out_proj.out_features, n_heads, d_k)  # (D, H, d_k): nn.Linear computes x Wᵀ
    return torch.einsum("bhkc,dhc->bhkd", values, w_o)


def norm_maps(weights: Tensor, values: Tensor, out_proj: nn.Linear) -> tuple[Tensor, Tensor]:
    """weights (B, H, Tq, Tk), values as transformed_values() takes them -> (per head ‖α^h_ij f^h(x_j)‖ =
    α^h_ij ‖f^h(x_j)‖ (α ≥ 0) (B, H, Tq, Tk), the layer's ‖Σ_h α^h_ij f^h(x_j)‖ (B, Tq, Tk)).

    The layer's norm comes from the heads' Gram matrix G_j = [f^h(x_j) · f^g(x_j)]_{h,g}:
    ‖Σ_h α^h_ij f^h(x_j)‖² = Σ_{h,g} α^h_ij α^g_ij G_j[h, g], in float64, which never forms the
    (Tq, Tk, D) vectors themselves (a tenth of the time of summing them)."""
    transformed = transformed_values(values, out_proj).double()  # (B, H, Tk, D)
    gram = torch.einsum("bhkd,bgkd->bkhg", transformed, transformed)  # (B, Tk, H, H)
    alpha = weights.double()
    per_head = alpha * gram.diagonal(dim1=-2, dim2=-1).sqrt().permute(0, 2, 1)[:, :, None, :]  # (B, H, Tq, Tk)
    squared = torch.einsum("bhqk,bgqk,bkhg->bqk", alpha, alpha, gram)
    return per_head.to(weights.dtype), squared.clamp_min(0).sqrt().to(weights.dtype)


def additive_norms(weights: Tensor, memory: Tensor) -> Tensor:
    """The same view for the RNN's attention (model/rnn.py), whose context c_i = Σ_j α_ij h_j takes the
    annotations h_j as they are: there is no value or output projection, so f is the identity and the
    measure is ‖α_ij h_j‖ = α_ij ‖h_j‖. weights: (B, 1, T, S), memory: (B, S, D) -> (B, 1, T, S); with one
    head the layer's map is the same."""
    return weights * memory.norm(dim=-1)[:, None, None, :]
