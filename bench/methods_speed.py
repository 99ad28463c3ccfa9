"""Milliseconds for every map of each attribution method, relative to `weights`, on CPU.

    python bench/methods_speed.py [--checkpoint model/checkpoints/en-ja.pt] [--repeats 10] [--threads N]

For sources of 10 and 40 tokens the model first translates the source (greedy) once; then each repeat times the
model interface's attention() forcing that translation, once per method, the methods in a rotating order
(interleaved, so a slow spell of a shared machine falls on every method alike): weights, norms, alti, and
saliency with integrated gradients (20 steps, the default) and with input x gradient. What is timed is what
a request of that method computes beyond decoding (the teacher-forced pass and the method's maps), as the
service calls it. Prints the median and p90 per method and the median's ratio to weights'. Targets (issue 16):
norms at most 1.5x, alti at most 4x; saliency is reported.
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
from backends.interface import SaliencyOptions  # noqa: E402

WORDS = "the old man said that he would like to read this interesting book about japanese history again".split()
METHODS = {
    "weights": ("weights", None),
    "norms": ("norms", None),
    "alti": ("alti", None),
    "saliency IG 20": ("saliency", SaliencyOptions("integrated_gradients", 20)),
    "saliency IxG": ("saliency", SaliencyOptions("input_x_gradient", None)),
}


def sentence(n_tokens: int) -> str:
    """n_tokens tokens in all (the last one a full stop), made of ordinary training-vocabulary words."""
    words = (WORDS * (n_tokens // len(WORDS) + 1))[: n_tokens - 1]
    return " ".join(words) + " ."


def run(model, text: str, target: str, name: str):
    method, options = METHODS[name]
    return model.attention(text, target, method=method, **({"saliency": options} if options else {}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    _, model = load_model(args.checkpoint, "cpu")
    print(f"checkpoint {args.checkpoint}, {torch.get_num_threads()} threads, {args.repeats} interleaved repeats")
    print(f"{'source':>6} {'target':>6} {'method':<15} {'median ms':>10} {'p90 ms':>8} {'x weights':>9}")
    names = list(METHODS)
    for n in (10, 40):
        text = sentence(n)
        target = model.attention(text).translation
        result = None
        for name in names:  # warm-up
            result = run(model, text, target, name)
        times: dict[str, list[float]] = {name: [] for name in names}
        for repeat in range(args.repeats):
            for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                start = time.perf_counter()
                run(model, text, target, name)
                times[name].append((time.perf_counter() - start) * 1000)
        base = statistics.median(times["weights"])
        for name in names:
            ordered = sorted(times[name])
            median = statistics.median(ordered)
            p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
            source, produced = len(result.source_tokens) - 1, len(result.target_tokens)
            print(f"{source:>6} {produced:>6} {name:<15} {median:>10.1f} {p90:>8.1f} {median / base:>9.2f}")


if __name__ == "__main__":
    main()
