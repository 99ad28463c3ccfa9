"""Word alignments for any model: links read off a cross map, Pharaoh files, AER and grow-diag-final-and.

Pure functions over the interface's types (backends.interface): a cross map is (Tq, Tk), rows the produced
target tokens, columns the source tokens, as KIND_AXES says. Nothing here runs a model.

A link is (source index, target index), English (source) first as in Pharaoh/TALP files (`i-j` sure, `i?j`
possible, 0-based), the convention of Och & Ney 2003 and of the files eflomal and fast_align write.

- **Argmax** (Garg et al. 2019, "Jointly Learning to Align and Translate with Transformer Models"): each
  target token is linked to the source token of its row's largest weight.
- **Threshold**: every source token whose share of the row is over the threshold. The share is the weight over
  the row's sum across the source tokens taken part (special tokens left out), so one threshold means the same
  for a method whose rows are not normalised (the norm-based maps of Kobayashi et al. 2020).
- **Shift-Att** (Chen et al. 2020, "Accurate Word Alignment Induction from Neural Machine Translation"): the
  target token t is read from the row of the step where it is the decoder's *input*, which is row t + 1 here
  (row t is the step that produced it, from the input t - 1).

Special tokens (</s>, language codes) are left out on both sides, as in Garg et al. and Chen et al.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from backends.interface import AttentionResult, Method, Token

Link = tuple[int, int]  # (source index, target index)

# --- which cross map --------------------------------------------------------------------------
#
# A map to read is (layer, head): head a head index or MEAN of a layer's per-head maps (weights, norms), LAYER the
# layer's own map where the method has one (norms ‖Σ_h α f_h(x)‖, alti's cross-attention block contributions over
# the source), or CONTRIBUTIONS: the per-token source contributions of alti (composed through every layer) and
# saliency, which have no layer (None).
MEAN, LAYER, CONTRIBUTIONS = "mean", "layer", "contributions"
Head = int | str
HEADS = "heads"  # the per-head maps, and so their MEAN
# What each method of backends.interface gives to read alignments from, in the order a default is taken.
METHOD_READINGS: dict[Method, tuple[str, ...]] = {
    "weights": (HEADS,),
    "norms": (HEADS, LAYER),
    "alti": (LAYER, CONTRIBUTIONS),
    "saliency": (CONTRIBUTIONS,),
}


def head_map(cross: Tensor, layer: int, head: int | str) -> Tensor:
    """cross: (L, H, Tq, Tk) -> (Tq, Tk): one head of one layer, or "mean" over the layer's heads."""
    weights = cross[layer]  # (H, Tq, Tk)
    return weights.mean(0) if head == MEAN else weights[head]


def cross_readings(result: AttentionResult) -> list[tuple[int | None, Head]]:
    """Every (layer, head) of `result` that a word alignment can be read from, layer by layer."""
    per_head, layer_maps = result.maps.get("cross"), result.layer_maps.get("cross")
    layers = per_head.shape[0] if per_head is not None else layer_maps.shape[0] if layer_maps is not None else 0
    readings: list[tuple[int | None, Head]] = []
    for layer in range(layers):
        if per_head is not None:
            readings += [(layer, head) for head in range(per_head.shape[1])] + [(layer, MEAN)]
        if layer_maps is not None:
            readings.append((layer, LAYER))
    if result.contributions is not None:
        readings.append((None, CONTRIBUTIONS))
    return readings


def cross_map(result: AttentionResult, layer: int | None, head: Head) -> Tensor:
    """(T, S), rows target_tokens, columns source_tokens: the map `(layer, head)` names (see cross_readings)."""
    if head == CONTRIBUTIONS:
        return result.contributions.source
    if head == LAYER:
        return result.layer_maps["cross"][layer]
    return head_map(result.maps["cross"], layer, head)


def shift_rows(weights: Tensor) -> Tensor:
    """(..., Tq, Tk) -> the same shape, row t holding row t + 1 (Shift-Att); the last row has no next one: zeros."""
    return torch.cat([weights[..., 1:, :], torch.zeros_like(weights[..., :1, :])], dim=-2)


def shift_att(result: AttentionResult) -> AttentionResult:
    """`result` with the rows of every map alignments are read from moved one step (Shift-Att): cross maps, the
    cross layer maps, and the contributions' source rows."""
    maps = {**result.maps, **({"cross": shift_rows(result.maps["cross"])} if "cross" in result.maps else {})}
    layer_maps = {**result.layer_maps}
    if "cross" in layer_maps:
        layer_maps["cross"] = shift_rows(layer_maps["cross"])
    contributions = result.contributions
    if contributions is not None:
        contributions = replace(contributions, source=shift_rows(contributions.source))
    return replace(result, maps=maps, layer_maps=layer_maps, contributions=contributions)


@dataclass(frozen=True)
class WeightedLink:
    source: int  # index into the source tokens
    target: int  # index into the target tokens
    share: float  # the link's weight over its row's sum across the source tokens taken part


