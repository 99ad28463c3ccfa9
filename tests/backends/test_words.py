"""backends.words on hand-made AttentionResults with numbers worked out by hand."""

from __future__ import annotations

from dataclasses import replace

import torch

from backends.interface import AttentionResult, Contributions, Token
from backends.words import merge_words, word_spans


def piece(text: str, token_id: int, word_start: bool = True, special: bool = False, unknown: bool = False) -> Token:
    return Token(text=text, id=token_id, unknown=unknown, special=special, word_start=word_start)


# source: "▁play" "ing" "▁tea" "</s>" -> words playing | tea | </s>
SOURCE = [piece("play", 10), piece("ing", 11, word_start=False), piece("tea", 12, unknown=True), piece("</s>", 2, special=True)]
# target: "▁" "お" "茶" "</s>" (a lone marker piece, then a piece that continues its word)
TARGET = [piece("▁", 20), piece("お", 21, word_start=False), piece("茶", 22), piece("</s>", 2, special=True)]
DECODER_INPUT = [piece("<pad>", 0, special=True), *TARGET[:-1]]

CROSS = torch.tensor(
    [  # rows: ▁ お 茶 </s>; columns: play ing tea </s>
        [0.1, 0.2, 0.3, 0.4],
        [0.5, 0.1, 0.2, 0.2],
        [0.0, 0.0, 1.0, 0.0],
        [0.25, 0.25, 0.25, 0.25],
    ]
)
ENCODER = torch.tensor(
    [  # rows and columns: play ing tea </s>
        [0.4, 0.2, 0.2, 0.2],
        [0.2, 0.6, 0.1, 0.1],
        [0.1, 0.1, 0.7, 0.1],
        [0.0, 0.5, 0.0, 0.5],
    ]
)
DECODER = torch.tensor(
    [  # rows: ▁ お 茶 </s>; columns: <pad> ▁ お 茶 (causal)
        [1.0, 0.0, 0.0, 0.0],
        [0.6, 0.4, 0.0, 0.0],
        [0.2, 0.3, 0.5, 0.0],
        [0.1, 0.2, 0.3, 0.4],
    ]
)


def result() -> AttentionResult:
    def two_layers(weights: torch.Tensor) -> torch.Tensor:  # (L=2, H=1, Tq, Tk): layer 2 has each row reversed
        return torch.stack([weights, weights.flip(-1)]).unsqueeze(1)

    return AttentionResult(
        source_tokens=SOURCE,
        target_tokens=TARGET,
        decoder_input_tokens=DECODER_INPUT,
        translation="お茶",
        forced=True,
        score=-3.5,
        maps={"encoder": two_layers(ENCODER), "decoder": two_layers(DECODER), "cross": two_layers(CROSS)},
        controls={},
        predictions={},
    )


def test_word_spans_follow_word_start_and_keep_special_tokens_alone():
    assert word_spans(SOURCE) == [[0, 1], [2], [3]]
    assert word_spans(TARGET) == [[0, 1], [2], [3]]
    assert word_spans(DECODER_INPUT) == [[0], [1, 2], [3]]
    # a piece after a special token begins a word even when it says it continues one
    assert word_spans([piece("__ja__", 5, special=True), piece("x", 6, word_start=False)]) == [[0], [1]]


def test_merged_tokens():
    merged = merge_words(result(), subword_marker="▁")
    assert [token.text for token in merged.source_tokens] == ["playing", "tea", "</s>"]
    assert [token.id for token in merged.source_tokens] == [10, 12, 2]
    assert [token.unknown for token in merged.source_tokens] == [False, True, False]
    assert [token.text for token in merged.target_tokens] == ["お", "茶", "</s>"]  # the lone "▁" adds no text
    assert [token.special for token in merged.target_tokens] == [False, False, True]
    assert [token.text for token in merged.decoder_input_tokens] == ["<pad>", "お", "茶"]
    assert merge_words(result()).target_tokens[0].text == "▁お"  # without the marker, the text is joined as is
    assert (merged.translation, merged.score, merged.forced) == ("お茶", -3.5, True)


