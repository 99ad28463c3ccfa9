"""backends.alignment on hand-made cases whose links and AER are worked out by hand."""

from __future__ import annotations

import pytest
import torch

from backends.alignment import (
    Counts,
    GoldAlignment,
    PharaohError,
    alignment_error_rate,
    check_bounds,
    corpus_positions,
    format_pharaoh,
    grow_diag_final_and,
    head_map,
    links_of,
    parse_pharaoh_line,
    read_pharaoh,
    shift_rows,
    to_corpus,
    weighted_links,
)
from backends.interface import Token


def token(text: str, special: bool = False) -> Token:
    return Token(text=text, id=0, unknown=False, special=special)


SOURCE = [token("tea"), token("please"), token("</s>", special=True)]
TARGET = [token("お"), token("茶"), token("</s>", special=True)]
CROSS = torch.tensor(
    [  # columns: tea, please, </s>
        [0.1, 0.3, 0.6],  # お: </s> is highest; the best word is please
        [0.5, 0.2, 0.3],  # 茶
        [0.9, 0.05, 0.05],  # </s> row
    ]
)


def gold(sure: set, possible: set = frozenset()) -> GoldAlignment:
    return GoldAlignment(frozenset(sure), frozenset(sure | possible))


# --- links from a map ---------------------------------------------------------------------------


def test_argmax_leaves_out_special_rows_and_columns():
    links = weighted_links(CROSS, SOURCE, TARGET)
    assert links_of(links) == {(1, 0), (0, 1)}
    # shares are over the source words only: お 0.3 / (0.1 + 0.3)
    assert [round(link.share, 4) for link in links] == [0.75, round(0.5 / 0.7, 4)]


def test_shift_att_reads_the_row_where_the_token_is_the_decoder_input():
    shifted = shift_rows(CROSS)
    assert torch.equal(shifted[0], CROSS[1]) and torch.equal(shifted[1], CROSS[2]) and not shifted[2].any()
    # お is read from 茶's row (where お is the input), 茶 from the </s> row
    assert links_of(weighted_links(shifted, SOURCE, TARGET)) == {(0, 0), (0, 1)}


def test_threshold_keeps_every_link_over_its_share_of_the_row():
    assert links_of(weighted_links(CROSS, SOURCE, TARGET, threshold=0.2)) == {(0, 0), (1, 0), (0, 1), (1, 1)}
    assert links_of(weighted_links(CROSS, SOURCE, TARGET, threshold=0.5)) == {(1, 0), (0, 1)}
    assert weighted_links(CROSS, SOURCE, TARGET, threshold=0.99) == []


def test_rows_not_normalised_give_the_same_links_as_normalised_ones():
    scaled = CROSS * torch.tensor([[3.0], [0.2], [1.0]])
    scaled_links, plain_links = (weighted_links(m, SOURCE, TARGET, threshold=0.2) for m in (scaled, CROSS))
    assert links_of(scaled_links) == links_of(plain_links)
    assert [link.share for link in scaled_links] == pytest.approx([link.share for link in plain_links])


def test_a_row_with_no_weight_has_no_link_and_a_wrong_shape_is_refused():
    empty = CROSS.clone()
    empty[0, :2] = 0
    assert links_of(weighted_links(empty, SOURCE, TARGET)) == {(0, 1)}
    with pytest.raises(ValueError, match="2 target × 3 source"):
        weighted_links(CROSS, SOURCE, TARGET[:2])


def test_head_map_picks_a_head_or_the_layer_mean():
    cross = torch.arange(2 * 2 * 1 * 2, dtype=torch.float).reshape(2, 2, 1, 2)  # (L, H, Tq, Tk)
    assert head_map(cross, 1, 0).tolist() == [[4.0, 5.0]]
    assert head_map(cross, 1, "mean").tolist() == [[5.0, 6.0]]


# --- model tokens and corpus tokens ---------------------------------------------------------------


def test_corpus_positions_follow_pieces_and_normalisation():
    # "Tea" lowercased, 緑茶 read as two pieces, ！ written half-width by the model: all map back by characters.
    model = [token("tea"), token("緑"), token("茶"), token("!"), token("</s>", special=True)]
    assert corpus_positions(model, ["Tea", "緑茶", "！"]) == [(0,), (1,), (1,), (2,), ()]
    # one model token over two corpus tokens
    assert corpus_positions([token("o'clock")], ["o", "'clock"]) == [(0, 1)]
    # a lone subword marker belongs to the word it begins
    assert corpus_positions([token("is"), token("▁"), token("les"), token("s")], ["is", "less"], "▁") == [(0,), (1,), (1,), (1,)]


