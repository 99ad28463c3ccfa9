"""Gradient saliency: how much each source and target-prefix token embedding moves the log-probability of each
produced token, with Captum (Kokhlikyan et al. 2020), the field's library for it, as LIT, Ecco and Inseq use it.

For produced token t the function is f_t = log p(y_t | source, y_<t) of the teacher-forced pass, differentiated
with respect to the token embeddings (the token part, before positions are added: a token's attribution is
about which token it is, not where). Either

    integrated_gradients  Captum's IntegratedGradients (Sundararajan et al. 2017) from a zero-embedding baseline
                          (the embedding of <pad>: no token, same positions), n_steps = steps; completeness:
                          the attributions of a row sum to f_t(x) − f_t(baseline);
    input_x_gradient      Captum's InputXGradient: x ⊙ ∂f_t/∂x.

Each token's attribution vector is reduced to its L2 norm, so a row holds |attribution| per source token and per
decoder input; decoder inputs after t get exactly 0 (the decoder is causal). Rows are not normalised.

All T produced tokens are attributed at once: the sentence is repeated T times along the batch and row t asks
for f_t, so Captum's one call computes every row; the output layer runs only at each row's own position.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from backends.interface import DEFAULT_SALIENCY, SaliencyOptions, StopCheck, never_stop

# Rows × tokens one forward-backward chunk of integrated gradients holds at most (Captum's internal_batch_size).
TOKENS_PER_CHUNK = 32768


class Attributable(Protocol):
    """What saliency needs of a network (the transformer and the RNN both have it)."""

    def token_vectors(self, src: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor]: ...

    def logits_from_token_vectors(
        self,
        src: Tensor,
        tgt_in: Tensor,
        source_vectors: Tensor,
        target_vectors: Tensor,
        politeness: Tensor | None = None,
        positions: Tensor | None = None,
    ) -> Tensor: ...


def attributions(
    model: Attributable,
    src: Tensor,
    tgt_in: Tensor,
    target_ids: list[int],
    politeness: Tensor | None = None,
    options: SaliencyOptions = DEFAULT_SALIENCY,
    stop: StopCheck = never_stop,
) -> tuple[Tensor, Tensor]:
    """Captum's attributions of each produced token's log-probability: src (1, S), tgt_in (1, T) the decoder
    inputs, target_ids the T produced ids -> (source (T, S, D), prefix (T, T, D)), row t for produced token t."""
    from captum.attr import InputXGradient, IntegratedGradients

    count = tgt_in.size(1)
    rows = dict(src=src.expand(count, -1), tgt_in=tgt_in.expand(count, -1))
    repeated_politeness = None if politeness is None else politeness.expand(count)
    positions = torch.arange(count, device=src.device)  # row t is about produced token t
    with torch.no_grad():
        source_vectors, target_vectors = (v.expand(count, -1, -1).contiguous() for v in model.token_vectors(src, tgt_in))

    def log_probs(source_vectors: Tensor, target_vectors: Tensor, src: Tensor, tgt_in: Tensor, politeness, positions) -> Tensor:
        stop()  # once per chunk of Captum's batch
        logits = model.logits_from_token_vectors(src, tgt_in, source_vectors, target_vectors, politeness, positions)
        return logits.log_softmax(-1)  # (B, V): each row at its own position

    inputs = (source_vectors.requires_grad_(), target_vectors.requires_grad_())
    arguments = (rows["src"], rows["tgt_in"], repeated_politeness, positions)
    targets = list(target_ids)  # row t: log p(y_t)
    # cuDNN computes no RNN gradients in eval mode; its kernels are only a speed-up here.
    with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
        if options.algorithm == "integrated_gradients":
            per_row = src.size(1) + count
            result = IntegratedGradients(log_probs).attribute(
                inputs,
                baselines=tuple(torch.zeros_like(v) for v in inputs),
                target=targets,
                additional_forward_args=arguments,
                n_steps=options.steps,
                internal_batch_size=max(count, TOKENS_PER_CHUNK // per_row),
            )
        else:
            result = InputXGradient(log_probs).attribute(inputs, target=targets, additional_forward_args=arguments)
    return result[0].detach(), result[1].detach()


def saliency(
    model: Attributable,
    src: Tensor,
    tgt_in: Tensor,
    target_ids: list[int],
    politeness: Tensor | None = None,
    options: SaliencyOptions = DEFAULT_SALIENCY,
    stop: StopCheck = never_stop,
) -> tuple[Tensor, Tensor]:
    """The L2 norm of each token's attribution: (source (T, S), prefix (T, T)); arguments as attributions()."""
    source, prefix = attributions(model, src, tgt_in, target_ids, politeness, options, stop)
    return source.norm(dim=-1), prefix.norm(dim=-1)
