import json

import pytest
import torch

from model.card_figures import (
    alignment_error_rate,
    argmax_links,
    grow_diag_final_and,
    length_summary,
    main,
    parse_links,
    training_lengths,
)
from tests.conftest import write_model_dir


def test_aer_with_sure_and_possible_links():
    # |A| = 3, |S| = 1, |A∩S| = 1, |A∩P| = 2: AER = 1 - (1 + 2) / (3 + 1)
    scores = alignment_error_rate([{(0, 0), (1, 1), (2, 1)}], sure=[{(0, 0)}], possible=[{(1, 1)}])
    assert scores.aer == pytest.approx(0.25)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(1.0)


def test_aer_with_sure_equal_to_possible_is_one_minus_f1():
    reference = [{(0, 0), (1, 2)}]
    scores = alignment_error_rate([{(0, 0), (1, 1), (2, 1)}], reference, reference)
    assert scores.aer == pytest.approx(1 - 2 / 5)
    assert (scores.precision, scores.recall) == pytest.approx((1 / 3, 1 / 2))


def test_aer_counts_links_over_the_corpus_not_per_sentence():
    # Sentence 1 is perfect, sentence 2 all wrong: per-sentence mean would be 0.5; counts give 1 - 2 / 6.
    predicted = [{(0, 0)}, {(0, 0), (1, 0), (2, 0)}]
    reference = [{(0, 0)}, {(2, 1)}]
    assert alignment_error_rate(predicted, reference, reference).aer == pytest.approx(2 / 3)
    perfect = alignment_error_rate(reference, reference, reference)
    assert (perfect.aer, perfect.precision, perfect.recall) == (0.0, 1.0, 1.0)


def test_argmax_links_leave_out_end_of_sentence_and_shift_reads_the_next_row():
    cross = torch.tensor(
        [  # columns: source word 0, source word 1, </s>
            [0.1, 0.3, 0.6],  # target word 0: </s> is highest, the best word is 1
            [0.5, 0.2, 0.3],  # target word 1
            [0.9, 0.05, 0.05],  # </s> row
        ]
    )
    assert argmax_links(cross) == {(1, 0), (0, 1)}
    assert argmax_links(cross, shift=True) == {(0, 0), (0, 1)}


def test_grow_diag_final_and():
    forward = parse_links("0-0 1-1 3-4")
    reverse = parse_links("0-0 1-1 1-2 0-1 2-4")
    # From the intersection {0-0, 1-1}, 1-2 grows (target 2 unaligned); 0-1 joins two aligned words, so it
    # stays out; 3-4 (no neighbour) comes in by final-and, after which 2-4 finds target 4 aligned.
    assert grow_diag_final_and(forward, reverse) == {(0, 0), (1, 1), (1, 2), (3, 4)}
    # Growing follows diagonals and goes on from what it added: 2-3 touches 1-2 corner to corner, then
    # 2-4 (target 4 unaligned) and 3-4 (source 3 unaligned) grow from 2-3.
    assert grow_diag_final_and(forward, reverse | {(2, 3)}) == {(0, 0), (1, 1), (1, 2), (2, 3), (2, 4), (3, 4)}
    assert grow_diag_final_and(forward, forward) == forward


def test_length_summary_uses_nearest_rank_percentiles():
    assert length_summary([7, 3, 10, 1, 2, 4, 5, 6, 9, 8]) == {
        "min": 1,
        "p50": 5,
        "p90": 9,
        "p99": 10,
        "max": 10,
        "count": 10,
    }
    with pytest.raises(ValueError):
        length_summary([])


def test_training_lengths_measure_source_and_target_apart():
    src = [["a"] * n for n in (2, 5, 3)]
    tgt = [["b"] * n for n in (4, 1, 6)]
    lengths = training_lengths(src, tgt)
    assert lengths["source"] == {"min": 2, "p50": 3, "p90": 5, "p99": 5, "max": 5, "count": 3}
    assert lengths["target"] == {"min": 1, "p50": 4, "p90": 6, "p99": 6, "max": 6, "count": 3}


PAIRS = [
    ("this is an example .", "これ は 例 で す 。"),
    ("i like tea !", "私 は お 茶 が 好き ！"),
    ("the cat", "猫"),
    ("the dog", "犬"),
    ("he 's the cat .", "彼 は 猫 で す 。"),
    ("i like the dog .", "私 は 犬 が 好き 。"),
    ("don 't go !", "行 く な ！"),
]


def write_corpus(directory, split, pairs):
    (directory / f"{split}.en").write_text("".join(en + "\n" for en, _ in pairs), encoding="utf-8")
    (directory / f"{split}.ja").write_text("".join(ja + "\n" for _, ja in pairs), encoding="utf-8")


def test_cli_stores_both_figures_in_the_card_and_changes_nothing_else(tmp_path, capsys):
    pytest.importorskip("eflomal", reason="the alignment figure needs eflomal (pip install -e '.[align]')")
    checkpoint = write_model_dir(tmp_path)
    before = json.loads(checkpoint.with_suffix(".json").read_text(encoding="utf-8"))
    write_corpus(tmp_path, "train", PAIRS * 6)
    write_corpus(tmp_path, "dev", PAIRS[:4])

    main(["--data", str(tmp_path), "--checkpoint", str(checkpoint)])

    card = json.loads(checkpoint.with_suffix(".json").read_text(encoding="utf-8"))
    assert {k: v for k, v in card.items() if k not in ("training_lengths", "alignment_by_layer")} == before
    assert card["training_lengths"]["source"] == {"min": 2, "p50": 4, "p90": 5, "p99": 5, "max": 5, "count": 42}
    assert card["training_lengths"]["target"] == {"min": 1, "p50": 6, "p90": 7, "p99": 7, "max": 7, "count": 42}
    alignment = card["alignment_by_layer"]
    assert alignment["dev_sentences"] == 4
    assert alignment["reference"]["symmetrisation"] == "grow-diag-final-and"
    assert [row["layer"] for row in alignment["layers"]] == [0, 1]  # the tiny model has 2 decoder layers
    assert len(alignment["shift_att"]["layers"]) == 2
    for row in alignment["layers"] + alignment["shift_att"]["layers"]:
        p, r = row["precision"], row["recall"]
        assert 0 <= p <= 1 and 0 <= r <= 1
        # sure = possible: AER is 1 - F1 of precision and recall
        assert row["aer"] == pytest.approx(1 - 2 * p * r / (p + r) if p + r else 1.0, abs=2e-4)
    assert alignment["best_layer"] == min(alignment["layers"], key=lambda row: row["aer"])["layer"]
    assert f"best layer (lowest plain AER): {alignment['best_layer']}" in capsys.readouterr().out


def test_cli_refuses_a_checkpoint_without_a_card(tmp_path, capsys):
    checkpoint = write_model_dir(tmp_path)
    checkpoint.with_suffix(".json").unlink()
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--checkpoint", str(checkpoint)])
    assert "no model card beside the checkpoint" in capsys.readouterr().err