def test_corpus_positions_fall_back_to_one_for_one_and_refuse_what_cannot_match():
    assert corpus_positions([token("<unk>"), token("茶")], ["緑", "茶"]) == [(0,), (1,)]
    with pytest.raises(ValueError, match="do not spell the corpus tokens"):
        corpus_positions([token("<unk>")], ["緑", "茶"])


def test_links_between_pieces_become_links_between_words():
    source, target = [(0,), (0,), (1,), ()], [(0,), (1,), (1,), ()]
    assert to_corpus({(0, 0), (1, 1), (2, 2), (3, 3)}, source, target) == {(0, 0), (0, 1), (1, 1)}


# --- Pharaoh files --------------------------------------------------------------------------------


def test_pharaoh_lines_read_sure_and_possible_links():
    assert parse_pharaoh_line("0-0 2?1  3-4\n") == ({(0, 0), (3, 4)}, {(2, 1)})
    assert parse_pharaoh_line("") == (set(), set())
    assert format_pharaoh({(2, 1), (0, 0), (10, 3)}) == "0-0 2-1 10-3"


def test_a_pharaoh_file_with_possible_links_inline(tmp_path):
    path = tmp_path / "gold.talp"
    path.write_text("0-0 1?1\n\n2-0\n", encoding="utf-8")
    assert read_pharaoh(path) == [gold({(0, 0)}, {(1, 1)}), gold(set()), gold({(2, 0)})]


def test_a_pharaoh_file_with_a_separate_possible_file(tmp_path):
    (tmp_path / "sure").write_text("0-0\n1-1\n", encoding="utf-8")
    (tmp_path / "possible").write_text("0-1 1?2\n\n", encoding="utf-8")
    assert read_pharaoh(tmp_path / "sure", tmp_path / "possible") == [gold({(0, 0)}, {(0, 1), (1, 2)}), gold({(1, 1)})]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0-0\n1-1 x\n", r"gold.talp line 2: 'x' is not a link: write i-j \(sure\) or i\?j \(possible\)"),
        ("0-0\n\n\n3--1\n", "gold.talp line 4: '3--1' is not a link"),
        ("1:2\n", "gold.talp line 1: '1:2'"),
        ("-1-2\n", "gold.talp line 1"),
    ],
)
def test_pharaoh_errors_name_the_line(tmp_path, text, message):
    path = tmp_path / "gold.talp"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PharaohError, match=message):
        read_pharaoh(path)


def test_pharaoh_file_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(PharaohError, match="cannot be read"):
        read_pharaoh(tmp_path / "missing.talp")
    (tmp_path / "sure").write_text("0-0\n1-1\n", encoding="utf-8")
    (tmp_path / "possible").write_text("0-1\n", encoding="utf-8")
    with pytest.raises(PharaohError, match="possible has 1 lines but sure has 2"):
        read_pharaoh(tmp_path / "sure", tmp_path / "possible")
    (tmp_path / "possible").write_text("0-1\n\n", encoding="utf-8")
    (tmp_path / "sure").write_text("0-0\n1?1\n", encoding="utf-8")
    with pytest.raises(PharaohError, match="sure line 2: i\\?j links in a sure file"):
        read_pharaoh(tmp_path / "sure", tmp_path / "possible")


def test_a_link_past_the_sentence_names_the_line():
    check_bounds(gold({(1, 2)}), 2, 3, "gold.talp line 7")
    with pytest.raises(PharaohError, match="gold.talp line 7: link 2-0 is outside the pair \\(2 source and 3 target"):
        check_bounds(gold({(0, 0)}, {(2, 0)}), 2, 3, "gold.talp line 7")


# --- AER ------------------------------------------------------------------------------------------


def test_aer_of_a_perfect_alignment_is_zero():
    reference = gold({(0, 0), (1, 2)}, {(2, 1)})
    counts = Counts()
    counts.add({(0, 0), (1, 2)}, reference)
    assert (counts.scores().aer, counts.scores().precision, counts.scores().recall) == (0.0, 1.0, 1.0)
    # the possible links may be left out or predicted: both are perfect
    counts.add({(0, 0), (1, 2), (2, 1)}, reference)
    assert counts.scores().aer == 0.0


