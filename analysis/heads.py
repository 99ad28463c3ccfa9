"""Which heads matter over a corpus: the table `attnscope heads` writes to NAME.heads.json.

Per head of every kind the model has:

- `bleu`: corpus BLEU of the set decoded greedily with that head alone switched off (its output zeroed before the
  output projection), and `bleu_drop`: the full model's BLEU minus it (Michel, Levy & Neubig 2019, "Are Sixteen
  Heads Really Better than One?");
- `importance`: their gradient importance I_h = E_x |∂L(x)/∂ξ_h|, ξ_h a gate of 1 on the head's output and L(x)
  the mean token cross-entropy of the reference under teacher forcing; `importance_normalized`: I_h over
  the ℓ2 norm of the importances of its layer (of its kind), the normalisation they prune by;
- `confidence`: Voita et al. 2019 ("Analyzing Multi-Head Self-Attention"), the mean over query tokens of a head's
  largest weight, the end token </s> left out as query and as key;
- `entropy` (bits) and `distance` (tokens): what the page's head statistics draw for one sentence (<s> and </s>
  hidden, rows renormalised; cross-attention measured from the proportional diagonal), averaged over every query
  token of the set; a row with no weight left once they are hidden (the decoder's first) is left out;
- `aer`: for cross heads, the alignment error rate of the head's weights (argmax per target token) against gold
  alignments of the corpus's first lines (`--gold`, Pharaoh/TALP: `alignments/gold.talp` for the built-in
  model's test set), scored as `attnscope align` scores them (backends.alignment_table); null without a gold file.

The maps and gradients are measured on the references (teacher forcing); BLEU on the model's own greedy output.
With `prune`, heads are then switched off one after another, least `importance_normalized` first, the set decoded
after each removal (Michel et al.'s Figure 3).

The work is cut into units: one shard of sentences decoded with one set of heads off, or one shard's
measurements. A unit's result depends on nothing but the unit (its torch thread count is fixed), and results are
combined in unit order, so the table is the same whether the units ran here, in a pool of processes or as Ray
tasks (analysis.scale).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from backends.alignment import read_pharaoh
from backends.alignment_table import Reference, aer_tables
from backends.discovery import load_model
from backends.interface import ATTENTION_KINDS, KIND_AXES, HeadRef, ModelDescription, Token, TranslationModel
from model.data import read_parallel

FORMAT = 1
END_TOKEN = "</s>"
AER_NOTE = "no gold alignments were given (attnscope heads --gold FILE)"
DEFINITIONS = {
    "bleu": "corpus BLEU of the set decoded greedily with this head alone switched off (its output zeroed before "
    "the output projection)",
    "bleu_drop": "the full model's BLEU minus bleu",
    "importance": "Michel et al. 2019: mean over the set of |dL/d xi_h|, xi_h a gate of 1 on the head's output and L "
    "the mean token cross-entropy of the reference under teacher forcing",
    "importance_normalized": "importance over the l2 norm of the importances of its layer (of its kind)",
    "confidence": "Voita et al. 2019: mean over query tokens of the head's largest weight, </s> left out as query and key",
    "entropy": "bits; mean over query tokens, <s> and </s> hidden and rows renormalised, as the page's head statistics",
    "distance": "tokens; mean over query tokens of the expected |key - query| position (cross-attention: from the "
    "proportional diagonal), <s> and </s> hidden, as the page's head statistics",
    "aer": "cross heads: alignment error rate of the head's weights (argmax per target token) against the gold "
    "alignments of the corpus's first lines (null without them)",
}

Executor = Callable[[list["Job"], str], list[dict]]  # runs jobs, returns their results in job order


@dataclass(frozen=True)
class Corpus:
    name: str
    split: str
    sources: tuple[str, ...]  # one sentence a line, tokens joined by spaces as the corpus gives them
    references: tuple[str, ...]


def read_corpus(data_dir: str | Path, split: str = "test", limit: int | None = None) -> Corpus:
    sources, references = read_parallel(data_dir, split)
    lines = slice(0, limit)
    return Corpus(
        name=Path(data_dir).resolve().name,
        split=split,
        sources=tuple(" ".join(s) for s in sources[lines]),
        references=tuple(" ".join(r) for r in references[lines]),
    )


@dataclass(frozen=True)
class Unit:
    """One piece of the work: shard `shard` decoded with `ablate` switched off, or that shard's measurements."""

    task: Literal["decode", "measure"]
    shard: int
    ablate: tuple[HeadRef, ...] = ()


