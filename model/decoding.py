"""Greedy and beam-search decoding, and the teacher-forced pass that collects every attention map.

Maps are collected the tensor2tensor way: decode first, then run one teacher-forced pass over the
produced tokens. Because the decoder is causal, each row of that pass equals the row computed at
the matching step of decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from model.transformer import Seq2SeqTransformer
from model.vocab import Vocab


@dataclass
class AttentionMaps:
    """Every attention map of one (source, target) pair, for every layer and head.

    encoder: (L, H, S, S)  rows and columns are `source` positions.
    decoder: (L, H, T, T)  masked self-attention: row t is labelled by the token *produced* at
                           position t (target[t]); columns by the decoder *inputs* (<s>, target[:-1]).
                           Entries above the diagonal are exactly 0.
    cross:   (L, H, T, S)  rows labelled like `decoder`, columns by `source`.
    """

    encoder: Tensor
    decoder: Tensor
    cross: Tensor


@dataclass
class Hypothesis:
    ids: list[int]  # produced target ids, ending with </s> unless cut by the length limit
    score: float  # length-penalised log-probability (beam) or plain log-probability (greedy)


def next_token_logprobs(logits: Tensor) -> Tensor:
    """(…, V) logits of the last position -> log-probabilities over the tokens a translation may hold.

    <pad> and <s> are never produced, and neither is <unk>: it stands for the training corpus's
    rare words, so the model learns to reach for it whenever unsure, and it tells a reader nothing.
    Without it the model must pick a real word (`this is an example .` gives 例, not <unk>).
    """
    logits = logits.clone()
    logits[..., [Vocab.pad_id, Vocab.unk_id, Vocab.bos_id]] = float("-inf")
    return logits.log_softmax(-1)


def max_target_length(src_len: int, limit: int | None) -> int:
    # Japanese sentences in the corpus run about 1.5× their English source; leave ample room.
    natural = 2 * src_len + 10
    return natural if limit is None else min(natural, limit)


@torch.no_grad()
def greedy_decode(
    model: Seq2SeqTransformer, src: Tensor, max_length: int | None = None, politeness: Tensor | None = None
) -> list[Hypothesis]:
    """src: (B, S) ids ending with </s> (padded); politeness: (B,) ids for a model with politeness
    control. Returns one hypothesis per sentence."""
    model.eval()
    b = src.size(0)
    memory, _ = model.encode(src)
    steps = max_target_length(src.size(1), max_length)
    ys = torch.full((b, 1), Vocab.bos_id, dtype=torch.long, device=src.device)
    scores = torch.zeros(b, device=src.device)
    finished = torch.zeros(b, dtype=torch.bool, device=src.device)
    for _ in range(steps):
        logits, _, _ = model.decode(ys, memory, src, politeness)
        logp = next_token_logprobs(logits[:, -1])
        next_id = logp.argmax(-1)
        scores += torch.where(finished, 0.0, logp.gather(1, next_id[:, None]).squeeze(1))
        next_id = torch.where(finished, Vocab.pad_id, next_id)
        ys = torch.cat([ys, next_id[:, None]], dim=1)
        finished |= next_id == Vocab.eos_id
        if finished.all():
            break
    out = []
    for row, score in zip(ys[:, 1:].tolist(), scores.tolist(), strict=True):
        ids = [i for i in row if i != Vocab.pad_id]
        if Vocab.eos_id in ids:
            ids = ids[: ids.index(Vocab.eos_id) + 1]
        out.append(Hypothesis(ids, score))
    return out


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ((5 + length) / 6) ** alpha."""
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(
    model: Seq2SeqTransformer,
    src: Tensor,
    beam_size: int,
    max_length: int | None = None,
    alpha: float = 0.6,
    n_best: int = 1,
    politeness: Tensor | None = None,
) -> list[Hypothesis]:
    """src: (1, S), politeness: (1,) for a model with politeness control. Returns up to `n_best`
    hypotheses, best first, scored by log p / length_penalty."""
    model.eval()
    memory, _ = model.encode(src)
    steps = max_target_length(src.size(1), max_length)
    beams = torch.full((1, 1), Vocab.bos_id, dtype=torch.long, device=src.device)  # (K, t)
    beam_logp = torch.zeros(1, device=src.device)  # (K,)
    finished: list[Hypothesis] = []
    for step in range(1, steps + 1):
        k = beams.size(0)
        logits, _, _ = model.decode(
            beams, memory.expand(k, -1, -1), src.expand(k, -1), None if politeness is None else politeness.expand(k)
        )
        cand = (beam_logp[:, None] + next_token_logprobs(logits[:, -1])).view(-1)  # (K·V,)
        top_logp, top = cand.topk(min(2 * beam_size, cand.numel()))
        vocab_size = logits.size(-1)
        next_beams, next_logp = [], []
        for rank, (logp, flat) in enumerate(zip(top_logp.tolist(), top.tolist(), strict=True)):
            origin, token = divmod(flat, vocab_size)
            if token == Vocab.eos_id:
                # As in fairseq: an ending counts only if it ranks among the top `beam_size`.
                if rank < beam_size:
                    finished.append(Hypothesis(beams[origin, 1:].tolist() + [token], logp / length_penalty(step, alpha)))
            elif len(next_beams) < beam_size:
                next_beams.append(beams[origin].tolist() + [token])
                next_logp.append(logp)
        if len(finished) >= beam_size:
            break
        beams = torch.tensor(next_beams, device=src.device)
        beam_logp = torch.tensor(next_logp, device=src.device)
    if len(finished) < n_best:  # the length limit cut the rest short
        finished += [
            Hypothesis(b[1:], lp / length_penalty(len(b) - 1, alpha))
            for b, lp in zip(beams.tolist(), beam_logp.tolist(), strict=True)
        ]
    return sorted(finished, key=lambda h: h.score, reverse=True)[:n_best]


@torch.no_grad()
def forced_attention(
    model: Seq2SeqTransformer, src: Tensor, target_ids: list[int], politeness: Tensor | None = None
) -> tuple[AttentionMaps, Tensor]:
    """One teacher-forced pass of `target_ids` (produced tokens, usually ending with </s>).

    src: (1, S), politeness: (1,) for a model with politeness control. Returns the maps and the
    per-position log-probabilities of target_ids (T,).
    """
    model.eval()
    tgt_in = torch.tensor([[Vocab.bos_id, *target_ids[:-1]]], device=src.device)  # (1, T)
    memory, enc = model.encode(src)
    logits, dec, cross = model.decode(tgt_in, memory, src, politeness)
    logp = logits[0].log_softmax(-1).gather(1, torch.tensor(target_ids, device=src.device)[:, None]).squeeze(1)
    maps = AttentionMaps(
        encoder=torch.stack(enc, 1)[0].cpu(),  # (L, H, S, S)
        decoder=torch.stack(dec, 1)[0].cpu(),  # (L, H, T, T)
        cross=torch.stack(cross, 1)[0].cpu(),  # (L, H, T, S)
    )
    return maps, logp.cpu()