def test_aer_of_an_empty_alignment_is_one_and_of_nothing_at_all_undefined():
    counts = Counts()
    counts.add(set(), gold({(0, 0), (1, 1)}))
    assert (counts.scores().aer, counts.scores().precision, counts.scores().recall) == (1.0, 0.0, 0.0)
    nothing = Counts()
    nothing.add(set(), gold(set(), {(0, 0)}))
    with pytest.raises(ValueError, match="AER is undefined"):
        nothing.scores()


def test_aer_of_a_partial_alignment_with_possible_links():
    # A = {0-0, 1-1, 2-1, 3-3}, S = {0-0, 1-2}, P = S ∪ {1-1, 2-2}:
    # |A∩S| = 1, |A∩P| = 2 (0-0, 1-1), |A| = 4, |S| = 2: AER = 1 - 3 / 6
    scores = alignment_error_rate([{(0, 0), (1, 1), (2, 1), (3, 3)}], [{(0, 0), (1, 2)}], [{(1, 1), (2, 2)}])
    assert scores.aer == pytest.approx(0.5)
    assert (scores.precision, scores.recall) == pytest.approx((2 / 4, 1 / 2))


def test_aer_with_sure_equal_to_possible_is_one_minus_f1():
    reference = [{(0, 0), (1, 2)}]
    scores = alignment_error_rate([{(0, 0), (1, 1), (2, 1)}], reference, reference)
    assert scores.aer == pytest.approx(1 - 2 / 5)
    assert (scores.precision, scores.recall) == pytest.approx((1 / 3, 1 / 2))


def test_aer_counts_links_over_the_corpus_not_per_sentence():
    # Sentence 1 is perfect, sentence 2 all wrong: the mean per sentence would be 0.5; counts give 1 - 2 / 6.
    predicted = [{(0, 0)}, {(0, 0), (1, 0), (2, 0)}]
    reference = [{(0, 0)}, {(2, 1)}]
    assert alignment_error_rate(predicted, reference, reference).aer == pytest.approx(2 / 3)


# --- grow-diag-final-and --------------------------------------------------------------------------


def links(text: str) -> set:
    return parse_pharaoh_line(text)[0]


def test_grow_diag_final_and_grows_from_the_intersection_then_adds_lone_links():
    forward = links("0-0 1-1 3-4")
    reverse = links("0-0 1-1 1-2 0-1 2-4")
    # From the intersection {0-0, 1-1}, 1-2 grows (target 2 unaligned); 0-1 joins two aligned words, so it
    # stays out; 3-4 (no aligned neighbour) comes in by final-and, after which 2-4 finds target 4 aligned.
    assert grow_diag_final_and(forward, reverse) == links("0-0 1-1 1-2 3-4")


def test_grow_diag_final_and_follows_diagonals_and_grows_from_what_it_added():
    forward = links("0-0 1-1 3-4")
    reverse = links("0-0 1-1 1-2 0-1 2-4 2-3")
    # 2-3 touches 1-2 corner to corner, then 2-4 (target 4 unaligned) and 3-4 (source 3 unaligned) grow from 2-3.
    assert grow_diag_final_and(forward, reverse) == links("0-0 1-1 1-2 2-3 2-4 3-4")


def test_grow_diag_final_and_final_step_needs_both_words_unaligned():
    # Intersection empty: nothing grows; forward's 0-0 comes in, then reverse's 0-1 (source 0 aligned) does not,
    # reverse's 2-2 does. Growing ("diag" without "final-and") would have taken 0-1 as a neighbour of 0-0,
    # but growing only starts from the intersection.
    assert grow_diag_final_and(links("0-0"), links("0-1 2-2")) == links("0-0 2-2")


def test_grow_diag_final_and_of_agreeing_or_empty_directions():
    forward = links("0-0 1-2 2-1")
    assert grow_diag_final_and(forward, forward) == forward
    assert grow_diag_final_and(set(), set()) == set()
    assert grow_diag_final_and(forward, set()) == forward  # nothing to intersect: final-and keeps one-to-one links


def test_grow_diag_final_and_takes_a_many_to_one_link_next_to_the_intersection():
    # Japanese splits one English word into morphemes: 送 っ た for "sent". Forward links all three, reverse one.
    forward = links("0-0 1-1 1-2 1-3")
    reverse = links("0-0 1-1")
    assert grow_diag_final_and(forward, reverse) == forward