@dataclass(frozen=True)
class Job:
    """A unit with all a worker needs to run it, in any process: where the model is, and the shard's lines."""

    model_path: str
    device: str
    controls: tuple[tuple[str, str], ...]
    threads: int
    sources: tuple[str, ...]
    references: tuple[str, ...]
    unit: Unit


_LOADED: dict[tuple[str, str], TranslationModel] = {}  # per process: a worker loads the model once


def loaded_model(path: str, device: str) -> TranslationModel:
    if (path, device) not in _LOADED:
        _LOADED[(path, device)] = load_model(path, device)[1]
    return _LOADED[(path, device)]


def run_job(job: Job) -> dict:
    """One unit's result, as plain lists and floats; the shard function of every executor."""
    threads = torch.get_num_threads()
    torch.set_num_threads(job.threads)
    try:
        model = loaded_model(job.model_path, job.device)
        controls = dict(job.controls)
        if job.unit.task == "decode":
            translations = model.translate(list(job.sources), controls=controls, ablate=frozenset(job.unit.ablate))
            return {"hypotheses": [bleu_text(model.describe(), t.target_tokens, t.translation) for t in translations]}
        return measure(model, list(job.sources), list(job.references), controls)
    finally:
        torch.set_num_threads(threads)


# --- BLEU ------------------------------------------------------------------------------------------


def bleu_text(description: ModelDescription, tokens: list[Token], translation: str) -> str:
    """What BLEU scores of a translation: a word-level model's tokens as the corpus spaces them (the model card's
    BLEU), else the translation's text."""
    if description.tokens.word_level:
        return " ".join(t.text for t in tokens if not t.special)
    return translation


def corpus_bleu(description: ModelDescription, hypotheses: list[str], references: tuple[str, ...]) -> float:
    """sacrebleu corpus BLEU. Word-level models: tokenize="none" on the corpus's tokens, as the model card;
    subword models: the references' tokens joined as the target language writes, character BLEU where it writes
    no spaces, 13a otherwise."""
    import sacrebleu

    if description.tokens.word_level:
        return sacrebleu.corpus_bleu(hypotheses, [list(references)], tokenize="none").score
    joiner = description.tokens.target_joiner
    written = [joiner.join(r.split()) for r in references]
    return sacrebleu.corpus_bleu(hypotheses, [written], tokenize="char" if joiner == "" else "13a").score


def bleu_method(description: ModelDescription) -> str:
    if description.tokens.word_level:
        return "sacrebleu corpus BLEU, tokenize=none, on the corpus's own tokenization (as the model card)"
    return f"sacrebleu corpus BLEU on the translations, tokenize={'char' if description.tokens.target_joiner == '' else '13a'}"


# --- measurements on the references ------------------------------------------------------------------


def measure(model: TranslationModel, sources: list[str], references: list[str], controls: dict[str, str]) -> dict:
    """Per kind, sums over the shard (divided by their counts once every shard is in): |∂L/∂ξ| per pair, and the
    per-row confidence, entropy and distance of the teacher-forced maps of every pair."""
    description = model.describe()
    sums: dict[str, dict[str, list]] = {}
    counts: dict[str, dict[str, int]] = {}
    for source, reference in zip(sources, references, strict=True):
        result = model.attention(source, reference, controls=controls)
        axes = {"source_tokens": result.source_tokens, "target_tokens": result.target_tokens,
                "decoder_input_tokens": result.decoder_input_tokens}  # fmt: skip
        for kind, maps in result.maps.items():
            query_axis, key_axis, _ = KIND_AXES[kind]
            stats = map_statistics(maps.double(), axes[query_axis], axes[key_axis], kind == "cross")
            kind_sums = sums.setdefault(kind, {})
            kind_counts = counts.setdefault(kind, {})
            for name, (total, count) in stats.items():
                kind_sums[name] = (kind_sums[name] + total) if name in kind_sums else total
                kind_counts[name] = kind_counts.get(name, 0) + count
    out = {
        "pairs": len(sources),
        "sums": {kind: {name: total.tolist() for name, total in stats.items()} for kind, stats in sums.items()},
        "counts": counts,
        "gradients": None,
    }
    if description.ablation:
        gradients = model.gate_gradients(sources, references, controls=controls)
        out["gradients"] = {kind: grads.double().tolist() for kind, grads in gradients.items()}
    return out


