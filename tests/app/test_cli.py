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


def test_attention_with_a_method_prints_its_maps_and_the_source_share(capsys, tiny_model_dir):
    target = ["--target", "これ は 例 で す 。", "--model-dir", str(tiny_model_dir)]
    code, out, _ = run(capsys, "attention", "This is an example.", "--method", "alti", *target)
    assert code == 0
    assert "method:      alti" in out and "cross:       2 layers × the layer's map × 7 × 6" in out
    assert out.count("→") == 7 and "source share (alti)" in out
    code, out, _ = run(capsys, "attention", "This is an example.", "--method", "saliency", "--steps", "2", *target)
    assert code == 0 and "source share (saliency)" in out and "→" not in out
    code, _, err = run(capsys, "attention", "hi", "--method", "norms", "--steps", "2", "--model-dir", str(tiny_model_dir))
    assert code == 2 and "saliency options are for method saliency" in err


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


# --- attnscope align ------------------------------------------------------------------------------

ALIGN_PAIRS = [("i like tea .", "私 は お 茶 が 好き 。"), ("the cat", "猫"), ("do n't go !", "行 く な ！")]


def write_align_corpus(directory) -> None:
    (directory / "test.en").write_text("".join(en + "\n" for en, _ in ALIGN_PAIRS), encoding="utf-8")
    (directory / "test.ja").write_text("".join(ja + "\n" for _, ja in ALIGN_PAIRS), encoding="utf-8")


def own_links(model_dir, layer: int, head: int) -> list[str]:
    """The tiny model's argmax links of one head, in Pharaoh format: a gold file it matches exactly."""
    from backends.alignment import corpus_positions, format_pharaoh, head_map, links_of, to_corpus, weighted_links
    from backends.builtin import BuiltinModel

    model = BuiltinModel.load(model_dir / "tiny.pt", "cpu")
    lines = []
    for en, ja in ALIGN_PAIRS:  # "n't" is read as n + 't: both map back to corpus token 1
        result = model.attention(en, ja)
        weights = head_map(result.maps["cross"], layer, head)
        links = links_of(weighted_links(weights, result.source_tokens, result.target_tokens))
        words = corpus_positions(result.source_tokens, en.split()), corpus_positions(result.target_tokens, ja.split())
        lines.append(format_pharaoh(to_corpus(links, *words)))
    return lines


def test_align_prints_aer_per_layer_and_head_and_the_best(capsys, tiny_model_dir):
    write_align_corpus(tiny_model_dir)
    gold = tiny_model_dir / "gold.talp"
    gold.write_text("".join(line + "\n" for line in own_links(tiny_model_dir, 1, 3)), encoding="utf-8")
    out_json = tiny_model_dir / "aer.json"
    where = ["--data", str(tiny_model_dir), "--model-dir", str(tiny_model_dir)]
    code, out, err = run(capsys, "align", "--gold", str(gold), *where, "--methods", "weights", "norms", "--json", str(out_json))
    assert code == 0, err
    assert f"AER against gold ({gold}, 3 sentences; argmax per target token):" in out
    assert "  weights\n    layer  head 0  head 1  head 2  head 3    mean\n" in out
    assert "  norms\n    layer  head 0  head 1  head 2  head 3    mean   layer\n" in out
    assert "best: layer 1, head 3: AER 0.000 (precision 1.000, recall 1.000); best layer mean: layer" in out
    assert "force-decoding" in err and "3/3" in err  # the progress bar, on stderr
    tables = json.loads(out_json.read_text(encoding="utf-8"))["gold"]["methods"]
    assert tables["weights"]["best"] == {"layer": 1, "head": 3, "aer": 0.0, "precision": 1.0, "recall": 1.0}
    assert list(tables) == ["weights", "norms"]


def test_align_json_to_stdout_takes_a_separate_possible_file(capsys, tiny_model_dir):
    write_align_corpus(tiny_model_dir)
    (tiny_model_dir / "sure.talp").write_text("\n\n\n", encoding="utf-8")
    possible = "".join(line + "\n" for line in own_links(tiny_model_dir, 0, 0))
    (tiny_model_dir / "possible.talp").write_text(possible, encoding="utf-8")
    code, out, _ = run(
        capsys, "align", "--gold", str(tiny_model_dir / "sure.talp"), "--possible", str(tiny_model_dir / "possible.talp"),
        "--data", str(tiny_model_dir), "--model-dir", str(tiny_model_dir), "--json", "-", "--methods", "weights",
    )  # fmt: skip
    assert code == 0
    head = json.loads(out)["gold"]["methods"]["weights"]["scores"][0]
    assert (head["layer"], head["head"]) == (0, 0)
    assert head["precision"] == 1.0 and head["aer"] == 0.0  # every link possible, none sure: |A∩P| = |A|, |S| = 0


@pytest.mark.parametrize(
    ("gold", "message"),
    [
        ("0-0\n0-0 1:1\n", "gold.talp line 2: '1:1' is not a link: write i-j (sure) or i?j (possible)"),
        ("0-0\n\n0-7\n", "gold.talp line 3: link 0-7 is outside the pair (4 source and 4 target tokens, 0-based)"),
    ],
)
def test_align_names_the_line_of_a_bad_gold_file(capsys, tiny_model_dir, gold, message):
    write_align_corpus(tiny_model_dir)
    (tiny_model_dir / "gold.talp").write_text(gold, encoding="utf-8")
    where = ["--data", str(tiny_model_dir), "--model-dir", str(tiny_model_dir)]
    code, _, err = run(capsys, "align", "--gold", str(tiny_model_dir / "gold.talp"), *where)
    assert code == 2
    assert message in err


def test_align_refuses_a_run_without_a_reference_or_with_a_bad_threshold(capsys, tiny_model_dir):
    code, _, err = run(capsys, "align", "--data", str(tiny_model_dir))
    assert (code, err.strip()) == (2, "attnscope: give a reference: --gold FILE (sure i-j, possible i?j) and/or --silver FILE")
    code, _, err = run(capsys, "align", "--silver", "s.talp", "--data", str(tiny_model_dir), "--threshold", "1.5")
    assert code == 2 and "--threshold 1.5 is not a share of a row" in err
