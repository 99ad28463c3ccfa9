"""Write the silver reference alignments of the test set: alignments/silver.talp.

    python -m model.silver_alignments --data ../shared/data/small_parallel_enja      # or: make silver-alignments

eflomal (model.card_figures.eflomal_reference: its default IBM1 + HMM + fertility model, unsupervised) aligns
train + test in both directions, as statistical aligners are used (the more text, the better the
statistics, and no labels are read), and the two directions are symmetrised with grow-diag-final-and;
only the test pairs' links are written, line n for test line n, `i-j` source-target, 0-based, on the
corpus's own tokens. The file holds links only, no corpus text. eflomal takes no seed: two runs differ in
a few links (the AER figures of the card by about ±0.002).
"""

from __future__ import annotations

import argparse
from importlib.metadata import version
from pathlib import Path

from backends.alignment import format_pharaoh
from model.card_figures import SYMMETRISATION, eflomal_reference
from model.data import read_parallel


def silver_lines(data: str | Path, split: str = "test") -> list[str]:
    """The Pharaoh lines of `split`, from eflomal over train + `split`."""
    train_src, train_tgt = read_parallel(data, "train")
    src, tgt = read_parallel(data, split)
    links = eflomal_reference(train_src + src, train_tgt + tgt, keep=slice(len(train_src), None))
    return [format_pharaoh(line) for line in links]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m model.silver_alignments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="folder with train and test .en/.ja (small_parallel_enja)")
    p.add_argument("--split", default="test", help="the split whose links are written (default test)")
    p.add_argument("--out", default="alignments/silver.talp", help="default alignments/silver.talp")
    args = p.parse_args(argv)
    print(f"eflomal {version('eflomal')}: aligning train + {args.split} in both directions ({SYMMETRISATION}) …", flush=True)
    lines = silver_lines(args.data, args.split)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    links = sum(len(line.split()) for line in lines)
    print(f"wrote {out}: {len(lines)} {args.split} pairs, {links} links")


if __name__ == "__main__":
    main()