def map_statistics(weights: torch.Tensor, queries: list[Token], keys: list[Token], cross: bool) -> dict:
    """weights (L, H, Tq, Tk) of one pair -> name -> (sum over rows (L, H), rows counted)."""
    out = {}
    # Voita's confidence: raw weights, </s> left out as query and as key
    rows = [i for i, t in enumerate(queries) if not (t.special and t.text == END_TOKEN)]
    cols = [j for j, t in enumerate(keys) if not (t.special and t.text == END_TOKEN)]
    kept = weights[:, :, rows][:, :, :, cols]
    out["confidence"] = (kept.amax(-1).sum(-1) if cols else torch.zeros(weights.shape[:2], dtype=weights.dtype), len(rows))
    # the page's statistics: specials hidden, rows renormalised, rows with no weight left out
    rows = [i for i, t in enumerate(queries) if not t.special]
    cols = [j for j, t in enumerate(keys) if not t.special]
    shown = weights[:, :, rows][:, :, :, cols]  # (L, H, R, C)
    mass = shown.sum(-1, keepdim=True)
    live = (mass[..., 0] > 0).all(dim=(0, 1)) if rows and cols else torch.zeros(len(rows), dtype=torch.bool)
    p = shown[:, :, live] / mass[:, :, live]
    entropy = -(p * torch.where(p > 0, p.log2(), torch.zeros_like(p))).sum(-1)  # (L, H, R')
    positions = torch.arange(len(rows), dtype=weights.dtype)[live]
    scale = (len(cols) - 1) / (len(rows) - 1) if cross and len(rows) > 1 else 1.0
    gap = (torch.arange(len(cols), dtype=weights.dtype)[None, :] - positions[:, None] * scale).abs()  # (R', C)
    out["entropy"] = (entropy.sum(-1), int(live.sum()))
    out["distance"] = ((p * gap).sum(-1).sum(-1), int(live.sum()))
    return out


# --- the study ---------------------------------------------------------------------------------------


@dataclass
class Study:
    """What `attnscope heads` was asked: the model (by path), the corpus, how to cut and run the work."""

    model_path: str
    model_name: str
    corpus: Corpus
    shard_size: int = 64
    threads: int = 1
    device: str = "cpu"
    controls: dict[str, str] = field(default_factory=dict)
    gold: str | None = None  # Pharaoh/TALP gold alignments of the corpus's first lines, for the cross heads' AER

    def shards(self) -> list[range]:
        n = len(self.corpus.sources)
        return [range(start, min(start + self.shard_size, n)) for start in range(0, n, self.shard_size)]

    def job(self, unit: Unit) -> Job:
        lines = self.shards()[unit.shard]
        return Job(
            model_path=self.model_path,
            device=self.device,
            controls=tuple(sorted(self.controls.items())),
            threads=self.threads,
            sources=self.corpus.sources[lines.start : lines.stop],
            references=self.corpus.references[lines.start : lines.stop],
            unit=unit,
        )


def every_head(description: ModelDescription) -> list[HeadRef]:
    return [
        HeadRef(kind, layer, head)
        for kind in ATTENTION_KINDS
        if kind in description.kinds
        for layer in range(description.kinds[kind].layers)
        for head in range(description.kinds[kind].heads)
    ]


def significant(value: float | None, digits: int = 6) -> float | None:
    """Rounded to `digits` significant digits, so the JSON is short and the same from any run."""
    return None if value is None else float(f"{value:.{digits}g}")


