"""Hugging Face models through the real app, next to the built-in one: the same API contract for every family."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.app.conftest import attention, make_client
from tests.app.test_faults import assert_one_clear_line, serve
from tests.conftest import write_model_dir

pytest.importorskip("transformers", reason="the hf extra is not installed")
from tests.backends.conftest import write_tiny_hf_model  # noqa: E402

SERVED_FAMILIES = ("marian", "bart", "t5")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A folder as ATTNSCOPE_MODEL_DIR would hold it: the built-in format and three Hugging Face directories."""
    root = tmp_path_factory.mktemp("models")
    write_model_dir(root, "en-ja")
    for family in SERVED_FAMILIES:
        write_tiny_hf_model(root / f"tiny-{family}", family)
    write_tiny_hf_model(root / "tiny-m2m", "m2m_100")
    return root


@pytest.fixture(scope="module")
def client(model_dir):
    torch.set_num_threads(1)
    with make_client(model_dir, concurrency=1) as test_client:
        yield test_client


def test_the_models_list_shows_each_model_with_its_own_counts_and_controls(client, model_dir):
    models = {m["name"]: m for m in client.get("/api/v1/models").json()}
    assert sorted(models) == ["en-ja", "tiny-bart", "tiny-m2m", "tiny-marian", "tiny-t5"]
    assert models["en-ja"]["default"] and models["en-ja"]["family"] == "attnscope-transformer"
    for family in SERVED_FAMILIES:
        info = models[f"tiny-{family}"]
        config = json.loads((model_dir / f"tiny-{family}" / "config.json").read_text())
        encoder_layers = config.get("encoder_layers", config.get("num_layers"))
        decoder_layers = config.get("decoder_layers", config.get("num_decoder_layers", encoder_layers))
        assert info["family"] == family
        assert info["kinds"]["encoder"]["layers"] == encoder_layers
        assert info["kinds"]["decoder"]["layers"] == info["kinds"]["cross"]["layers"] == decoder_layers
        assert info["granularities"] == ["token", "word"] and info["tokens"]["word_level"] is False
        assert info["controls"] == []
    m2m = models["tiny-m2m"]
    assert [c["name"] for c in m2m["controls"]] == ["source_language", "target_language"]


@pytest.mark.parametrize("family", SERVED_FAMILIES)
def test_every_map_is_shaped_by_its_tokens_and_per_kind_counts(client, family):
    name = f"tiny-{family}"
    info = client.get(f"/api/v1/models/{name}").json()
    body = attention(client, model=name, source="I like tea.", max_length=8)
    lengths = {axis: len(body[axis]) for axis in ("source_tokens", "target_tokens", "decoder_input_tokens")}
    for kind, shape in info["kinds"].items():
        m = body["attention"][kind]
        weights = torch.tensor(m["weights"])
        assert weights.shape == (shape["layers"], shape["heads"], lengths[m["query_axis"]], lengths[m["key_axis"]])
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=weights.shape[-1] * 5e-5)
    decoder = torch.tensor(body["attention"]["decoder"]["weights"])
    assert body["attention"]["decoder"]["causal"] and (decoder[..., torch.ones(decoder.shape[-2:]).triu(1).bool()] == 0).all()
    assert [t["special"] for t in body["source_tokens"]][-1] is True  # </s>, flagged


@pytest.mark.parametrize("family", SERVED_FAMILIES)
def test_a_forced_target_is_tokenized_by_the_models_own_tokenizer(client, model_dir, family):
    from transformers import AutoTokenizer

    target = "私はお茶が好きです。"
    body = attention(client, model=f"tiny-{family}", source="I like tea.", target=target, kinds=["cross"])
    assert body["forced"] is True
    expected = AutoTokenizer.from_pretrained(model_dir / f"tiny-{family}")(text_target=target).input_ids
    assert [t["id"] for t in body["target_tokens"]] == expected
    assert [t["id"] for t in body["decoder_input_tokens"][1:]] == expected[:-1]


@pytest.mark.parametrize("family", SERVED_FAMILIES)
def test_word_granularity_merges_pieces_and_keeps_rows_summing_to_one(client, family):
    name = f"tiny-{family}"
    pieces = attention(client, model=name, source="Unbelievable weather today.", max_length=6)
    words = attention(client, model=name, source="Unbelievable weather today.", max_length=6, granularity="word")
    assert words["granularity"] == "word"
    assert "nothing_to_merge" not in [w["code"] for w in words["warnings"]]
    assert len(words["source_tokens"]) < len(pieces["source_tokens"])
    assert all(t["word_start"] for t in words["source_tokens"])
    for kind, m in words["attention"].items():
        weights = torch.tensor(m["weights"])
        assert weights.shape[-1] == len(m["key_tokens"])
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=weights.shape[-1] * 5e-5), kind


