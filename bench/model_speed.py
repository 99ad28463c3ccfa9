"""Milliseconds for translate + all attention maps on CPU, by source length, against the machine's floor.

    python bench/model_speed.py [--checkpoint model/checkpoints/en-ja.pt] [--repeats 20] [--beam 1]

For sources of 5, 10, 20 and 40 tokens it times the model interface's attention() (decode, then the
one teacher-forced pass that collects every map), as the service calls it, and prints the median
and p90 of repeated runs, then the physical-limit line of each size: the FLOPs of the call (counted by
torch.utils.flop_counter over every matrix product it runs), the large-GEMM peak measured here
(2048 x 2048 float32 products, best of several, with the same thread count), the floor those give
(FLOPs / peak) and the ratio of the measured median to that floor. Last, what batching gives: 16
distinct dev-like 10-word sentences one attention() call after another against one attention_batch call
(as the server batches concurrent requests), interleaved, in ms per sentence.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.discovery import load_model  # noqa: E402
from backends.interface import AttentionQuery, never_stop  # noqa: E402

WORDS = "the old man said that he would like to read this interesting book about japanese history again".split()


def sentence(n_tokens: int) -> str:
    """n_tokens tokens in all (the last one a full stop), made of ordinary training-vocabulary words."""
    words = (WORDS * (n_tokens // len(WORDS) + 1))[: n_tokens - 1]
    return " ".join(words) + " ."


def gemm_peak(size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` float32 size x size x size matrix products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def flops(model, text: str, beam: int) -> int:
    with FlopCounterMode(display=False) as counter:
        model.attention(text, beam_size=beam)
    return counter.get_total_flops()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    _, model = load_model(args.checkpoint, "cpu")
    print(
        f"checkpoint {args.checkpoint}, beam {args.beam}, {torch.get_num_threads()} threads, {args.repeats} repeats, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'source tokens':>13} {'target tokens':>13} {'median ms':>10} {'p90 ms':>8}")
    medians = {}
    for n in (5, 10, 20, 40):
        text = sentence(n)
        model.attention(text, beam_size=args.beam)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = model.attention(text, beam_size=args.beam)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        medians[n] = statistics.median(times)
        print(f"{len(result.source_tokens) - 1:>13} {len(result.target_tokens):>13} {medians[n]:>10.1f} {p90:>8.1f}")

    peak = gemm_peak()
    print(f"\nphysical limit: large-GEMM peak {peak / 1e9:.1f} GFLOP/s ({torch.get_num_threads()} threads, 2048^3 float32)")
    print(f"{'source tokens':>13} {'MFLOP':>8} {'floor ms':>9} {'median ms':>10} {'x floor':>8}")
    for n, median in medians.items():
        work = flops(model, sentence(n), args.beam)
        floor = work / peak * 1000
        print(f"{n:>13} {work / 1e6:>8.0f} {floor:>9.2f} {median:>10.1f} {median / floor:>8.1f}")

    batch = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(9)) + " ." for i in range(16)]
    runs = {
        "one by one": lambda: [model.attention(text, beam_size=args.beam) for text in batch],
        "one batch": lambda: model.attention_batch([AttentionQuery(t, beam_size=args.beam) for t in batch], [never_stop] * 16),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(max(3, args.repeats // 3)):
        for name in list(runs) if repeat % 2 == 0 else reversed(list(runs)):
            times[name].append(_timed(runs[name]) * 1000 / len(batch))
    alone, together = (statistics.median(times[name]) for name in runs)
    print(f"\n16 distinct 10-word sentences, ms per sentence: one by one {alone:.1f}, in one batch {together:.1f}"
          f" ({alone / together:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
