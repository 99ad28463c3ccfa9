"""`attnscope heads` writes NAME.heads.json beside the model; GET /api/v1/models/{name}/heads serves it."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from tests.app.conftest import make_client
from tests.conftest import write_tiny_corpus


def run_cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    return exit_.value.code


def test_the_command_writes_the_table_beside_the_model_and_the_api_serves_it(tiny_model_dir, tmp_path, capsys):
    corpus = write_tiny_corpus(tmp_path / "corpus", lines=10)
    code = run_cli("heads", "--model", "tiny", "--model-dir", str(tiny_model_dir), "--data", str(corpus), "--shard-size", "5")
    assert code == 0
    written = json.loads((tiny_model_dir / "tiny.heads.json").read_text(encoding="utf-8"))
    out = capsys.readouterr()
    assert out.out.startswith(f"tiny: BLEU {written['bleu']:.2f} on corpus test (10 sentences, greedy)")
    assert "tiny.heads.json in" in out.out and "heads: 100%" in out.err  # the progress bar
    assert written["shards"] == {"count": 2, "size": 5, "threads": 1}
    with make_client(tiny_model_dir) as client:
        assert client.get("/api/v1/models/tiny").json()["head_importance"] is True
        served = client.get("/api/v1/models/tiny/heads")
    assert served.status_code == 200
    assert served.json() == written


def test_a_model_without_a_table_is_404_saying_how_to_make_one(client):
    response = client.get("/api/v1/models/tiny/heads")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "model tiny has no head-importance table: run attnscope heads --model tiny --data DIR beside it"
    }
    assert client.get("/api/v1/models/en-fr/heads").status_code == 404


def test_the_command_refuses_what_it_cannot_use(tiny_model_dir, tmp_path, capsys):
    corpus = write_tiny_corpus(tmp_path / "corpus", lines=4)
    assert run_cli("heads", "--model", "big", "--model-dir", str(tiny_model_dir), "--data", str(corpus)) == 2
    assert f"no model 'big' in {tiny_model_dir}; it holds: tiny" in capsys.readouterr().err
    assert run_cli("heads", "--model", "tiny", "--model-dir", str(tiny_model_dir), "--data", str(tmp_path / "none")) == 2
    assert "test.en" in capsys.readouterr().err
