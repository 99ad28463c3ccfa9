import json

import pytest

from model.readings import build_readings, load_readings, main, readings_path
from tests.conftest import SHIPPED_CHECKPOINT, TINY_JA, write_model_dir


def test_build_readings_skips_specials_punctuation_and_latin_tokens():
    romaji = {"例": "Rei", "は": "Wa", "。": ".", "abc": "abc", "<s>": "<s>"}
    table = build_readings(["<s>", "</s>", "例", "は", "。", "abc"], lambda t: romaji.get(t, t))
    assert table == {"例": "rei", "は": "wa"}


def test_readings_table_sits_beside_its_checkpoint(tmp_path):
    assert readings_path(tmp_path / "en-ja.pt") == tmp_path / "en-ja.readings.json"
    assert load_readings(tmp_path / "en-ja.pt") == {}
    readings_path(tmp_path / "en-ja.pt").write_text(json.dumps({"format": 1, "readings": {"例": "rei"}}), encoding="utf-8")
    assert load_readings(tmp_path / "en-ja.pt") == {"例": "rei"}


def test_a_table_of_another_format_is_refused(tmp_path):
    readings_path(tmp_path / "m.pt").write_text(json.dumps({"format": 99, "readings": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match="format"):
        load_readings(tmp_path / "m.pt")


def test_generating_with_cutlet_reads_the_classic_example(tmp_path):
    pytest.importorskip("cutlet", reason="cutlet is a generation-time tool: pip install -e '.[readings]'")
    checkpoint = write_model_dir(tmp_path)
    main(["--checkpoint", str(checkpoint)])
    table = load_readings(checkpoint)
    assert {table[t] for t in ("これ", "は", "例")} == {"kore", "wa", "rei"}
    assert set(table) <= set(TINY_JA)


@pytest.mark.skipif(not SHIPPED_CHECKPOINT.exists(), reason="the trained model is not in this checkout")
def test_shipped_model_has_readings_for_its_vocabulary():
    table = load_readings(SHIPPED_CHECKPOINT)
    assert table["例"] == "rei" and table["これ"] == "kore"