@pytest.mark.parametrize("family", ["marian", "t5"])
def test_word_alignment_links_the_words_as_shown(client, family):
    name, source, target = f"tiny-{family}", "Unbelievable weather today.", "信じ られ な い 天気 だ"
    body = attention(client, model=name, source=source, target=target, granularity="word", alignment={"head": "mean"})
    links = body["alignment"]["links"]
    produced = [i for i, t in enumerate(body["target_tokens"]) if not t["special"]]
    assert [link["target"] for link in links] == produced  # one per target word, indices into the merged tokens
    assert all(not body["source_tokens"][link["source"]]["special"] for link in links)
    # Shift-Att over words: each word read from the rows where its pieces are the decoder input (the next rows of
    # the piece-level map), averaged, with the source pieces' columns summed into words
    shifted = attention(client, model=name, source=source, target=target, granularity="word", alignment={"shift_att": True})
    layer = shifted["alignment"]["layer"]
    pieces = attention(client, model=name, source=source, target=target, kinds=["cross"], layers=[layer], precision=8)
    heads = torch.tensor(pieces["attention"]["cross"]["weights"][0]).double().mean(0)  # (T, S)

    def spans(tokens):
        starts = [i for i, t in enumerate(tokens) if i == 0 or t["word_start"] or t["special"] or tokens[i - 1]["special"]]
        return [list(range(a, b)) for a, b in zip(starts, [*starts[1:], len(tokens)], strict=True)]

    source_words, target_words = spans(pieces["source_tokens"]), spans(pieces["target_tokens"])
    next_rows = torch.cat([heads[1:], torch.zeros(1, heads.shape[1], dtype=heads.dtype)])
    for link in shifted["alignment"]["links"]:
        row = next_rows[target_words[link["target"]]].mean(0)
        scores = {w: float(row[span].sum()) for w, span in enumerate(source_words) if not shifted["source_tokens"][w]["special"]}
        assert link["source"] == max(scores, key=scores.get)


def test_the_built_in_model_has_nothing_to_merge_and_says_so(client):
    body = attention(client, model="en-ja", source="I like tea.", max_length=6, granularity="word")
    assert [w["code"] for w in body["warnings"]] == ["nothing_to_merge"]
    assert body == {
        **attention(client, model="en-ja", source="I like tea.", max_length=6),
        "granularity": "word",
        "warnings": body["warnings"],
    }


def test_an_unknown_language_code_is_a_422_naming_the_valid_ones(client):
    response = client.post("/api/v1/attention", json={"model": "tiny-m2m", "source": "hi", "controls": {"target_language": "xx"}})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'xx' is not one of" in detail and "ja" in detail and "en" in detail


def test_a_multilingual_model_decodes_into_the_language_asked_for(client):
    body = attention(client, model="tiny-m2m", source="I like tea.", controls={"target_language": "ja"}, max_length=5)
    assert body["controls"]["target_language"] == "ja"
    assert body["decoder_input_tokens"][1]["text"] == "__ja__" and body["decoder_input_tokens"][1]["special"]


def test_startup_refuses_a_path_that_is_not_a_model_in_one_line(capsys, monkeypatch, tmp_path):
    write_model_dir(tmp_path / "models")
    (tmp_path / "notes").mkdir()
    code, err = serve(capsys, monkeypatch, tmp_path / "models", "--model", str(tmp_path / "notes"))
    assert code == 2
    assert_one_clear_line(err, "notes is neither a NAME.pt checkpoint nor a Hugging Face model directory")


def test_startup_refuses_a_decoder_only_model_in_one_line(capsys, monkeypatch, tmp_path):
    (tmp_path / "gpt").mkdir()
    (tmp_path / "gpt" / "config.json").write_text('{"model_type": "gpt2"}')
    code, err = serve(capsys, monkeypatch, tmp_path)
    assert code == 2
    assert_one_clear_line(err, "gpt2 is not an encoder-decoder model")


def test_startup_refuses_a_model_without_its_tokenizer_in_one_line(capsys, monkeypatch, tmp_path, model_dir):
    copy = tmp_path / "no-tokenizer"
    shutil.copytree(model_dir / "tiny-marian", copy)
    for path in copy.iterdir():
        if "token" in path.name or path.suffix in (".spm", ".model") or path.name == "vocab.json":
            path.unlink()
    code, err = serve(capsys, monkeypatch, tmp_path)
    assert code == 2
    assert_one_clear_line(err, "tokenizer")
