"""Greedy and beam-search decoding, and the teacher-forced pass that collects every attention map.

Maps are collected the tensor2tensor way: decode first, then run one teacher-forced pass over the
produced tokens. Because the decoder is causal, each row of that pass equals the row computed at
the matching step of decoding.

Decoding itself runs incrementally (EncoderDecoder.decode_step): each step feeds only the newest
token and reuses the state of the earlier ones (the transformer's cached keys and values, the RNN's
hidden state), so a step costs one position, not the whole prefix.

Everything here is written against `EncoderDecoder`, what decoding needs of a network; the
transformer (model/transformer.py) and the RNN (model/rnn.py) both provide it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from backends.interface import StopCheck, never_stop
from model.gates import HeadGates
from model.vocab import Vocab


class DecodingState(Protocol):
    def select(self, rows: Tensor) -> DecodingState:
        """The state of the batch rows `rows` (B',), e.g. the beams that survive a step."""
        ...


class EncoderDecoder(Protocol):
    def eval(self) -> EncoderDecoder:
        """Inference mode (no dropout), as torch.nn.Module has it."""
        ...

    def encode(self, src: Tensor, gates: HeadGates | None = None) -> tuple[Tensor, list[Tensor]]:
        """src: (B, S) -> (memory (B, S, D), per-layer encoder self-attention [(B, H, S, S)], [] if it has none)."""
        ...

    def decode(
        self, tgt_in: Tensor, memory: Tensor, src: Tensor, politeness: Tensor | None = None, gates: HeadGates | None = None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Teacher-forced -> (logits (B, T, V), decoder self-attention [(B, H, T, T)] or [], cross [(B, H, T, S)])."""
        ...

    def start_decoding(self, memory: Tensor, src: Tensor, gates: HeadGates | None = None) -> DecodingState:
        """The state decode_step advances; every step runs under `gates` (model.gates)."""
        ...

    def decode_step(self, last_ids: Tensor, state: DecodingState, politeness: Tensor | None = None) -> Tensor:
        """last_ids: (B,) -> logits (B, V) of the next token; advances `state` by one position."""
        ...


# What EncoderDecoder.encode returns: memory (B, S, D) and per-layer self-attention weights (none for an RNN).
Encoded = tuple[Tensor, list[Tensor]]


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
    model: EncoderDecoder,
    src: Tensor,
    max_length: int | None = None,
    politeness: Tensor | None = None,
    encoded: Encoded | None = None,
    stop: StopCheck = never_stop,
    gates: HeadGates | None = None,
) -> list[Hypothesis]:
    """src: (B, S) ids ending with </s> (padded); politeness: (B,) ids for a model with politeness
    control; encoded: model.encode(src, gates), where the caller has already run it; stop is called before
    every step and raises to end the call; gates: heads switched off (model.gates). Returns one hypothesis
    per sentence."""
    model.eval()
    b = src.size(0)
    memory, _ = encoded or model.encode(src, gates)
    steps = max_target_length(src.size(1), max_length)
    state = model.start_decoding(memory, src, gates)
    ys = torch.full((b, 1), Vocab.bos_id, dtype=torch.long, device=src.device)
    scores = torch.zeros(b, device=src.device)
    finished = torch.zeros(b, dtype=torch.bool, device=src.device)
    for _ in range(steps):
        stop()
        logp = next_token_logprobs(model.decode_step(ys[:, -1], state, politeness))
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
    model: EncoderDecoder,
    src: Tensor,
    beam_size: int,
    max_length: int | None = None,
    alpha: float = 0.6,
    n_best: int = 1,
    politeness: Tensor | None = None,
    encoded: Encoded | None = None,
    stop: StopCheck = never_stop,
    gates: HeadGates | None = None,
) -> list[list[Hypothesis]]:
    """src: (B, S) ids ending with </s> (padded); politeness: (B,) ids for a model with politeness
    control; encoded: model.encode(src, gates), where the caller has already run it; stop is called before
    every step and raises to end the call; gates: heads switched off, shared by the batch. Returns, per
    sentence, up to `n_best` hypotheses, best first, scored by log p / length_penalty. The
    sentences' beams are decoded together, K = beam_size rows each."""
    model.eval()
    b, k = src.size(0), beam_size
    memory, _ = encoded or model.encode(src, gates)
    rows = torch.arange(b, device=src.device).repeat_interleave(k)  # (B·K,) the sentence of each beam row
    state = model.start_decoding(memory[rows], src[rows], gates)
    politeness_rows = None if politeness is None else politeness[rows]
    limits = [max_target_length(int(n), max_length) for n in (src != Vocab.pad_id).sum(1).tolist()]
    beams = torch.full((b * k, 1), Vocab.bos_id, dtype=torch.long, device=src.device)  # (B·K, t)
    # Every sentence starts from one live beam: the other K - 1 rows wait at -inf until step 1 fills them.
    beam_logp = torch.full((b, k), float("-inf"), device=src.device)  # (B, K)
    beam_logp[:, 0] = 0.0
    finished: list[list[Hypothesis]] = [[] for _ in range(b)]
    done = [False] * b
    for step in range(1, max(limits) + 1):
        stop()
        logp = next_token_logprobs(model.decode_step(beams[:, -1], state, politeness_rows))  # (B·K, V)
        vocab_size = logp.size(-1)
        cand = (beam_logp[:, :, None] + logp.view(b, k, vocab_size)).view(b, -1)  # (B, K·V)
        top_logp, top = cand.topk(min(2 * k, cand.size(1)))  # (B, 2K)
        next_tokens = torch.full((b * k,), Vocab.pad_id, device=src.device)
        next_origin = torch.arange(b * k, device=src.device)
        next_logp = torch.full((b, k), float("-inf"), device=src.device)
        for i in range(b):
            if done[i]:
                continue
            kept = 0
            for rank, (logp, flat) in enumerate(zip(top_logp[i].tolist(), top[i].tolist(), strict=True)):
                if logp == float("-inf"):
                    break
                origin, token = divmod(flat, vocab_size)
                if token == Vocab.eos_id:
                    # As in fairseq: an ending counts only if it ranks among the top `beam_size`.
                    if rank < k:
                        prefix = beams[i * k + origin, 1:].tolist()
                        finished[i].append(Hypothesis(prefix + [token], logp / length_penalty(step, alpha)))
                elif kept < k:
                    next_origin[i * k + kept] = i * k + origin
                    next_tokens[i * k + kept] = token
                    next_logp[i, kept] = logp
                    kept += 1
            done[i] = len(finished[i]) >= k or step == limits[i]
            if step == limits[i] and len(finished[i]) < n_best:  # the length limit cut the rest short
                for j in range(kept):
                    ids = beams[next_origin[i * k + j], 1:].tolist() + [int(next_tokens[i * k + j])]
                    finished[i].append(Hypothesis(ids, next_logp[i, j].item() / length_penalty(step, alpha)))
        if all(done):
            break
        beams = torch.cat([beams[next_origin], next_tokens[:, None]], dim=1)
        state = state.select(next_origin)
        beam_logp = next_logp
    return [sorted(hyps, key=lambda h: h.score, reverse=True)[:n_best] for hyps in finished]


def decoder_inputs(target_ids: list[int], device: torch.device | str = "cpu") -> Tensor:
    """The teacher-forced decoder inputs of produced tokens `target_ids`: <s>, then target_ids[:-1] -> (1, T)."""
    return torch.tensor([[Vocab.bos_id, *target_ids[:-1]]], device=device)


@torch.no_grad()
def forced_attention(
    model: EncoderDecoder,
    src: Tensor,
    target_ids: list[int],
    politeness: Tensor | None = None,
    encoded: Encoded | None = None,
    gates: HeadGates | None = None,
) -> tuple[dict[str, Tensor], Tensor]:
    """One teacher-forced pass of `target_ids` (produced tokens, usually ending with </s>).

    src: (1, S), politeness: (1,) for a model with politeness control; encoded: model.encode(src, gates),
    where the caller has already run it; gates: heads switched off. Returns the maps by kind, labelled as backends.interface
    documents (decoder and cross rows: the token produced at each position; decoder columns: the
    inputs <s>, target[:-1]; decoder entries above the diagonal exactly 0), and the per-position
    log-probabilities of target_ids (T,).
    """
    model.eval()
    tgt_in = decoder_inputs(target_ids, src.device)  # (1, T)
    memory, enc = encoded or model.encode(src, gates)
    logits, dec, cross = model.decode(tgt_in, memory, src, politeness, gates)
    logp = logits[0].log_softmax(-1).gather(1, torch.tensor(target_ids, device=src.device)[:, None]).squeeze(1)
    layers = {"encoder": enc, "decoder": dec, "cross": cross}  # (B, H, Tq, Tk) a layer; a kind the network lacks has none
    maps = {kind: torch.stack(weights, 1)[0].cpu() for kind, weights in layers.items() if weights}  # (L, H, Tq, Tk)
    return maps, logp.cpu()
