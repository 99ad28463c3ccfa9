"""Translate English lines from stdin to space-separated Japanese tokens on stdout.

    python -m model.translate --checkpoint model/checkpoints/en-ja.pt [--beam N] [--politeness R] < input.en

Input may be raw text (`This is an example.`) or corpus-tokenized (`this is an example .`).
Empty input lines give empty output lines, so line N of the output always answers line N of the input.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from model.tokenize import tokenize_english
from model.translator import InputError, Translator


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m model.translate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt")
    p.add_argument("--beam", type=int, default=1, help="beam size; 1 is greedy")
    p.add_argument("--max-length", type=int, default=None, help="cap on produced tokens")
    p.add_argument(
        "--politeness",
        default="auto",
        help="plain or polite, for a model trained with politeness control; auto (default) takes the predicted one",
    )
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    translator = Translator.from_checkpoint(args.checkpoint, args.device)
    try:
        translator.check_politeness(args.politeness)
    except InputError as exc:
        p.error(str(exc))
    lines = sys.stdin.read().splitlines()
    wanted = [i for i, line in enumerate(lines) if tokenize_english(line)]
    results = translator.translate(
        [lines[i] for i in wanted], beam_size=args.beam, max_length=args.max_length, politeness=args.politeness
    )
    outputs = [""] * len(lines)
    for i, result in zip(wanted, results, strict=True):
        outputs[i] = " ".join(t.text for t in result.target_tokens if not t.special)
    sys.stdout.write("".join(o + "\n" for o in outputs))


if __name__ == "__main__":
    main()
