from __future__ import annotations

import json
import os
from functools import lru_cache

import pytest

from app.cli import main
from app.settings import Settings
from tests.conftest import write_model_dir


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_attention_prints_a_summary(capsys, tiny_model_dir):
    code, out, _ = run(
        capsys, "attention", "This is an example.", "--target", "これ は 例 で す 。", "--model-dir", str(tiny_model_dir)
    )
    assert code == 0
    assert "source:      this is an example . </s>" in out
    assert "translation: これは例です。" in out
    assert "decoder:     2 layers × 4 heads × 7 × 7  (causal)" in out
    assert "cross:       2 layers × 4 heads × 7 × 6" in out
    assert out.count("→") == 7  # one alignment line per produced token


def test_attention_switches_heads_off(capsys, client, tiny_model_dir):
    argv = ["attention", "i like tea", "--target", "私 は お 茶 が 好き", "--model-dir", str(tiny_model_dir)]
    code, out, _ = run(capsys, *argv, "--ablate", "cross:1:2", "--ablate", "encoder:0:0", "--json")
    assert code == 0
    off = [{"kind": "encoder", "layer": 0, "head": 0}, {"kind": "cross", "layer": 1, "head": 2}]
    api = client.post("/api/v1/attention", json={"source": "i like tea", "target": "私 は お 茶 が 好き", "ablate": off}).json()
    assert json.loads(out) == api
    code, out, _ = run(capsys, *argv, "--ablate", "cross:1:2")
    assert "heads off:   cross L1 H2" in out
    with pytest.raises(SystemExit):
        main([*argv, "--ablate", "cross:one:2"])
    assert "is not KIND:LAYER:HEAD" in capsys.readouterr().err


def test_attention_json_is_what_the_api_returns(capsys, client, tiny_model_dir):
    code, out, _ = run(
        capsys, "attention", "i like tea", "--json", "--kinds", "cross", "--heads", "1", "--model-dir", str(tiny_model_dir)
    )
    assert code == 0
    api = client.post("/api/v1/attention", json={"source": "i like tea", "kinds": ["cross"], "heads": [1]}).json()
    assert json.loads(out) == api


def test_attention_reports_bad_input_in_one_line(capsys, tiny_model_dir):
    code, out, err = run(capsys, "attention", "   ", "--model-dir", str(tiny_model_dir))
    assert (code, out, err) == (2, "", "attnscope: the source is empty: type a sentence in English\n")
    code, _, err = run(capsys, "attention", "hi", "--layers", "9", "--model-dir", str(tiny_model_dir))
    assert code == 2 and "out of range" in err


def test_serve_refuses_a_folder_without_models(capsys, tmp_path, monkeypatch):
    # serve passes its options on through the environment: keep them out of the other tests
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr("app.cli.get_settings", lru_cache(Settings))
    code, _, err = run(capsys, "serve", "--model-dir", str(tmp_path), "--port", "0")
    assert code == 2
    assert err == (
        f"attnscope: cannot serve: no models in {tmp_path}: it holds no NAME.pt checkpoint and no Hugging Face directory "
        "NAME/ with a config.json\n"
    )


def test_attention_sets_a_control_and_prints_the_prediction(capsys, tmp_path):
    write_model_dir(tmp_path, politeness_levels=("plain", "polite"))
    code, out, _ = run(capsys, "attention", "I like tea.", "--control", "politeness=plain", "--model-dir", str(tmp_path))
    assert code == 0
    assert "politeness:  plain (predicted: plain " in out and ", polite " in out
    code, _, err = run(capsys, "attention", "I like tea.", "--control", "politeness=formal", "--model-dir", str(tmp_path))
    assert (code, err) == (2, "attnscope: Politeness 'formal' is not one of auto, plain, polite\n")
    code, _, err = run(capsys, "attention", "I like tea.", "--control", "register=formal", "--model-dir", str(tmp_path))
    assert (code, err) == (2, "attnscope: model tiny has no control 'register'; its controls: politeness\n")
