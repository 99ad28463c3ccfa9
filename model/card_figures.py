"""Measure two figures of a checkpoint and store them in its model card (NAME.json beside NAME.pt).

    python -m model.card_figures --data ../shared/data/small_parallel_enja --checkpoint model/checkpoints/en-ja.pt

training_lengths: source and target lengths of the training split in corpus tokens (no </s>),
so the service can say when a source is longer than anything the model was trained on.

alignment_by_layer: how well each cross-attention layer (mean over heads) aligns words, on dev.
The corpus has no gold alignments, so the reference is silver: eflomal run unsupervised over
train + dev, its two directions symmetrised with grow-diag-final-and; the dev pairs' links are
the reference. Each dev pair is force-decoded with its reference translation; every target word
is aligned to the source word it attends to most (</s> rows and columns left out, as in Garg et
al. 2019 and Chen et al. 2020), and the links are scored by AER, precision and recall. Shift-Att
(Chen et al. 2020: the row of the step where the word is the decoder input, t + 1) is reported
beside it; the best layer is the one with the lowest plain AER.

Every other field of the card is left as it is.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from model.data import read_parallel
from model.translator import Translator

Link = tuple[int, int]  # (source position, target position), the order eflomal writes `i-j` in
PERCENTILES = (50, 90, 99)
SYMMETRISATION = "grow-diag-final-and"
SYMMETRISATION_REASON = (
    "Japanese is segmented finer than English (送 っ た for 'lived'), so many target tokens rightly share one source "
    "word; the intersection keeps only one-to-one links and would count those as errors, grow-diag-final-and keeps them"
)
SHIFT_ATT = (
    "Shift-Att (Chen et al. 2020): target word t read from row t + 1, the step where it is the decoder input; "
    "reported beside the plain argmax, not used to choose best_layer"
)
CRITERION = (
    "lowest AER on dev of the argmax alignment of the cross-attention mean over heads: each target word is linked to "
    "its most attended source word (</s> rows and columns left out), scored against the silver reference "
    "(sure = possible links, AER = 1 - 2|A∩S| / (|A| + |S|))"
)


# --- training lengths ---------------------------------------------------------------------------


def length_summary(lengths: list[int]) -> dict[str, int]:
    """min, nearest-rank percentiles (the smallest length at least p% of sentences do not exceed), max, count."""
    if not lengths:
        raise ValueError("no sentences to measure")
    ordered = sorted(lengths)
    summary = {"min": ordered[0]}
    for p in PERCENTILES:
        summary[f"p{p}"] = ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]
    return {**summary, "max": ordered[-1], "count": len(ordered)}


def training_lengths(src: list[list[str]], tgt: list[list[str]]) -> dict:
    return {
        "split": "train",
        "unit": "corpus tokens per sentence, without </s>",
        "percentiles": "nearest rank",
        "source": length_summary([len(s) for s in src]),
        "target": length_summary([len(t) for t in tgt]),
    }


# --- silver reference ---------------------------------------------------------------------------


def parse_links(line: str) -> set[Link]:
    """`0-0 2-1` -> {(0, 0), (2, 1)}."""
    return {(int(i), int(j)) for i, j in (pair.split("-") for pair in line.split())}


_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def grow_diag_final_and(forward: set[Link], reverse: set[Link]) -> set[Link]:
    """Koehn et al. 2003 / Moses: start from the intersection, grow into neighbouring links of the union
    (diagonals included) that align a still unaligned word, then add links of either direction whose
    two words are both still unaligned."""
    union = forward | reverse
    links = forward & reverse
    aligned_src, aligned_tgt = {i for i, _ in links}, {j for _, j in links}

    def add(i: int, j: int) -> None:
        links.add((i, j))
        aligned_src.add(i)
        aligned_tgt.add(j)

    grown = True
    while grown:
        grown = False
        for i, j in sorted(links):
            for di, dj in _NEIGHBOURS:
                new = (i + di, j + dj)
                if new in union and new not in links and (new[0] not in aligned_src or new[1] not in aligned_tgt):
                    add(*new)
                    grown = True
    for direction in (forward, reverse):
        for i, j in sorted(direction):
            if i not in aligned_src and j not in aligned_tgt:
                add(i, j)
    return links


def eflomal_reference(src: list[list[str]], tgt: list[list[str]]) -> list[set[Link]]:
    """Unsupervised eflomal (its default IBM1 + HMM + fertility model) over all pairs, symmetrised."""
    import eflomal  # the `align` extra; imported here so the length figures need only the core install

    with tempfile.TemporaryDirectory() as tmp:
        fwd, rev = Path(tmp, "fwd"), Path(tmp, "rev")
        eflomal.Aligner().align(
            [" ".join(s) for s in src], [" ".join(t) for t in tgt], links_filename_fwd=str(fwd), links_filename_rev=str(rev)
        )
        forward = fwd.read_text(encoding="utf-8").splitlines()
        reverse = rev.read_text(encoding="utf-8").splitlines()
    if not len(forward) == len(reverse) == len(src):
        raise RuntimeError(f"eflomal wrote {len(forward)}/{len(reverse)} alignment lines for {len(src)} pairs")
    return [grow_diag_final_and(parse_links(f), parse_links(r)) for f, r in zip(forward, reverse, strict=True)]


# --- attention alignments and their scores ------------------------------------------------------


def argmax_links(cross: Tensor, shift: bool = False) -> set[Link]:
    """cross: (T, S) attention over source tokens, rows = produced target tokens; last row and column are </s>.

    Each target word t is linked to the source word (not </s>) with the highest weight in row t, or in
    row t + 1 with `shift` (Shift-Att: the step at which word t is the decoder's input).
    """
    words = cross[:, :-1]  # (T, S - 1) without the </s> column
    rows = words[1:] if shift else words[:-1]  # (T - 1, S - 1): one row per target word, </s> row left out
    return {(int(i), t) for t, i in enumerate(rows.argmax(-1).tolist())}


@dataclass
class Scores:
    aer: float
    precision: float
    recall: float

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in vars(self).items()}


def alignment_error_rate(predicted: list[set[Link]], sure: list[set[Link]], possible: list[set[Link]]) -> Scores:
    """Och & Ney 2003, over a corpus: AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|), precision |A∩P| / |A|,
    recall |A∩S| / |S|; the possible links include the sure ones."""
    a = sum(len(x) for x in predicted)
    s = sum(len(x) for x in sure)
    a_s = sum(len(x & y) for x, y in zip(predicted, sure, strict=True))
    a_p = sum(len(x & (y | z)) for x, y, z in zip(predicted, possible, sure, strict=True))
    return Scores(aer=1 - (a_s + a_p) / (a + s), precision=a_p / a if a else 0.0, recall=a_s / s if s else 0.0)


def attention_links(translator: Translator, src: list[list[str]], tgt: list[list[str]]) -> tuple[list, list]:
    """Force-decode each pair with its reference; per layer, the plain and the shifted argmax links."""
    n_layers = translator.config.n_decoder_layers
    plain: list[list[set[Link]]] = [[] for _ in range(n_layers)]
    shifted: list[list[set[Link]]] = [[] for _ in range(n_layers)]
    for s, t in tqdm(list(zip(src, tgt, strict=True)), desc="force-decoding dev", unit="pair", dynamic_ncols=True):
        result = translator.attention(" ".join(s), " ".join(t))
        if (len(result.source_tokens), len(result.target_tokens)) != (len(s) + 1, len(t) + 1):
            raise ValueError(f"the translator re-tokenized a corpus pair to other lengths: {' '.join(s)!r}")
        mean = result.maps["cross"].mean(1)  # (L, T, S) mean over heads
        for layer in range(n_layers):
            plain[layer].append(argmax_links(mean[layer]))
            shifted[layer].append(argmax_links(mean[layer], shift=True))
    return plain, shifted


def alignment_by_layer(
    translator: Translator, dev_src: list[list[str]], dev_tgt: list[list[str]], reference: list[set[Link]], aligned_pairs: int
) -> dict:
    """reference: the silver links of the dev pairs, from eflomal run over `aligned_pairs` pairs (train + dev)."""
    plain, shifted = attention_links(translator, dev_src, dev_tgt)

    def per_layer(links: list[list[set[Link]]]) -> list[dict]:
        return [{"layer": i, **alignment_error_rate(x, reference, reference).rounded()} for i, x in enumerate(links)]

    layers, shift_att = per_layer(plain), per_layer(shifted)
    return {
        "split": "dev",
        "dev_sentences": len(dev_src),
        "heads": "mean over heads",
        "layers": layers,
        "best_layer": min(layers, key=lambda r: r["aer"])["layer"],
        "criterion": CRITERION,
        "shift_att": {"rows": SHIFT_ATT, "layers": shift_att},
        "reference": {
            "aligner": f"eflomal {version('eflomal')} (default model 3: IBM1 + HMM + fertility), unsupervised",
            "data": f"train + dev, {aligned_pairs} pairs",
            "symmetrisation": SYMMETRISATION,
            "why": SYMMETRISATION_REASON,
        },
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        prog="python -m model.card_figures", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="folder with the train and dev .en/.ja files the model was trained on")
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt", help="its card NAME.json beside it is updated")
    args = p.parse_args(argv)
    card_path = Path(args.checkpoint).with_suffix(".json")
    if not card_path.is_file():
        p.error(f"no model card beside the checkpoint: {card_path}")
    torch.set_num_threads(os.cpu_count() or 1)
    train_src, train_tgt = read_parallel(args.data, "train")
    dev_src, dev_tgt = read_parallel(args.data, "dev")
    translator = Translator.from_checkpoint(args.checkpoint, "cpu")
    lengths = training_lengths(train_src, train_tgt)

    aligned_pairs = len(train_src) + len(dev_src)
    print(f"eflomal: aligning train + dev ({aligned_pairs} pairs) in both directions …", flush=True)
    silver = eflomal_reference(train_src + dev_src, train_tgt + dev_tgt)[len(train_src) :]
    alignment = alignment_by_layer(translator, dev_src, dev_tgt, silver, aligned_pairs)

    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["training_lengths"] = lengths
    card["alignment_by_layer"] = alignment
    card_path.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for side in ("source", "target"):
        print(f"training {side} lengths: " + ", ".join(f"{k} {v}" for k, v in lengths[side].items()))
    print(f"alignment on {alignment['dev_sentences']} dev pairs against eflomal ({SYMMETRISATION}):")
    print("layer    AER  precision  recall   | Shift-Att AER  precision  recall")
    for row, shift in zip(alignment["layers"], alignment["shift_att"]["layers"], strict=True):
        print(
            f"{row['layer']:5d} {row['aer']:6.4f} {row['precision']:10.4f} {row['recall']:7.4f}   | "
            f"{shift['aer']:13.4f} {shift['precision']:10.4f} {shift['recall']:7.4f}"
        )
    print(f"best layer (lowest plain AER): {alignment['best_layer']}; stored in {card_path}")
    return card


if __name__ == "__main__":
    main()
