"""Reading the parallel corpus and batching it by length."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from model.politeness import POLITENESS_LEVELS, target_politeness
from model.vocab import Vocab

Example = tuple[list[int], list[int], int]  # (source ids + </s>, target ids, politeness id in POLITENESS_LEVELS)


def read_parallel(data_dir: str | Path, split: str) -> tuple[list[list[str]], list[list[str]]]:
    """Read `{split}.en` / `{split}.ja` (pre-tokenized, one sentence a line) as token lists."""
    data_dir = Path(data_dir)
    src = [line.split() for line in (data_dir / f"{split}.en").read_text(encoding="utf-8").splitlines()]
    tgt = [line.split() for line in (data_dir / f"{split}.ja").read_text(encoding="utf-8").splitlines()]
    if len(src) != len(tgt):
        raise ValueError(f"{split}.en has {len(src)} lines but {split}.ja has {len(tgt)}")
    return src, tgt


def pad_batch(sequences: list[list[int]], pad_id: int) -> Tensor:
    width = max(len(s) for s in sequences)
    return torch.tensor([s + [pad_id] * (width - len(s)) for s in sequences], dtype=torch.long)


@dataclass
class Batch:
    src: Tensor  # (B, S): source ids + </s>
    tgt_in: Tensor  # (B, T): <s> + target ids
    tgt_out: Tensor  # (B, T): target ids + </s>
    politeness: Tensor  # (B,): politeness id of each target, an index into POLITENESS_LEVELS

    @property
    def n_target_tokens(self) -> int:
        return int((self.tgt_out != Vocab.pad_id).sum())


def encode_pairs(src: list[list[str]], tgt: list[list[str]], src_vocab: Vocab, tgt_vocab: Vocab) -> list[Example]:
    return [
        (src_vocab.encode(s) + [Vocab.eos_id], tgt_vocab.encode(t), POLITENESS_LEVELS.index(target_politeness(t)))
        for s, t in zip(src, tgt, strict=True)
    ]


def length_bucketed_batches(pairs: list[Example], max_tokens: int, rng: random.Random) -> list[Batch]:
    """Group pairs of similar length so that batches carry little padding, then shuffle batches.

    A batch holds at most `max_tokens` target tokens (counting padding).
    """
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs[i][1]), len(pairs[i][0]), rng.random()))
    batches, current, width = [], [], 0
    for i in order:
        w = max(width, len(pairs[i][1]) + 1)
        if current and w * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, w = [], len(pairs[i][1]) + 1
        current.append(i)
        width = w
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return [make_batch([pairs[i] for i in b]) for b in batches]


def make_batch(pairs: list[Example]) -> Batch:
    src = pad_batch([s for s, _, _ in pairs], Vocab.pad_id)
    tgt_in = pad_batch([[Vocab.bos_id, *t] for _, t, _ in pairs], Vocab.pad_id)
    tgt_out = pad_batch([[*t, Vocab.eos_id] for _, t, _ in pairs], Vocab.pad_id)
    return Batch(src, tgt_in, tgt_out, torch.tensor([r for _, _, r in pairs], dtype=torch.long))
