"""What switching heads off costs: a forced pass (every map of a given target) with heads ablated
against the same pass with every head on, interleaved.

    python bench/ablation_speed.py [--checkpoint model/checkpoints/en-ja.pt] [--data ../shared/data/small_parallel_enja]
                                   [--sentences 100] [--rounds 5] [--heads 3]

Each round runs the model interface's attention() with the reference as the forced target, as the service calls it,
over the first N test sentences twice: once unablated and once with --heads heads switched off (one of each kind,
then more), in alternating order from round to round so that neither side always runs on a warmer machine. It prints
each side's median time per sentence over the rounds and their ratio (the target: at most 1.2×).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from interleave import in_turn  # noqa: E402

from backends.discovery import load_model  # noqa: E402
from backends.interface import ATTENTION_KINDS, HeadRef  # noqa: E402
from model.data import read_parallel  # noqa: E402


def heads_to_switch_off(description, count: int) -> frozenset[HeadRef]:
    """`count` heads, taken round the kinds: encoder L0 H0, decoder L0 H0, cross L0 H0, encoder L0 H1, …"""
    every = [
        [HeadRef(kind, layer, head) for layer in range(shape.layers) for head in range(shape.heads)]
        for kind, shape in ((k, description.kinds[k]) for k in ATTENTION_KINDS if k in description.kinds)
    ]
    chosen = [heads[i] for i in range(max(map(len, every))) for heads in every if i < len(heads)]
    return frozenset(chosen[:count])


def seconds(model, pairs: list[tuple[str, str]], ablate: frozenset[HeadRef]) -> list[float]:
    times = []
    for source, target in pairs:
        start = time.perf_counter()
        model.attention(source, target, ablate=ablate)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt")
    p.add_argument("--data", default="../shared/data/small_parallel_enja")
    p.add_argument("--sentences", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--heads", type=int, default=3, help="heads switched off (default 3: one of each kind)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    _, model = load_model(args.checkpoint, "cpu")
    sources, references = read_parallel(args.data, "test")
    pairs = [(" ".join(s), " ".join(r)) for s, r in zip(sources[: args.sentences], references[: args.sentences], strict=True)]
    ablate = heads_to_switch_off(model.describe(), args.heads)
    threads = torch.get_num_threads()
    print(f"checkpoint {args.checkpoint}, {len(pairs)} test sentences forced on their references, {threads} threads")
    print(f"switched off: {', '.join(str(h) for h in sorted(ablate, key=str))}")
    seconds(model, pairs[:10], frozenset())  # warm-up
    seconds(model, pairs[:10], ablate)
    medians: dict[str, list[float]] = {"every head on": [], "heads off": []}
    for round_ in range(args.rounds):
        order = [("every head on", frozenset()), ("heads off", ablate)]
        for name, heads in in_turn(order, round_):
            medians[name].append(statistics.median(seconds(model, pairs, heads)) * 1000)
    on, off = statistics.median(medians["every head on"]), statistics.median(medians["heads off"])
    for name, values in medians.items():
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:>14}: median {statistics.median(values):6.2f} ms a sentence (rounds: {rounds})")
    print(f"ratio heads off / every head on: {off / on:.3f}× (target ≤ 1.2×)")


if __name__ == "__main__":
    main()
