import json

import pytest

from model.card_figures import length_summary, main, training_lengths
from tests.conftest import write_model_dir


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
