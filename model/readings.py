"""Latin-letter readings (romaji) of the target vocabulary, so non-readers of Japanese can follow a map.

    python -m model.readings --checkpoint model/checkpoints/en-ja.pt

writes model/checkpoints/en-ja.readings.json ({vocab token: romaji}) beside the checkpoint. The table
is made once with cutlet (MIT) over fugashi (MIT/BSD) and unidic-lite (BSD) — install them with
`pip install -e '.[readings]'` — and shipped with the model, so serving needs none of them:
`load_readings` only reads JSON. A token's reading is taken out of context, which for a single
vocabulary word is what a dictionary gives (は as a particle reads "wa").
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from model.vocab import SPECIALS

FORMAT_VERSION = 1


def readings_path(checkpoint: str | Path) -> Path:
    """en-ja.pt -> en-ja.readings.json in the same folder."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.readings.json")


def load_readings(checkpoint: str | Path) -> dict[str, str]:
    """The table shipped beside `checkpoint`, or {} when the model has none."""
    path = readings_path(checkpoint)
    if not path.is_file():
        return {}
    blob = json.loads(path.read_text(encoding="utf-8"))
    if blob.get("format") != FORMAT_VERSION or not isinstance(blob.get("readings"), dict):
        raise ValueError(f"{path} is not a readings table of format {FORMAT_VERSION}")
    return {str(k): str(v) for k, v in blob["readings"].items()}


def build_readings(tokens: Iterable[str], romanize: Callable[[str], str]) -> dict[str, str]:
    """Readings of the tokens that need one: special tokens, punctuation (。 -> ".") and tokens
    already in Latin letters are left out."""
    table = {}
    for token in tokens:
        if token in SPECIALS:
            continue
        reading = romanize(token).strip().lower()
        if reading != token.lower() and any(ch.isascii() and ch.isalpha() for ch in reading):
            table[token] = reading
    return table


def cutlet_romanizer() -> Callable[[str], str]:
    import cutlet  # generation-time only; see the module docstring

    # Native spellings (コンピューター -> konpyuutaa) show how the token sounds, not which English word it came from.
    return cutlet.Cutlet(use_foreign_spelling=False).romaji


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(
        prog="python -m model.readings", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt")
    args = p.parse_args(argv)
    from model.checkpoint import load_checkpoint

    vocab = load_checkpoint(args.checkpoint).tgt_vocab.tokens
    table = build_readings(vocab, cutlet_romanizer())
    out = readings_path(args.checkpoint)
    blob = {"format": FORMAT_VERSION, "language": "ja", "tool": "cutlet (Hepburn) with fugashi + unidic-lite", "readings": table}
    out.write_text(json.dumps(blob, ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(table)} readings for {len(vocab)} target tokens -> {out}")
    return out


if __name__ == "__main__":
    main()
