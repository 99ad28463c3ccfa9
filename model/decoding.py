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

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
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
    training: bool  # as torch.nn.Module has it

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
    # The closest call decoding made: the smallest gap, in log-probability, between a choice and the runner-up
    # (greedy: the chosen token and the next best; beam: neighbouring candidates among those ranked each step and
    # the hypotheses ranked at the end). A batch computes logits a little differently from a sentence alone
    # (padding, other matrix shapes), so only a margin wider than that difference makes the same choices.
    margin: float = math.inf


# What decoding is given as stop checks: one for the whole call (it raises, and the call ends), or one per sentence
# (a sentence whose check raises is dropped, and that exception stands in its result; the others go on).
Stops = StopCheck | Sequence[StopCheck]


def next_token_logprobs(logits: Tensor) -> Tensor:
    """(…, V) logits of the last position -> log-probabilities over the tokens a translation may hold.

    <pad> and <s> are never produced, and neither is <unk>: it stands for the training corpus's
    rare words, so the model learns to reach for it whenever unsure, and it tells a reader nothing.
    Without it the model must pick a real word (`this is an example .` gives 例, not <unk>).
    """
    return (logits + _banned(logits.size(-1), logits.device)).log_softmax(-1)


@functools.cache
def _banned(vocab_size: int, device: torch.device) -> Tensor:
    """(V,) -inf at the tokens a translation never holds, 0 elsewhere: adding it keeps every other logit's bits
    (x + 0 = x), in one operation a step instead of a copy and a scatter."""
    banned = torch.zeros(vocab_size, device=device)
    banned[[Vocab.pad_id, Vocab.unk_id, Vocab.bos_id]] = float("-inf")
    return banned


def max_target_length(src_len: int, limit: int | None) -> int:
    # Japanese sentences in the corpus run about 1.5× their English source; leave ample room.
    natural = 2 * src_len + 10
    return natural if limit is None else min(natural, limit)


def _limits(src: Tensor, max_length: int | None | Sequence[int | None]) -> list[int]:
    """Each sentence's step limit, from its own length (not the padded one), so a sentence decodes alike in any batch."""
    lengths = (src != Vocab.pad_id).sum(1).tolist()
    per_row = max_length if isinstance(max_length, Sequence) else [max_length] * len(lengths)
    return [max_target_length(n, limit) for n, limit in zip(lengths, per_row, strict=True)]


class _RowStops:
    """The stop checks of a batch: check() calls the whole-call check, or each live sentence's own, and returns
    the sentences it dropped; their exceptions are kept in `errors`."""

    def __init__(self, stop: Stops, b: int):
        self.whole = None if isinstance(stop, Sequence) else stop
        self.rows = None if self.whole else list(stop)
        if self.rows is not None and len(self.rows) != b:
            raise ValueError(f"{len(self.rows)} stop checks for {b} sentences")
        self.errors: dict[int, Exception] = {}

    def check(self, live: Sequence[int]) -> list[int]:
        if self.whole is not None:
            self.whole()
            return []
        dropped = []
        for i in live:
            try:
                self.rows[i]()
            except Exception as exc:  # this sentence's client went or its time is up: the others go on
                self.errors[i] = exc
                dropped.append(i)
        return dropped


def evaluating(model: EncoderDecoder) -> None:
    """Eval mode (no dropout) for decoding; a model already in it is left as it is, since eval() walks every
    module (about 1.3 ms for the shipped model, twice a request)."""
    if model.training:
        model.eval()


