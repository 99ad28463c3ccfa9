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
from importlib.metadata import version
from pathlib import Path

import torch
from tqdm import tqdm

from backends.alignment import (
    Link,
    alignment_error_rate,
    grow_diag_final_and,
    links_of,
    parse_pharaoh_line,
    shift_rows,
    weighted_links,
)
from model.data import read_parallel
from model.translator import Translator

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


def eflomal_reference(src: list[list[str]], tgt: list[list[str]], keep: slice = slice(None)) -> list[set[Link]]:
    """Unsupervised eflomal (its default IBM1 + HMM + fertility model) over all pairs, both directions; the pairs
    in `keep` symmetrised with grow-diag-final-and (eflomal writes both directions source-target)."""
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
    pairs = zip(src[keep], tgt[keep], forward[keep], reverse[keep], strict=True)
    links = []
    for s, t, f, r in pairs:
        (one, _), (other, _) = parse_pharaoh_line(f), parse_pharaoh_line(r)
        if any(i >= len(s) or j >= len(t) for i, j in one | other):
            raise RuntimeError(f"eflomal wrote a link outside the pair {' '.join(s)!r}: not in source-target order")
        links.append(grow_diag_final_and(one, other))
    return links


# --- attention alignments and their scores ------------------------------------------------------


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
        tokens = result.source_tokens, result.target_tokens
        for layer in range(n_layers):
            plain[layer].append(links_of(weighted_links(mean[layer], *tokens)))
            shifted[layer].append(links_of(weighted_links(shift_rows(mean[layer]), *tokens)))
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
    silver = eflomal_reference(train_src + dev_src, train_tgt + dev_tgt, keep=slice(len(train_src), None))
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
