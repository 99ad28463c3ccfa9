"""Score a checkpoint on the test set.

    python -m model.evaluate --data ../shared/data/small_parallel_enja --checkpoint model/checkpoints/en-ja.pt [--beam N]

Prints `BLEU = xx.xx` (sacrebleu, tokenize="none", hypotheses as space-joined tokens against test.ja).
"""

from __future__ import annotations

import argparse
import os

import torch

from model.bleu import translation_bleu
from model.data import read_parallel
from model.translator import InputError, Translator


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(
        prog="python -m model.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="folder with test.en and test.ja")
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt")
    p.add_argument("--split", default="test", choices=["dev", "test"])
    p.add_argument("--beam", type=int, default=1, help="beam size; 1 is greedy")
    p.add_argument("--politeness", default="auto", help="plain or polite for a model with politeness control; auto predicts it")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    translator = Translator.from_checkpoint(args.checkpoint, args.device)
    try:
        translator.check_politeness(args.politeness)
    except InputError as exc:
        p.error(str(exc))
    src, ref = read_parallel(args.data, args.split)
    bleu = translation_bleu(translator, src, ref, args.beam, args.politeness)
    print(f"BLEU = {bleu:.2f}")
    return bleu


if __name__ == "__main__":
    main()