@torch.inference_mode()
def greedy_decode(
    model: EncoderDecoder,
    src: Tensor,
    max_length: int | None | Sequence[int | None] = None,
    politeness: Tensor | None = None,
    encoded: Encoded | None = None,
    stop: Stops = never_stop,
    gates: HeadGates | None = None,
) -> list[Hypothesis | Exception]:
    """src: (B, S) ids ending with </s> (padded); max_length: one limit, or one per sentence; politeness: (B,) ids
    for a model with politeness control; encoded: model.encode(src, gates), where the caller has already run it; stop
    is called before every step (Stops); gates: heads switched off (model.gates). Returns one hypothesis per
    sentence, or the exception that dropped it.

    Each sentence stops at its own </s> or length limit and then leaves the batch, so a batch costs what its
    unfinished sentences need."""
    evaluating(model)
    b = src.size(0)
    memory, _ = encoded or model.encode(src, gates)
    limits = _limits(src, max_length)
    stops = _RowStops(stop, b)
    state = model.start_decoding(memory, src, gates)
    live = list(range(b))  # the sentence of each batch row
    last = torch.full((b,), Vocab.bos_id, dtype=torch.long, device=src.device)
    scores = torch.zeros(b, device=src.device)  # (b',) the log-probability so far of each batch row's sentence
    produced: list[list[int]] = [[] for _ in range(b)]
    margins = [math.inf] * b
    out: list[Hypothesis | Exception | None] = [None] * b
    while True:
        alive = [i for i in live if out[i] is None]  # without the sentences that ended at the last step
        for i in stops.check(alive) if alive else ():
            out[i] = stops.errors[i]
        keep = [row for row, i in enumerate(live) if out[i] is None]
        if not keep:
            break
        if len(keep) < len(live):  # ended or dropped sentences leave the batch
            rows = torch.tensor(keep, device=src.device)
            state, last, scores = state.select(rows), last[rows], scores[rows]
            politeness = None if politeness is None else politeness[rows]
            live = [live[row] for row in keep]
        logp = next_token_logprobs(model.decode_step(last, state, politeness))  # (b', V)
        last = logp.argmax(-1)  # (b',)
        best_two = logp.topk(2, -1).values  # (b', 2): the chosen token's log-probability, then the runner-up's
        scores += best_two[:, 0]
        for row, (i, token, (best, second)) in enumerate(zip(live, last.tolist(), best_two.tolist(), strict=True)):
            produced[i].append(token)
            margins[i] = min(margins[i], best - second)
            if token == Vocab.eos_id or len(produced[i]) == limits[i]:
                out[i] = Hypothesis(produced[i], float(scores[row]), margins[i])
    return out


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty ((5 + length) / 6) ** alpha."""
    return ((5 + length) / 6) ** alpha


def _closest(ranked: list[float]) -> float:
    """The smallest gap between neighbours of descending finite values (inf when fewer than two)."""
    finite = [value for value in ranked if value != float("-inf")]
    return min((a - b for a, b in pairwise(finite)), default=math.inf)


def _beam_margin(values: list[float], flat: list[int], k: int, vocab_size: int) -> float:
    """How close one sentence's beam step came to another outcome: values (descending) and flat indices of its top
    2K + 1 candidates. A step keeps the first K candidates that are not </s>, and takes a </s> ranked above K: only
    the gaps across those two boundaries decide it, not the order within them."""
    ranked = [(v, f % vocab_size == Vocab.eos_id) for v, f in zip(values, flat, strict=True) if v != float("-inf")]
    margin = math.inf
    kept = [v for v, eos in ranked if not eos]
    if len(kept) > k:
        margin = kept[k - 1] - kept[k]
    if len(ranked) > k:
        above, below = ranked[k - 1][0], ranked[k][0]
        for rank, (v, eos) in enumerate(ranked):
            if eos:
                margin = min(margin, v - below if rank < k else above - v)
        if len(ranked) == 2 * k + 1:  # a </s> further down could only come up past every candidate listed
            margin = min(margin, above - ranked[-1][0])
    return margin


@torch.inference_mode()
def beam_search(
    model: EncoderDecoder,
    src: Tensor,
    beam_size: int,
    max_length: int | None | Sequence[int | None] = None,
    alpha: float = 0.6,
    n_best: int = 1,
    politeness: Tensor | None = None,
    encoded: Encoded | None = None,
    stop: Stops = never_stop,
    gates: HeadGates | None = None,
) -> list[list[Hypothesis] | Exception]:
    """src: (B, S) ids ending with </s> (padded); max_length: one limit, or one per sentence; politeness: (B,) ids
    for a model with politeness control; encoded: model.encode(src, gates), where the caller has already run it; stop
    is called before every step (Stops); gates: heads switched off, shared by the batch. Returns, per
    sentence, up to `n_best` hypotheses, best first, scored by
    log p / length_penalty, or the exception that dropped it. The sentences' beams are decoded together,
    K = beam_size rows each."""
    evaluating(model)
    b, k = src.size(0), beam_size
    memory, _ = encoded or model.encode(src, gates)
    rows = torch.arange(b, device=src.device).repeat_interleave(k)  # (B·K,) the sentence of each beam row
    state = model.start_decoding(memory[rows], src[rows], gates)
    politeness_rows = None if politeness is None else politeness[rows]
    limits = _limits(src, max_length)
    stops = _RowStops(stop, b)
    beams = torch.full((b * k, 1), Vocab.bos_id, dtype=torch.long, device=src.device)  # (B·K, t)
    # Every sentence starts from one live beam: the other K - 1 rows wait at -inf until step 1 fills them.
    beam_logp = torch.full((b, k), float("-inf"), device=src.device)  # (B, K)
    beam_logp[:, 0] = 0.0
    finished: list[list[Hypothesis]] = [[] for _ in range(b)]
    margins = [math.inf] * b
    done = [False] * b
    for step in range(1, max(limits) + 1):
        for i in stops.check([i for i in range(b) if not done[i]]):
            done[i] = True
        if all(done):
            break
        logp = next_token_logprobs(model.decode_step(beams[:, -1], state, politeness_rows))  # (B·K, V)
        vocab_size = logp.size(-1)
        cand = (beam_logp[:, :, None] + logp.view(b, k, vocab_size)).view(b, -1)  # (B, K·V)
        top_logp, top = cand.topk(min(2 * k, cand.size(1)))  # (B, 2K)
        ranked = cand.topk(min(2 * k + 1, cand.size(1)))  # (B, 2K + 1): how close each step came to another outcome
        ranked_logp, ranked_flat = ranked.values.tolist(), ranked.indices.tolist()
        next_tokens = torch.full((b * k,), Vocab.pad_id, device=src.device)
        next_origin = torch.arange(b * k, device=src.device)
        next_logp = torch.full((b, k), float("-inf"), device=src.device)
        for i in range(b):
            if done[i]:
                continue
            margins[i] = min(margins[i], _beam_margin(ranked_logp[i], ranked_flat[i], k, vocab_size))
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
    out: list[list[Hypothesis] | Exception] = []
    for i, hyps in enumerate(finished):
        if i in stops.errors:
            out.append(stops.errors[i])
            continue
        best = sorted(hyps, key=lambda h: h.score, reverse=True)
        margin = min(margins[i], _closest([h.score for h in best[: n_best + 1]]))
        out.append([Hypothesis(h.ids, h.score, margin) for h in best[:n_best]])
    return out


def decoder_inputs(target_ids: list[int], device: torch.device | str = "cpu") -> Tensor:
    """The teacher-forced decoder inputs of produced tokens `target_ids`: <s>, then target_ids[:-1] -> (1, T)."""
    return torch.tensor([[Vocab.bos_id, *target_ids[:-1]]], device=device)


@torch.inference_mode()
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
    return forced_attention_batch(model, src, [target_ids], politeness, encoded, gates)[0]


@torch.inference_mode()
def forced_attention_batch(
    model: EncoderDecoder,
    src: Tensor,
    targets: list[list[int]],
    politeness: Tensor | None = None,
    encoded: Encoded | None = None,
    gates: HeadGates | None = None,
    target_length: int | None = None,
) -> list[tuple[dict[str, Tensor], Tensor]]:
    """forced_attention() of B pairs in one pass: src (B, S) padded, one target per row; the decoder inputs are
    padded to `target_length` positions (at least the longest target's; default that). Each row's maps are cut
    to its own source and target lengths, so padding never shows; what padding changes is only the shapes the
    pass runs at (model.translator.Translator.batches_exactly says when that changes no bytes)."""
    evaluating(model)
    length = max(len(ids) for ids in targets) if target_length is None else target_length
    tgt_in = torch.full((len(targets), length), Vocab.pad_id, dtype=torch.long)  # (B, T)
    for row, ids in enumerate(targets):
        tgt_in[row, : len(ids)] = decoder_inputs(ids)[0]
    tgt_in = tgt_in.to(src.device)
    memory, enc = encoded or model.encode(src, gates)
    logits, dec, cross = model.decode(tgt_in, memory, src, politeness, gates)  # logits (B, T, V)
    layers = {"encoder": enc, "decoder": dec, "cross": cross}  # (B, H, Tq, Tk) a layer; a kind the network lacks has none
    stacked = {kind: torch.stack(weights, 1) for kind, weights in layers.items() if weights}  # (B, L, H, Tq, Tk)
    source_lengths = (src != Vocab.pad_id).sum(1).tolist()
    out = []
    for row, (ids, s) in enumerate(zip(targets, source_lengths, strict=True)):
        t = len(ids)
        rows = {"encoder": s, "decoder": t, "cross": t}
        columns = {"encoder": s, "decoder": t, "cross": s}
        maps = {kind: w[row, :, :, : rows[kind], : columns[kind]].contiguous().cpu() for kind, w in stacked.items()}
        produced = torch.tensor(ids, device=src.device)[:, None]
        logp = logits[row, :t].log_softmax(-1).gather(1, produced).squeeze(1)  # (T,)
        out.append((maps, logp.cpu()))
    return out