def test_cross_rows_averaged_and_columns_summed():
    cross = merge_words(result()).maps["cross"]
    assert cross.shape == (2, 1, 3, 3)
    expected = torch.tensor(
        [  # rows: お(▁+お averaged) 茶 </s>; columns: playing(play+ing) tea </s>
            [(0.1 + 0.2 + 0.5 + 0.1) / 2, (0.3 + 0.2) / 2, (0.4 + 0.2) / 2],
            [0.0, 1.0, 0.0],
            [0.5, 0.25, 0.25],
        ]
    )
    torch.testing.assert_close(cross[0, 0], expected)
    torch.testing.assert_close(cross.sum(-1), torch.ones(2, 1, 3))


def test_encoder_and_decoder_merge_by_their_own_axes():
    merged = merge_words(result())
    torch.testing.assert_close(
        merged.maps["encoder"][0, 0],
        torch.tensor([[(0.4 + 0.2 + 0.2 + 0.6) / 2, 0.15, 0.15], [0.2, 0.7, 0.1], [0.5, 0.0, 0.5]]),
    )
    decoder = merged.maps["decoder"][0, 0]
    # rows: お(▁,お) 茶 </s>; columns: <pad> | お(▁,お) | 茶
    torch.testing.assert_close(decoder, torch.tensor([[0.8, 0.2, 0.0], [0.2, 0.8, 0.0], [0.1, 0.5, 0.4]]))
    # a word's row comes only from its pieces' rows: the first word's row sees nothing of 茶
    assert decoder[0, 2] == 0
    for kind in ("encoder", "decoder", "cross"):
        torch.testing.assert_close(merged.maps[kind].sum(-1), torch.ones(merged.maps[kind].shape[:-1]))


def test_word_level_tokens_are_unchanged():
    words = [piece("this", 3), piece("is", 4), piece("</s>", 2, special=True)]
    weights = torch.softmax(torch.randn(1, 2, 3, 3), -1)
    unchanged = AttentionResult(
        source_tokens=words,
        target_tokens=words,
        decoder_input_tokens=[piece("<s>", 1, special=True), *words[:-1]],
        translation="this is",
        forced=False,
        score=-1.0,
        maps={"cross": weights},
        controls={},
        predictions={},
    )
    merged = merge_words(unchanged)
    assert merged.source_tokens == words
    torch.testing.assert_close(merged.maps["cross"], weights)


def test_layer_maps_residual_shares_and_contributions_merge_as_the_maps_do():
    """Rows averaged over a word's pieces, columns summed: a cross row ▁ お -> (0.1 + 0.5) / 2 on play, (0.2 + 0.1) / 2
    on ing, so 0.45 on playing; the residual share of ▁ お is the mean of its pieces' shares."""
    merged = merge_words(
        replace(
            result(),
            method="alti",
            layer_maps={"cross": CROSS[None]},
            residual_shares={"cross": torch.tensor([[0.2, 0.4, 0.0, 0.1]])},
            contributions=Contributions(source=CROSS * 0.5, prefix=DECODER * 0.5, normalised=True),
        )
    )
    torch.testing.assert_close(merged.layer_maps["cross"][0, 0], torch.tensor([0.45, 0.25, 0.3]))
    torch.testing.assert_close(merged.residual_shares["cross"][0], torch.tensor([0.3, 0.0, 0.1]))
    contributions = merged.contributions
    torch.testing.assert_close(contributions.source[0], torch.tensor([0.45, 0.25, 0.3]) * 0.5)
    # prefix columns <pad> | ▁ お | 茶 and rows ▁ お | 茶 | </s>: a row's total is kept
    torch.testing.assert_close(contributions.prefix.sum(-1) + contributions.source.sum(-1), torch.ones(3))
    assert contributions.normalised and merged.method == "alti"
