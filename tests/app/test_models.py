from __future__ import annotations

from tests.app.conftest import make_client
from tests.conftest import make_tiny_model, write_model_dir


def test_lists_the_model_with_its_architecture_and_card(client):
    response = client.get("/api/v1/models")
    assert response.status_code == 200
    (info,) = response.json()
    cfg = make_tiny_model().model.cfg
    assert info["name"] == "tiny"
    assert info["description"] == "tiny random model for tests"
    assert info["family"] == "attnscope-transformer"
    assert (info["source_language"], info["target_language"]) == (
        {"code": "en", "name": "English"},
        {"code": "ja", "name": "Japanese"},
    )
    layers, heads = cfg.n_encoder_layers, cfg.n_heads
    assert info["kinds"] == {kind: {"layers": layers, "heads": heads} for kind in ("encoder", "decoder", "cross")}
    assert info["d_model"] == cfg.d_model
    assert info["tokens"] == {
        "subword_marker": None,
        "target_joiner": "",
        "special_tokens": ["<pad>", "<unk>", "<s>", "</s>"],
        "word_level": True,
    }
    assert info["granularities"] == ["token"]
    assert info["vocab_sizes"] == {"source": cfg.src_vocab_size, "target": cfg.tgt_vocab_size}
    assert info["parameters"] == make_tiny_model().model.num_parameters()
    assert info["test_bleu"] == {"greedy": 0.0}
    assert info["controls"] == []
    assert info["card"]["description"] == "tiny random model for tests"
    assert info["default"] is True
    assert (info["explains"], info["layer_norm"]) == (True, "pre")
    # the model's 64 positions cap the configured 128 source tokens (one position is </s>)
    assert info["limits"] == {"max_source_tokens": 63, "max_target_tokens": 63, "max_beam_size": 8}


def test_get_one_model(client):
    response = client.get("/api/v1/models/tiny")
    assert response.status_code == 200
    assert response.json() == client.get("/api/v1/models").json()[0]


def test_unknown_model_is_404_listing_the_available_ones(client):
    response = client.get("/api/v1/models/en-fr")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown model 'en-fr'; available models: tiny"}


def test_every_checkpoint_in_the_folder_is_served_and_the_default_is_configurable(tmp_path):
    write_model_dir(tmp_path, "alpha", seed=1)
    write_model_dir(tmp_path, "beta", seed=2)
    with make_client(tmp_path) as client:
        listed = client.get("/api/v1/models").json()
        assert [(m["name"], m["default"]) for m in listed] == [("alpha", True), ("beta", False)]
        beta = client.post("/api/v1/attention", json={"source": "i like tea", "model": "beta"}).json()
        alpha = client.post("/api/v1/attention", json={"source": "i like tea"}).json()
        assert (alpha["model"], beta["model"]) == ("alpha", "beta")
        assert alpha["attention"]["encoder"]["weights"] != beta["attention"]["encoder"]["weights"]
    with make_client(tmp_path, default_model="beta") as client:
        assert [m["default"] for m in client.get("/api/v1/models").json()] == [False, True]


def test_a_checkpoint_without_a_card_is_described_from_the_checkpoint(tmp_path):
    write_model_dir(tmp_path).with_suffix(".json").unlink()
    with make_client(tmp_path) as client:
        info = client.get("/api/v1/models/tiny").json()
    assert info["description"] == ""
    assert info["test_bleu"] is None
    assert info["parameters"] == make_tiny_model().model.num_parameters()


def test_a_model_without_an_alignment_figure_opens_on_its_last_cross_layer(client):
    info = client.get("/api/v1/models/tiny").json()
    assert info["alignment_layer"] == {
        "layer": info["kinds"]["cross"]["layers"] - 1,
        "measured": False,
        "note": "the last layer: the model card has no alignment figure",
        "by_method": {},
    }