def weighted_links(
    weights: Tensor, source_tokens: Sequence[Token], target_tokens: Sequence[Token], threshold: float | None = None
) -> list[WeightedLink]:
    """weights: (Tq, Tk), rows target_tokens, columns source_tokens (shift the rows first for Shift-Att).

    threshold None: each target token's argmax (the first one on a tie); else every link whose share is over it.
    Special tokens are left out of rows and columns; a row with no weight on the other columns has no link.
    """
    if weights.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(f"a map of {tuple(weights.shape)} for {len(target_tokens)} target × {len(source_tokens)} source tokens")
    columns = [j for j, token in enumerate(source_tokens) if not token.special]
    rows = [i for i, token in enumerate(target_tokens) if not token.special]
    if not columns or not rows:
        return []
    kept = weights[rows][:, columns].double()  # (R, C)
    totals = kept.sum(-1, keepdim=True)  # (R, 1)
    shares = torch.where(totals > 0, kept / totals.clamp_min(1e-300), torch.zeros_like(kept))
    links = []
    for r, row in enumerate(shares.tolist()):
        if totals[r, 0] <= 0:
            continue
        if threshold is None:
            best = max(range(len(row)), key=row.__getitem__)
            links.append(WeightedLink(columns[best], rows[r], row[best]))
        else:
            links.extend(WeightedLink(columns[c], rows[r], share) for c, share in enumerate(row) if share > threshold)
    return links


def links_of(weighted: Iterable[WeightedLink]) -> set[Link]:
    return {(link.source, link.target) for link in weighted}


# --- model tokens back to corpus tokens -------------------------------------------------------


def _normal(text: str) -> str:
    """What both sides are compared in: NFKC (full-width ！ and ５ as ! and 5), lowercase, no spaces."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def corpus_positions(tokens: Sequence[Token], corpus: Sequence[str], subword_marker: str | None = None) -> list[tuple[int, ...]]:
    """For each model token, the corpus tokens it covers (() for a special token), matched by characters.

    The model may read a corpus token as several (a subword model's pieces, the built-in model's segmentation
    of a Japanese word it does not know) or change its characters (lowercasing, NFKC): both sides are compared
    in NFKC lowercase. A piece that is only the model's `subword_marker` (sentencepiece's lone "▁") belongs to
    the word it begins. ValueError when the characters differ and the counts do too.
    """
    owners = [k for k, word in enumerate(corpus) for _ in _normal(word)]
    shown = [token for token in tokens if not token.special]
    texts = {id(t): "" if t.text == subword_marker else _normal(t.text) for t in shown}
    if "".join(texts[id(t)] for t in shown) != "".join(_normal(w) for w in corpus):
        if len(shown) != len(corpus):
            raise ValueError(
                f"the model's tokens ({' '.join(t.text for t in shown)}) do not spell the corpus tokens ({' '.join(corpus)})"
            )
        words = iter(range(len(corpus)))  # the same count: one for one (an <unk> the model writes as such)
        return [() if token.special else (next(words),) for token in tokens]
    positions, at = [], 0
    for token in tokens:
        if token.special:
            positions.append(())
            continue
        width = len(texts[id(token)])
        positions.append(tuple(dict.fromkeys(owners[at : at + max(1, width)])))
        at += width
    return positions


def to_corpus(links: Iterable[Link], source: Sequence[tuple[int, ...]], target: Sequence[tuple[int, ...]]) -> set[Link]:
    """Links between model tokens as links between the corpus tokens they cover: corpus words are linked when
    any of their pieces are (as Garg et al. 2019 and Chen et al. 2020 turn subword links into word links)."""
    return {(i, j) for s, t in links for i in source[s] for j in target[t]}


# --- Pharaoh / TALP files ----------------------------------------------------------------------


class PharaohError(ValueError):
    """A Pharaoh/TALP alignment file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class GoldAlignment:
    """One sentence pair's reference links; `possible` includes `sure` (S ⊆ P, as AER assumes)."""

    sure: frozenset[Link]
    possible: frozenset[Link]


def parse_pharaoh_line(text: str, where: str = "") -> tuple[set[Link], set[Link]]:
    """`0-0 1?2` -> (sure {(0, 0)}, possible-only {(1, 2)}); `where` ("gold.talp line 3") prefixes an error."""
    sure: set[Link] = set()
    possible: set[Link] = set()
    for item in text.split():
        separator = "-" if "-" in item else "?"
        i, _, j = item.partition(separator)
        if not (i.isdigit() and j.isdigit()):
            prefix = f"{where}: " if where else ""
            raise PharaohError(f"{prefix}{item!r} is not a link: write i-j (sure) or i?j (possible), 0-based, source first")
        (sure if separator == "-" else possible).add((int(i), int(j)))
    return sure, possible


