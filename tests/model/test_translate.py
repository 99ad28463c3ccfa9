import io

import pytest

from model import translate
from tests.conftest import write_model_dir


def run(monkeypatch, capsys, stdin: str, *argv: str) -> list[str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    translate.main(list(argv))
    return capsys.readouterr().out.split("\n")[:-1]


def test_one_output_line_per_input_line_even_when_empty(monkeypatch, capsys, tmp_path):
    checkpoint = write_model_dir(tmp_path)
    lines = run(monkeypatch, capsys, "This is an example.\n\nI like tea.\n", "--checkpoint", str(checkpoint), "--max-length", "4")
    assert len(lines) == 3 and lines[1] == ""
    assert lines[0] and lines[2]


def test_a_politeness_needs_a_model_trained_for_it(monkeypatch, capsys, tmp_path):
    plain_model = write_model_dir(tmp_path / "a")
    with pytest.raises(SystemExit) as refused:
        run(monkeypatch, capsys, "I like tea.\n", "--checkpoint", str(plain_model), "--politeness", "polite")
    assert refused.value.code == 2 and "no politeness control" in capsys.readouterr().err
    polite_model = write_model_dir(tmp_path / "b", politeness_levels=("plain", "polite"))
    outputs = {
        level: run(monkeypatch, capsys, "I like tea.\n", "--checkpoint", str(polite_model), "--politeness", level)
        for level in ("plain", "polite")
    }
    assert all(len(lines) == 1 and lines[0] for lines in outputs.values())
