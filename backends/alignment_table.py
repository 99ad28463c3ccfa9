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
    CONTRIBUTIONS,
    LAYER,
    MEAN,
    Counts,
    GoldAlignment,
    Head,
    check_bounds,
    corpus_positions,
    cross_map,
    cross_readings,
    links_of,
    shift_att,
    to_corpus,
    weighted_links,
)
from backends.interface import DEFAULT_SALIENCY, AttentionResult, InputError, ModelDescription, SaliencyOptions, TranslationModel


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
    saliency: SaliencyOptions = DEFAULT_SALIENCY,
    lines: Iterable[int] | None = None,
    progress: Callable[[Iterable], Iterable] = iter,
    observe: Callable[[int, AttentionResult], None] | None = None,
) -> dict:
    """The AER table of each method against each reference: {reference: {method: table}} (see `table`).

    corpus: (source tokens, target tokens) per corpus line; `lines`, the lines to run (default: every line a
    reference covers); `observe(line, result)` sees every result, for figures of the same run.
    InputError when a method is not the model's; PharaohError when a reference link is outside its pair.
    """
    description = model.describe()
    if "cross" not in description.kinds:
        raise InputError(f"model {description.name} has no cross-attention: there is nothing to align with")
    declared = description.methods
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

    def golds(line: int) -> list[tuple[Reference, GoldAlignment]]:
        return [(ref, ref.alignments[line - ref.start]) for ref in references if 0 <= line - ref.start < len(ref.alignments)]

    for line in wanted:  # every file checked before the first model call
        source, target = corpus[line]
        for ref, gold in golds(line):
            check_bounds(gold, len(source), len(target), f"{ref.path} line {line - ref.start + 1}")
    for line in progress(wanted):
        source, target = corpus[line]
        for method in methods:
            result = model.attention(" ".join(source), " ".join(target), method=method, saliency=saliency)
            if observe is not None:
                observe(line, result)
            try:
                source_words = corpus_positions(result.source_tokens, source, marker)
                target_words = corpus_positions(result.target_tokens, target, marker)
            except ValueError as exc:
                raise InputError(f"corpus line {line + 1}: {exc}") from None
            if rule.shift_att:
                result = shift_att(result)
            for layer, head in cross_readings(result):
                weights = cross_map(result, layer, head)  # (T, S)
                weighted = weighted_links(weights, result.source_tokens, result.target_tokens, rule.threshold)
                links = to_corpus(links_of(weighted), source_words, target_words)
                for ref, gold in golds(line):
                    tallies[ref.name, method].add(layer, head, links, gold)
    tables = {}
    for ref in references:
        sentences = sum(1 for line in wanted if 0 <= line - ref.start < len(ref.alignments))
        tables[ref.name] = {
            "reference": ref.path,
            "sentences": sentences,
            "rule": rule.describe(),
            "methods": {m: {"sentences": sentences, **_saliency(m, saliency), **table(tallies[ref.name, m])} for m in methods},
        }
    return tables


def _saliency(method: str, options: SaliencyOptions) -> dict:
    """How a saliency table was computed (its algorithm makes the figure)."""
    if method != "saliency":
        return {}
    return {"saliency": {"algorithm": options.algorithm, "steps": options.steps}}


NAMED_HEADS = (MEAN, LAYER, CONTRIBUTIONS)


def _order(key: tuple[int | None, Head]) -> tuple:
    """Layers in order, contributions (no layer) last; in a layer its heads, then the mean, then the layer's map."""
    layer, head = key
    return (layer is None, layer or 0, isinstance(head, str), NAMED_HEADS.index(head) if isinstance(head, str) else head)


def table(tally: _Tally) -> dict:
    """`scores`: every (layer, head) read, in order; `best` the lowest AER of them all (the first on a tie) and
    `best_mean` the lowest of the layer means over heads (what a page opening a layer's mean shows first), where
    the method has per-head maps."""
    keys = sorted(tally.counts, key=_order)
    scores = [{"layer": layer, "head": head, **tally.counts[layer, head].scores().rounded()} for layer, head in keys]
    best = min(scores, key=lambda row: row["aer"])
    means = [row for row in scores if row["head"] == MEAN]
    return {"scores": scores, "best": best, **({"best_mean": min(means, key=lambda row: row["aer"])} if means else {})}
