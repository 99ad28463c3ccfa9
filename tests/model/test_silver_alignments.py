import pytest

from backends.alignment import read_pharaoh
from model.silver_alignments import main
from tests.model.test_card_figures import PAIRS, write_corpus


def test_writes_one_line_of_links_per_test_pair_inside_each_pair(tmp_path, capsys):
    pytest.importorskip("eflomal", reason="the silver reference needs eflomal (pip install -e '.[align]')")
    write_corpus(tmp_path, "train", PAIRS * 40)
    write_corpus(tmp_path, "test", PAIRS[:3])
    out = tmp_path / "alignments" / "silver.talp"

    main(["--data", str(tmp_path), "--out", str(out)])

    silver = read_pharaoh(out)
    assert len(silver) == 3
    for (en, ja), line in zip(PAIRS[:3], silver, strict=True):
        assert line.sure == line.possible and line.sure  # links only, all sure, none empty on this easy corpus
        assert all(i < len(en.split()) and j < len(ja.split()) for i, j in line.sure)
    # Which word a link joins is not asserted: eflomal takes no seed, and its sampler linked "the cat"'s 猫 to "the"
    # instead of "cat" in 1 of 6 runs of this test here (and in a fresh clone's CI run).
    assert "3 test pairs" in capsys.readouterr().out
