"""Milliseconds for translate + all attention maps on CPU, by source length.

    python bench/model_speed.py [--checkpoint model/checkpoints/en-ja.pt] [--repeats 20] [--beam 1]

For sources of 5, 10, 20 and 40 tokens it times the model interface's attention() (decode, then the
one teacher-forced pass that collects every map), as the service calls it, and prints the median
and p90 of repeated runs.
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

from backends.discovery import load_model  # noqa: E402

WORDS = "the old man said that he would like to read this interesting book about japanese history again".split()


def sentence(n_tokens: int) -> str:
    """n_tokens tokens in all (the last one a full stop), made of ordinary training-vocabulary words."""
    words = (WORDS * (n_tokens // len(WORDS) + 1))[: n_tokens - 1]
    return " ".join(words) + " ."


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    _, model = load_model(args.checkpoint, "cpu")
    print(f"checkpoint {args.checkpoint}, beam {args.beam}, {torch.get_num_threads()} threads, {args.repeats} repeats")
    print(f"{'source tokens':>13} {'target tokens':>13} {'median ms':>10} {'p90 ms':>8}")
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
        print(
            f"{len(result.source_tokens) - 1:>13} {len(result.target_tokens):>13} {statistics.median(times):>10.1f} {p90:>8.1f}"
        )


if __name__ == "__main__":
    main()
