"""The API over the trained checkpoint that ships in model/checkpoints/."""

from __future__ import annotations

import pytest
import torch

from tests.app.conftest import attention, make_client
from tests.conftest import SHIPPED_CHECKPOINT


@pytest.fixture(scope="module")
def shipped_client():
    with make_client(SHIPPED_CHECKPOINT.parent) as client:
        yield client


def test_the_classic_example_has_every_map_shaped_by_its_tokens(shipped_client):
    body = attention(shipped_client, source="This is an example.")
    assert body["model"] == "en-ja"
    source, target = body["source_tokens"], body["target_tokens"]
    assert [t["text"] for t in source] == ["this", "is", "an", "example", ".", "</s>"]
    assert not any(t["unknown"] for t in source)
    info = shipped_client.get("/api/v1/models/en-ja").json()
    rows = {"encoder": len(source), "decoder": len(target), "cross": len(target)}
    columns = {"encoder": len(source), "decoder": len(body["decoder_input_tokens"]), "cross": len(source)}
    for kind, shape in info["kinds"].items():
        weights = torch.tensor(body["attention"][kind]["weights"])
        assert weights.shape == (shape["layers"], shape["heads"], rows[kind], columns[kind])
        # each of the row's weights is rounded to 4 places, so the sum may be off by half a unit per cell
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=columns[kind] * 5e-5)
    decoder = torch.tensor(body["attention"]["decoder"]["weights"])
    assert body["attention"]["decoder"]["causal"] is True
    assert (decoder[..., torch.ones(decoder.shape[-2:], dtype=torch.bool).triu(1)] == 0).all()


def test_the_classic_example_forced_through_the_api(shipped_client):
    body = attention(shipped_client, source="This is an example.", target="これは例です。")
    assert body["forced"] is True
    assert [t["text"] for t in body["target_tokens"]] == ["これ", "は", "例", "で", "す", "。", "</s>"]
    assert body["translation"] == "これは例です。"
    assert body["target_tokens"][2]["reading"] == "rei"
    info = shipped_client.get("/api/v1/models/en-ja").json()
    assert info["default"] is True
    card = info["card"]["alignment_by_layer"]
    best = min(card["layers"], key=lambda row: row["aer"])["layer"]
    assert info["alignment_layer"]["layer"] == card["best_layer"] == best and info["alignment_layer"]["measured"]
    assert info["test_bleu"]["greedy"] >= 35.0


def test_the_shipped_model_takes_a_politeness(shipped_client):
    (control,) = shipped_client.get("/api/v1/models/en-ja").json()["controls"]
    assert (control["name"], control["values"]) == ("politeness", ["auto", "plain", "polite"])
    plain, polite = (
        shipped_client.post("/api/v1/translate", json={"source": "He is a student.", "controls": {"politeness": level}}).json()
        for level in ("plain", "polite")
    )
    assert (plain["controls"], polite["controls"]) == ({"politeness": "plain"}, {"politeness": "polite"})
    assert plain["translation"] != polite["translation"]
    assert plain["predictions"] == polite["predictions"]


@pytest.fixture(scope="module")
def shipped_rnn(shipped_client):
    return shipped_client.get("/api/v1/models/en-ja-rnn").json()


def test_both_shipped_models_are_served_the_transformer_by_default(shipped_client, shipped_rnn):
    models = {model["name"]: model for model in shipped_client.get("/api/v1/models").json()}
    assert set(models) == {"en-ja", "en-ja-rnn"}
    assert models["en-ja"]["default"] and not models["en-ja-rnn"]["default"]
    assert shipped_rnn["kinds"] == {"cross": {"layers": 1, "heads": 1}}
    assert shipped_rnn["test_bleu"]["greedy"] >= 32.0


def test_the_shipped_rnn_translates_with_one_additive_cross_map(shipped_client):
    body = attention(shipped_client, model="en-ja-rnn", source="I like tea.")
    assert body["translation"] and set(body["attention"]) == {"cross"}
    weights = torch.tensor(body["attention"]["cross"]["weights"])
    assert weights.shape == (1, 1, len(body["target_tokens"]), len(body["source_tokens"]))
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=len(body["source_tokens"]) * 5e-5)


def test_the_shipped_rnn_refuses_the_kinds_it_does_not_have_naming_what_it_has(shipped_client):
    response = shipped_client.post(
        "/api/v1/attention", json={"model": "en-ja-rnn", "source": "I like tea.", "kinds": ["encoder"]}
    )
    assert response.status_code == 422
    assert "no encoder attention" in response.text and "its kinds are cross" in response.text
    response = shipped_client.post("/api/v1/attention", json={"model": "en-ja-rnn", "source": "I like tea.", "layers": [1]})
    assert response.status_code == 422 and "cross layers" in response.text
