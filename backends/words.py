"""Granularity "word": merge the subword pieces of an AttentionResult into words, for any model.

A piece begins a new word when its Token.word_start is True; a special token (<s>, </s>, a language code) is a
word of its own, and so the piece after it begins one. In every map the columns (keys) of a word's pieces are
summed and its rows (queries) averaged, so each row still sums to 1: the attention a word receives is the total
its pieces receive, and the attention a word pays is the mean of what its pieces pay. This is the rule of Clark et al. 2019
("What Does BERT Look At? An Analysis of BERT's Attention"). Word-alignment work reads subword attention at word
level too (Zenkel et al. 2019, "Adding Interpretable Attention to Neural Translation Models Improves Word
Alignment"; Garg et al. 2019, "Jointly Learning to Align and Translate with Transformer Models"; Kobayashi et al.
2020, "Attention is Not Only a Weight"), there by merging the pieces' hard alignments; summing and averaging keeps
the maps soft.

The decoder map keeps what causality means here: a word's row is made only of its own pieces' rows, each of
which saw only earlier decoder inputs. Because the decoder inputs are the targets shifted by one, a word's row
can weigh the input word holding its own earlier pieces.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from backends.interface import KIND_AXES, AttentionResult, Token


def word_spans(tokens: list[Token]) -> list[list[int]]:
    """The token positions of each word, in order."""
    spans: list[list[int]] = []
    for position, token in enumerate(tokens):
        starts_word = not spans or token.word_start or token.special or tokens[position - 1].special
        if starts_word:
            spans.append([position])
        else:
            spans[-1].append(position)
    return spans


def merge_tokens(tokens: list[Token], spans: list[list[int]], subword_marker: str | None = None) -> list[Token]:
    """One Token per word: pieces' text joined, the first piece's id, unknown if any piece is.

    A piece that is only the subword marker (sentencepiece's lone "▁") adds nothing to the word's text.
    """
    words = []
    for span in spans:
        pieces = [tokens[position] for position in span]
        texts = [piece.text for piece in pieces if len(pieces) == 1 or piece.text != subword_marker]
        readings = [piece.reading for piece in pieces if piece.reading is not None]
        words.append(
            Token(
                text="".join(texts),
                id=pieces[0].id,
                unknown=any(piece.unknown for piece in pieces),
                special=pieces[0].special,
                reading="".join(readings) if readings else None,
                word_start=True,
            )
        )
    return words


def _averaging(spans: list[list[int]], length: int) -> torch.Tensor:
    """(W, T): row w holds 1/|word w| at its pieces' positions."""
    matrix = torch.zeros(len(spans), length)
    for word, span in enumerate(spans):
        matrix[word, span] = 1.0 / len(span)
    return matrix


def _summing(spans: list[list[int]], length: int) -> torch.Tensor:
    """(T, W): column w holds 1 at its pieces' positions."""
    matrix = torch.zeros(length, len(spans))
    for word, span in enumerate(spans):
        matrix[span, word] = 1.0
    return matrix


def merge_words(result: AttentionResult, *, subword_marker: str | None = None) -> AttentionResult:
    """`result` at word granularity: token lists merged into words, every map merged to (L, H, Wq, Wk), layer maps
    to (L, Wq, Wk), and likewise residual shares (rows averaged) and contributions.

    `subword_marker` is the model's TokenConventions.subword_marker (only used to keep lone markers out of words' text).
    """
    axes = {
        "source_tokens": result.source_tokens,
        "target_tokens": result.target_tokens,
        "decoder_input_tokens": result.decoder_input_tokens,
    }
    spans = {axis: word_spans(tokens) for axis, tokens in axes.items()}

    def merged(values: torch.Tensor, rows: str, columns: str | None) -> torch.Tensor:
        """(…, Tq, Tk) -> (…, Wq, Wk): rows averaged, columns summed; columns None: (…, Tq) -> (…, Wq)."""
        average_rows = _averaging(spans[rows], len(axes[rows])).to(values)  # (Wq, Tq)
        if columns is None:
            return (average_rows @ values[..., None])[..., 0]
        return average_rows @ values @ _summing(spans[columns], len(axes[columns])).to(values)  # (Tk, Wk) on the right

    def by_kind(maps: dict) -> dict:
        return {kind: merged(values, KIND_AXES[kind][0], KIND_AXES[kind][1]) for kind, values in maps.items()}

    contributions = result.contributions
    if contributions is not None:  # source and prefix columns summed, rows averaged: a row's total is kept
        contributions = replace(
            contributions,
            source=merged(contributions.source, "target_tokens", "source_tokens"),
            prefix=merged(contributions.prefix, "target_tokens", "decoder_input_tokens"),
        )
    return replace(
        result,
        layer_maps=by_kind(result.layer_maps),  # (L, Wq, Wk)
        residual_shares={kind: merged(v, KIND_AXES[kind][0], None) for kind, v in result.residual_shares.items()},
        contributions=contributions,
        source_tokens=merge_tokens(result.source_tokens, spans["source_tokens"], subword_marker),
        target_tokens=merge_tokens(result.target_tokens, spans["target_tokens"], subword_marker),
        decoder_input_tokens=merge_tokens(result.decoder_input_tokens, spans["decoder_input_tokens"], subword_marker),
        maps=by_kind(result.maps),  # (L, H, Wq, Wk)
    )
