import json

import pytest

from model.card_alignment import main
from tests.conftest import write_model_dir

PAIRS = [
    ("i like tea .", "私 は お 茶 が 好き 。"),
    ("the cat", "猫"),
    ("this is an example .", "これ は 例 で す 。"),
]


def test_stores_the_aer_tables_and_the_literature_checks_and_changes_nothing_else(tmp_path, capsys):
    pytest.importorskip("tqdm")
    checkpoint = write_model_dir(tmp_path)
    before = json.loads(checkpoint.with_suffix(".json").read_text(encoding="utf-8"))
    (tmp_path / "test.en").write_text("".join(en + "\n" for en, _ in PAIRS), encoding="utf-8")
    (tmp_path / "test.ja").write_text("".join(ja + "\n" for _, ja in PAIRS), encoding="utf-8")
    (tmp_path / "gold.talp").write_text("2-0 3?2\n1-0\n", encoding="utf-8")
    (tmp_path / "silver.talp").write_text("0-0 2-3\n1-0\n3-2 4-5\n", encoding="utf-8")
    argv = ["--data", str(tmp_path), "--checkpoint", str(checkpoint), "--saliency-lines", "1"]
    main([*argv, "--gold", str(tmp_path / "gold.talp"), "--silver", str(tmp_path / "silver.talp")])

    card = json.loads(checkpoint.with_suffix(".json").read_text(encoding="utf-8"))
    assert {k: v for k, v in card.items() if k not in ("alignment_aer", "literature_checks")} == before
    tables = card["alignment_aer"]
    assert (tables["gold"]["sentences"], tables["silver"]["sentences"]) == (2, 3)
    assert list(tables["gold"]["methods"]) == ["weights", "norms", "alti", "saliency"]
    assert tables["silver"]["methods"]["saliency"]["sentences"] == 1  # the first --saliency-lines pairs only
    assert tables["gold"]["methods"]["saliency"]["saliency"] == {"algorithm": "input_x_gradient", "steps": None}
    kobayashi = card["literature_checks"]["kobayashi_2020"]["gold"]
    assert [row["layer"] for row in kobayashi] == [0, 1]
    weights = {row["layer"]: row["aer"] for row in tables["gold"]["methods"]["weights"]["scores"] if row["head"] == "mean"}
    assert [row["weights_mean"] for row in kobayashi] == [weights[0], weights[1]]
    ferrando = card["literature_checks"]["ferrando_2022"]
    # one share per produced corpus token, </s> left out: 7 + 1 + 6 tokens over positions 0 to 6
    assert ferrando["tokens"] == 14 and [row["tokens"] for row in ferrando["positions"]] == [3, 2, 2, 2, 2, 2, 1]
    assert all(0 <= row["mean_source_share"] <= 1 for row in ferrando["positions"])
    assert ferrando["within_sentence"]["sentences"] == 2  # 猫 alone has no slope
    assert "ALTI+ source share by position: slope" in capsys.readouterr().out
