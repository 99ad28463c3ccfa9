"""AER of a model's cross maps against reference alignments, per method, per layer, per head and the layer mean.

Runs any TranslationModel through the interface: each corpus pair is force-decoded with its own reference
translation (`attention(source, target)`), every cross map of every method the model declares is read as word
alignments (backends.alignment: argmax or a threshold, Shift-Att optional), the model's tokens are mapped back
to the corpus's tokens, and the links are scored against each reference, counts summed over the corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backends.alignment import (
    Counts,
    GoldAlignment,
    check_bounds,
    corpus_positions,
    head_map,
    links_of,
    shift_rows,
    to_corpus,
    weighted_links,
)
from backends.interface import InputError, ModelDescription, TranslationModel

MEAN = "mean"


def model_methods(description: ModelDescription) -> tuple[str, ...]:
    """The attribution methods a model declares (every model has the raw weights)."""
    return tuple(getattr(description, "methods", ("weights",)))


@dataclass(frozen=True)
class AlignmentRule:
    """How a map becomes links: each target token's argmax (threshold None) or every share over `threshold`;
    with `shift_att`, token t read from row t + 1 (Chen et al. 2020)."""

    threshold: float | None = None
    shift_att: bool = False

    def describe(self) -> str:
        rule = "argmax per target token" if self.threshold is None else f"every link over {self.threshold:g} of its row"
        return rule + (", Shift-Att (row t + 1)" if self.shift_att else "")


@dataclass(frozen=True)
class Reference:
    """A named reference (gold, silver): its alignments for corpus lines start, start + 1, …"""

    name: str
    path: str
    alignments: Sequence[GoldAlignment]
    start: int = 0


@dataclass
class _Tally:
    """Counts per (layer, head) of one method against one reference; head MEAN is the layer's mean over heads."""

    counts: dict[tuple[int, int | str], Counts] = field(default_factory=dict)

    def add(self, layer: int, head: int | str, links: set, gold: GoldAlignment) -> None:
        self.counts.setdefault((layer, head), Counts()).add(links, gold)


def read_corpus(data: str | Path, split: str, description: ModelDescription) -> list[tuple[list[str], list[str]]]:
    """DIR/SPLIT.SRC and DIR/SPLIT.TGT (language codes: test.en, test.ja), tokens split on spaces, line by line."""
    languages = (description.source_language, description.target_language)
    files = [Path(data) / f"{split}.{language.code.split('_')[0]}" for language in languages]
    try:
        sides = [path.read_text(encoding="utf-8").splitlines() for path in files]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"the corpus cannot be read: {exc}") from None
    if len(sides[0]) != len(sides[1]):
        raise InputError(f"{files[0]} has {len(sides[0])} lines but {files[1]} has {len(sides[1])}")
    return [(s.split(), t.split()) for s, t in zip(*sides, strict=True)]


def _forced_kwargs(method: str) -> dict:
    return {} if method == "weights" else {"method": method}


def aer_tables(
    model: TranslationModel,
    corpus: Sequence[tuple[list[str], list[str]]],
    references: Sequence[Reference],
    *,
    methods: Sequence[str] | None = None,
    rule: AlignmentRule = AlignmentRule(),
    lines: Iterable[int] | None = None,
    progress: Callable[[Iterable], Iterable] = iter,
) -> dict:
    """The AER table of each method against each reference: {reference: {method: table}} (see `table`).

    corpus: (source tokens, target tokens) per corpus line; `lines`, the lines to run (default: every line a
    reference covers). InputError when a method is not the model's or a reference link is outside its pair.
    """
    description = model.describe()
    if "cross" not in description.kinds:
        raise InputError(f"model {description.name} has no cross-attention: there is nothing to align with")
    declared = model_methods(description)
    methods = tuple(methods or declared)
    unknown = [m for m in methods if m not in declared]
    if unknown:
        raise InputError(f"model {description.name} has no method {', '.join(unknown)}; its methods: {', '.join(declared)}")
    covered = sorted({ref.start + k for ref in references for k in range(len(ref.alignments))})
    wanted = sorted(set(covered if lines is None else lines) & set(covered))
    if not wanted:
        raise InputError("no corpus line to run: the references cover none of the lines asked for")
    if wanted[-1] >= len(corpus):
        raise InputError(f"a reference covers corpus line {wanted[-1] + 1} but the corpus has {len(corpus)} lines")
    for ref in references:
        if not any(0 <= line - ref.start < len(ref.alignments) for line in wanted):
            raise InputError(f"{ref.path} covers none of the lines run (corpus lines {wanted[0] + 1}–{wanted[-1] + 1})")
    marker = description.tokens.subword_marker
    tallies = {(ref.name, m): _Tally() for ref in references for m in methods}
    for line in progress(wanted):
        source, target = corpus[line]
        golds = [(ref, ref.alignments[line - ref.start]) for ref in references if 0 <= line - ref.start < len(ref.alignments)]
        for ref, gold in golds:
            check_bounds(gold, len(source), len(target), f"{ref.path} line {line - ref.start + 1}")
        for method in methods:
            result = model.attention(" ".join(source), " ".join(target), **_forced_kwargs(method))
            try:
                source_words = corpus_positions(result.source_tokens, source, marker)
                target_words = corpus_positions(result.target_tokens, target, marker)
            except ValueError as exc:
                raise InputError(f"corpus line {line + 1}: {exc}") from None
            cross = result.maps["cross"]  # (L, H, T, S)
            if rule.shift_att:
                cross = shift_rows(cross)
            layers, heads = cross.shape[:2]
            for layer in range(layers):
                for head in (*range(heads), MEAN):
                    weights = head_map(cross, layer, head)
                    weighted = weighted_links(weights, result.source_tokens, result.target_tokens, rule.threshold)
                    links = to_corpus(links_of(weighted), source_words, target_words)
                    for ref, gold in golds:
                        tallies[ref.name, method].add(layer, head, links, gold)
    return {
        ref.name: {
            "reference": ref.path,
            "sentences": sum(1 for line in wanted if 0 <= line - ref.start < len(ref.alignments)),
            "rule": rule.describe(),
            "methods": {m: table(tallies[ref.name, m]) for m in methods},
        }
        for ref in references
    }


def table(tally: _Tally) -> dict:
    """Per layer its mean-of-heads and per-head scores; `best` over every (layer, head) and `best_mean` over the
    layer means (what a page opening a layer's mean shows first). The lowest AER wins, the first on a tie."""
    scores = {key: counts.scores().rounded() for key, counts in tally.counts.items()}
    layers = sorted({layer for layer, _ in scores})
    rows = []
    for layer in layers:
        heads = sorted(h for l_, h in scores if l_ == layer and h != MEAN)
        rows.append({"layer": layer, "mean": scores[layer, MEAN], "heads": [{"head": h, **scores[layer, h]} for h in heads]})
    best_key = min(scores, key=lambda key: (scores[key]["aer"], key[0], key[1] == MEAN, key[1] if key[1] != MEAN else 0))
    best_mean = min(layers, key=lambda layer: (scores[layer, MEAN]["aer"], layer))
    return {
        "layers": rows,
        "best": {"layer": best_key[0], "head": best_key[1], **scores[best_key]},
        "best_mean": {"layer": best_mean, **scores[best_mean, MEAN]},
    }