def read_pharaoh(path: str | Path, possible_path: str | Path | None = None) -> list[GoldAlignment]:
    """A Pharaoh/TALP file, line n for sentence pair n: `i-j` sure, `i?j` possible. With `possible_path` (the
    two-file convention of the NAACL 2003 / WPT 2005 shared tasks) every link of the first file is sure and the
    second file's `i-j` are possible. PharaohError names the file and the line of anything unreadable."""
    path = Path(path)
    lines = _lines(path)
    extra = _lines(Path(possible_path)) if possible_path is not None else None
    if extra is not None and len(extra) != len(lines):
        raise PharaohError(f"{possible_path} has {len(extra)} lines but {path.name} has {len(lines)}: one line per sentence pair")
    alignments = []
    for n, line in enumerate(lines):
        sure, possible = parse_pharaoh_line(line, f"{path.name} line {n + 1}")
        if extra is not None:
            if possible:
                raise PharaohError(f"{path.name} line {n + 1}: i?j links in a sure file; put possible links in {possible_path}")
            more_sure, more_possible = parse_pharaoh_line(extra[n], f"{Path(possible_path).name} line {n + 1}")
            possible = more_sure | more_possible
        alignments.append(GoldAlignment(frozenset(sure), frozenset(sure | possible)))
    return alignments


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PharaohError(f"{path} cannot be read: {exc}") from None
    return text.splitlines()


def check_bounds(gold: GoldAlignment, source_length: int, target_length: int, where: str) -> None:
    """PharaohError when a link points past the sentence pair (`where`: "gold.talp line 3")."""
    for i, j in sorted(gold.possible):
        if i >= source_length or j >= target_length:
            raise PharaohError(
                f"{where}: link {i}-{j} is outside the pair ({source_length} source and {target_length} target tokens, "
                "0-based): is the file in source-target order, with line n for sentence n?"
            )


def format_pharaoh(links: Iterable[Link]) -> str:
    """{(2, 1), (0, 0)} -> `0-0 2-1`."""
    return " ".join(f"{i}-{j}" for i, j in sorted(links))


# --- scores --------------------------------------------------------------------------------------


@dataclass
class Counts:
    """What AER is made of, summed over a corpus: |A|, |S|, |A∩S|, |A∩P|."""

    predicted: int = 0
    sure: int = 0
    predicted_sure: int = 0
    predicted_possible: int = 0

    def add(self, predicted: set[Link], gold: GoldAlignment) -> None:
        self.predicted += len(predicted)
        self.sure += len(gold.sure)
        self.predicted_sure += len(predicted & gold.sure)
        self.predicted_possible += len(predicted & gold.possible)

    def scores(self) -> Scores:
        if self.predicted + self.sure == 0:
            raise ValueError("no links to score: the reference and the alignment are both empty, and AER is undefined")
        return Scores(
            aer=1 - (self.predicted_sure + self.predicted_possible) / (self.predicted + self.sure),
            precision=self.predicted_possible / self.predicted if self.predicted else 0.0,
            recall=self.predicted_sure / self.sure if self.sure else 0.0,
        )


@dataclass
class Scores:
    aer: float
    precision: float
    recall: float

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in vars(self).items()}


def alignment_error_rate(predicted: list[set[Link]], sure: list[set[Link]], possible: list[set[Link]]) -> Scores:
    """Och & Ney 2003, over a corpus: AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|), precision |A∩P| / |A|,
    recall |A∩S| / |S|; the possible links are taken with the sure ones (P ⊇ S)."""
    counts = Counts()
    for a, s, p in zip(predicted, sure, possible, strict=True):
        counts.add(a, GoldAlignment(frozenset(s), frozenset(s | p)))
    return counts.scores()


# --- symmetrisation ------------------------------------------------------------------------------

_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def grow_diag_final_and(forward: set[Link], reverse: set[Link]) -> set[Link]:
    """grow-diag-final-and (Koehn et al. 2003; Koehn 2005, as the Moses training pipeline defines it), on the
    links of the two directions, both written source-target:

        GROW-DIAG: from the intersection, sweep the grid (source, then target order) again and again until no
          link is added; at each link, add each neighbour (diagonals included) that is in the union and aligns
          a source or a target word not yet aligned.
        FINAL-AND: for each direction, forward then reverse, add its links whose source and target words are
          both still unaligned.

    Pure; grid order makes the result depend only on the two sets.
    """
    union = forward | reverse
    links = forward & reverse
    aligned_source = {i for i, _ in links}
    aligned_target = {j for _, j in links}

    def add(i: int, j: int) -> None:
        links.add((i, j))
        aligned_source.add(i)
        aligned_target.add(j)

    if not union:
        return set()
    rows = range(max(i for i, _ in union) + 1)
    columns = range(max(j for _, j in union) + 1)
    grown = True
    while grown:
        grown = False
        for i in rows:
            for j in columns:
                if (i, j) not in links:
                    continue
                for di, dj in _NEIGHBOURS:
                    new = (i + di, j + dj)
                    if new in union and new not in links and (new[0] not in aligned_source or new[1] not in aligned_target):
                        add(*new)
                        grown = True
    for direction in (forward, reverse):
        for i, j in sorted(direction):
            if i not in aligned_source and j not in aligned_target:
                add(i, j)
    return links