def run_study(study: Study, execute: Executor, prune: bool = False) -> dict:
    """The head table as NAME.heads.json holds it; `execute` runs the units (analysis.scale)."""
    model = loaded_model(study.model_path, study.device)
    description = model.describe()
    if prune and not description.ablation:
        raise ValueError(f"model {description.name} cannot switch heads off, so it cannot be pruned")
    heads = every_head(description) if description.ablation else []
    shards = range(len(study.shards()))
    conditions: list[tuple[HeadRef, ...]] = [(), *((h,) for h in heads)]
    units = [Unit("measure", s) for s in shards] + [Unit("decode", s, c) for c in conditions for s in shards]
    # first, so that a gold file that does not fit the corpus stops the run before the long part
    aer = cross_head_aer(model, study.corpus, study.gold) if study.gold is not None and "cross" in description.kinds else None
    results = dict(zip(units, execute([study.job(u) for u in units], "heads"), strict=True))

    def bleu(condition: tuple[HeadRef, ...], found: dict[Unit, dict]) -> float:
        hypotheses = [line for s in shards for line in found[Unit("decode", s, condition)]["hypotheses"]]
        return corpus_bleu(description, hypotheses, study.corpus.references)

    measured = [results[Unit("measure", s)] for s in shards]
    full = bleu((), results)
    statistics = combine_measurements(description, measured)
    rows = []
    for ref in every_head(description):
        stats = statistics[ref.kind]
        at = (ref.layer, ref.head)
        ablated = bleu((ref,), results) if description.ablation else None
        rows.append(
            {
                "kind": ref.kind,
                "layer": ref.layer,
                "head": ref.head,
                "bleu": significant(ablated),
                "bleu_drop": significant(None if ablated is None else full - ablated),
                **{name: significant(stats[name][at] if stats[name] is not None else None)
                   for name in ("importance", "importance_normalized", "confidence", "entropy", "distance")},
                "aer": significant(aer.by_head[at]) if aer is not None and ref.kind == "cross" else None,
            }
        )  # fmt: skip
    table = {
        "format": FORMAT,
        "model": study.model_name,
        "data": {"corpus": study.corpus.name, "split": study.corpus.split, "sentences": len(study.corpus.sources)},
        "decoding": "greedy",
        "controls": dict(sorted(study.controls.items())),
        "bleu_method": bleu_method(description),
        "bleu": significant(full),
        "kinds": {kind: {"layers": s.layers, "heads": s.heads} for kind, s in description.kinds.items()},
        "definitions": DEFINITIONS,
        "heads": rows,
        "aer": {"available": False, "note": AER_NOTE} if aer is None else {"available": True, **aer.about},
        "pruning": None,
        "shards": {"count": len(shards), "size": study.shard_size, "threads": study.threads},
    }
    if prune:
        table["pruning"] = pruning_curve(study, execute, description, rows, full, bleu)
    return table


@dataclass(frozen=True)
class HeadAER:
    by_head: dict[tuple[int, int], float]  # (layer, head) of every cross head -> AER
    about: dict  # where it was measured: the gold file, how many sentences, the rule


def cross_head_aer(model: TranslationModel, corpus: Corpus, gold_path: str) -> HeadAER:
    """Every cross head's AER against `gold_path`'s alignments of the corpus's first lines: the maps of
    method weights (forced on the references), argmax per target token, as `attnscope align` scores them."""
    gold = read_pharaoh(gold_path)
    pairs = [(s.split(), r.split()) for s, r in zip(corpus.sources, corpus.references, strict=True)]
    lines = range(min(len(gold), len(pairs)))
    tables = aer_tables(model, pairs, [Reference("gold", gold_path, gold)], methods=["weights"], lines=lines)
    measured = tables["gold"]
    scores = measured["methods"]["weights"]["scores"]
    by_head = {(row["layer"], row["head"]): row["aer"] for row in scores if isinstance(row["head"], int)}
    about = {"gold": Path(gold_path).name, "sentences": measured["sentences"], "rule": measured["rule"]}
    return HeadAER(by_head, about)


