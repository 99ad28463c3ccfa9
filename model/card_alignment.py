"""Measure how the built-in model's maps align words, and store the AER tables in its model card.

    python -m model.card_alignment --data ../shared/data/small_parallel_enja      # or: make card-alignment

Every method of the model (backends.alignment_table, through the model interface) is read as argmax word
alignments on the test pairs, force-decoded with their reference translations, and scored by AER against
the gold alignments (alignments/gold.talp, 100 hand-aligned test pairs) and the silver ones
(alignments/silver.talp, eflomal on all 500). Saliency costs a backward pass per produced token, so it is
measured as input × gradient on the gold pairs only (`--saliency-lines`). The card gets:

alignment_aer: per reference and method, the AER of every (layer, head) read, the best, the best layer mean;
    the page opens the cross-attention on the best layer mean of weights against gold (else silver).
literature_checks:
    kobayashi_2020: per layer, weights (mean of heads) against norms (‖Σ_h α f_h(x)‖, the layer's map), as
        Kobayashi et al. 2020 compare them ("Attention is Not Only a Weight", §5: norm-based alignments have the
        lower AER in the middle layers of their NMT model);
    ferrando_2022: the mean ALTI+ source share (the source's part of each produced token's contributions) by
        target position over the test pairs, and its least-squares slope (Ferrando et al. 2022: the source's
        contribution falls as the target prefix grows).
The figures are reported as measured; nothing is tuned to them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm

from backends.alignment import read_pharaoh
from backends.alignment_table import AlignmentRule, Reference, aer_tables, read_corpus
from backends.builtin import BuiltinModel
from backends.interface import AttentionResult, SaliencyOptions

SALIENCY = SaliencyOptions("input_x_gradient", None)
FERRANDO_MIN_TOKENS = 20  # positions with fewer produced tokens than this are listed but left out of first/last


class SourceShares:
    """Per target position (0-based over the corpus tokens, </s> left out): the sum and count of ALTI+ source shares."""

    def __init__(self) -> None:
        self.sums: dict[int, float] = {}
        self.counts: dict[int, int] = {}
        self.slopes: list[float] = []  # per sentence of 3 or more produced words: its own least-squares slope

    def observe(self, line: int, result: AttentionResult) -> None:
        if result.method != "alti":
            return
        source = result.contributions.source.double().sum(-1)  # (T,)
        total = source + result.contributions.prefix.double().sum(-1)
        words = [t for t, token in enumerate(result.target_tokens) if not token.special]
        shares = [float(source[t] / total[t]) for t in words]
        for position, share in enumerate(shares):
            self.sums[position] = self.sums.get(position, 0.0) + share
            self.counts[position] = self.counts.get(position, 0) + 1
        if len(shares) >= 3:
            centre = (len(shares) - 1) / 2
            spread = sum((p - centre) ** 2 for p in range(len(shares)))
            self.slopes.append(sum((p - centre) * share for p, share in enumerate(shares)) / spread)

    def figure(self) -> dict:
        positions = sorted(self.counts)
        rows = [
            {"position": p, "mean_source_share": round(self.sums[p] / self.counts[p], 4), "tokens": self.counts[p]}
            for p in positions
        ]
        n = sum(self.counts.values())
        mean_position = sum(p * self.counts[p] for p in positions) / n
        mean_share = sum(self.sums.values()) / n
        # least squares over tokens: the share each position holds, weighted by its count
        covariance = sum(self.sums[p] * (p - mean_position) for p in positions)
        variance = sum(self.counts[p] * (p - mean_position) ** 2 for p in positions)
        well_counted = [row for row in rows if row["tokens"] >= FERRANDO_MIN_TOKENS] or rows
        first, last = well_counted[0], well_counted[-1]
        slope = covariance / variance
        falling = sum(1 for slope in self.slopes if slope < 0)
        return {
            "positions": rows,
            "tokens": n,
            # within each sentence, so that longer sentences' later positions do not stand in for position
            "within_sentence": {
                "sentences": len(self.slopes),
                "mean_slope_per_position": round(sum(self.slopes) / len(self.slopes), 5) if self.slopes else None,
                "falling": falling,
            },
            "mean_source_share": round(mean_share, 4),
            "slope_per_position": round(slope, 5),
            "first": first,
            "last": last,
            "falls": slope < 0 and last["mean_source_share"] < first["mean_source_share"],
            "note": f"first and last: the first and last positions with at least {FERRANDO_MIN_TOKENS} produced tokens",
        }


def kobayashi(tables: dict) -> dict:
    """Per reference and layer: AER of weights (mean of heads) and of norms (the layer's ‖Σ_h α f_h(x)‖, and the
    mean of the heads' norms)."""

    def aer(methods: dict, method: str, layer: int, head: str) -> float:
        return next(r["aer"] for r in methods[method]["scores"] if (r["layer"], r["head"]) == (layer, head))

    figure = {}
    for name, reference in tables.items():
        methods = reference["methods"]
        layers = sorted({r["layer"] for r in methods["weights"]["scores"]})
        figure[name] = [
            {
                "layer": layer,
                "weights_mean": aer(methods, "weights", layer, "mean"),
                "norms_layer": aer(methods, "norms", layer, "layer"),
                "norms_mean": aer(methods, "norms", layer, "mean"),
            }
            for layer in layers
        ]
    return figure


def measure(model: BuiltinModel, data: str, gold: str | None, silver: str, saliency_lines: int) -> dict:
    description = model.describe()
    corpus = read_corpus(data, "test", description)
    references = [Reference("silver", silver, read_pharaoh(silver))]
    if gold is not None:
        references.insert(0, Reference("gold", gold, read_pharaoh(gold)))
    shares = SourceShares()
    methods = [m for m in description.methods if m != "saliency"]

    def bar(what: str):
        return lambda todo: tqdm(todo, desc=what, unit="pair", dynamic_ncols=True)

    tables = aer_tables(model, corpus, references, methods=methods, progress=bar(", ".join(methods)), observe=shares.observe)
    if "saliency" in description.methods:
        salient = aer_tables(
            model, corpus, references, methods=["saliency"], saliency=SALIENCY, lines=range(saliency_lines),
            progress=bar("saliency"),
        )  # fmt: skip
        for name in tables:
            tables[name]["methods"]["saliency"] = salient[name]["methods"]["saliency"]
    checks = {"kobayashi_2020": kobayashi(tables)}
    if "alti" in description.methods:  # the source share is ALTI+'s; a model without it (the RNN) has no such figure
        checks["ferrando_2022"] = {"split": "test", **shares.figure()}
    return {"alignment_aer": {"rule": AlignmentRule().describe(), **tables}, "literature_checks": checks}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        prog="python -m model.card_alignment", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", required=True, help="folder with test.en / test.ja")
    p.add_argument("--checkpoint", default="model/checkpoints/en-ja.pt", help="its card NAME.json beside it is updated")
    p.add_argument("--gold", default="alignments/gold.talp", help="hand alignments (left out when the file is missing)")
    p.add_argument("--silver", default="alignments/silver.talp", help="make silver-alignments writes it")
    p.add_argument("--saliency-lines", type=int, default=100, help="test pairs saliency is measured on (from the first)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (one sentence at a time gains little from more)")
    args = p.parse_args(argv)
    card_path = Path(args.checkpoint).with_suffix(".json")
    if not card_path.is_file():
        p.error(f"no model card beside the checkpoint: {card_path}")
    torch.set_num_threads(args.threads)
    gold = args.gold if Path(args.gold).is_file() else None
    if gold is None:
        print(f"no gold file at {args.gold}: measuring against the silver alignments only", flush=True)
    figures = measure(BuiltinModel.load(args.checkpoint, "cpu"), args.data, gold, args.silver, args.saliency_lines)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.update(figures)
    card_path.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for name, reference in figures["alignment_aer"].items():
        if name == "rule":
            continue
        for method, table in reference["methods"].items():
            best = table["best"]
            where = f"layer {best['layer']} head {best['head']}"
            print(f"{name} {method}: best {where} AER {best['aer']:.3f} ({table['sentences']} pairs)")
    ferrando = figures["literature_checks"].get("ferrando_2022")
    if ferrando is not None:
        slope, falls = ferrando["slope_per_position"], ferrando["falls"]
        print(f"ALTI+ source share by position: slope {slope}, falls: {falls}")
    print(f"stored in {card_path}")
    return card


if __name__ == "__main__":
    main()