def combine_measurements(description: ModelDescription, measured: list[dict]) -> dict[str, dict]:
    """Shard measurements, summed in shard order, -> kind -> name -> {(layer, head): mean} (None where not measured)."""
    pairs = sum(m["pairs"] for m in measured)
    out = {}
    for kind, shape in description.kinds.items():
        per_kind: dict[str, dict | None] = {}
        for name in ("confidence", "entropy", "distance"):
            total = torch.zeros(shape.layers, shape.heads, dtype=torch.float64)
            count = 0
            for m in measured:
                if kind in m["sums"]:
                    total += torch.tensor(m["sums"][kind][name], dtype=torch.float64)
                    count += m["counts"][kind][name]
            per_kind[name] = _by_head(total / count) if count else None
        if measured and measured[0]["gradients"] is not None:
            total = torch.zeros(shape.layers, shape.heads, dtype=torch.float64)
            for m in measured:
                total += torch.tensor(m["gradients"][kind], dtype=torch.float64)
            importance = total / pairs
            norms = importance.norm(dim=1, keepdim=True)  # (L, 1): ℓ2 over the heads of each layer
            per_kind["importance"] = _by_head(importance)
            per_kind["importance_normalized"] = _by_head(torch.where(norms > 0, importance / norms, importance))
        else:
            per_kind["importance"] = per_kind["importance_normalized"] = None
        out[kind] = per_kind
    return out


def _by_head(values: torch.Tensor) -> dict[tuple[int, int], float]:
    return {(layer, head): float(values[layer, head]) for layer in range(values.size(0)) for head in range(values.size(1))}


def pruning_order(rows: list[dict]) -> list[HeadRef]:
    """Every head, least importance_normalized first; ties in kind, layer, head order."""
    ranked = sorted(enumerate(rows), key=lambda item: (item[1]["importance_normalized"], item[0]))
    return [HeadRef(row["kind"], row["layer"], row["head"]) for _, row in ranked]


def pruning_curve(study: Study, execute: Executor, description: ModelDescription, rows: list[dict], full: float, bleu) -> dict:
    order = pruning_order(rows)
    shards = range(len(study.shards()))
    conditions = [tuple(order[:k]) for k in range(1, len(order) + 1)]
    units = [Unit("decode", s, c) for c in conditions for s in shards]
    results = dict(zip(units, execute([study.job(u) for u in units], "pruning"), strict=True))
    steps = [{"removed": 0, "head": None, "bleu": significant(full)}]
    for k, condition in enumerate(conditions, start=1):
        head = condition[-1]
        steps.append({"removed": k, "head": {"kind": head.kind, "layer": head.layer, "head": head.head},
                      "bleu": significant(bleu(condition, results))})  # fmt: skip
    return {"order": "importance_normalized, least first (Michel et al. 2019, Figure 3)", "steps": steps}


def summary(table: dict) -> str:
    """A few lines for the terminal: the full BLEU, the heads that matter most, the pruning curve."""
    lines = [f"{table['model']}: BLEU {table['bleu']:.2f} on {table['data']['corpus']} {table['data']['split']} "
             f"({table['data']['sentences']} sentences, greedy)"]  # fmt: skip
    rated = [row for row in table["heads"] if row["bleu_drop"] is not None]
    for row in sorted(rated, key=lambda r: -r["bleu_drop"])[:5]:
        lines.append(
            f"  {row['kind']:<8} layer {row['layer']} head {row['head']}: BLEU {row['bleu']:.2f} "
            f"(drop {row['bleu_drop']:+.2f}), importance {row['importance']:.4g}, confidence {row['confidence']:.2f}"
        )
    if rated:
        small = sum(abs(row["bleu_drop"]) < 0.5 for row in rated)
        lines.append(f"  {small} of {len(rated)} heads alone move BLEU by less than 0.5")
    if table["pruning"]:
        curve = ", ".join(f"{step['removed']}: {step['bleu']:.1f}" for step in table["pruning"]["steps"])
        lines.append(f"  pruning (heads removed: BLEU): {curve}")
    return "\n".join(lines)
