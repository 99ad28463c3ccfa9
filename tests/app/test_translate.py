from __future__ import annotations

import pytest

from model.translator import join_japanese


def test_greedy_translation_matches_the_model(client, served_translator):
    response = client.post("/api/v1/translate", json={"source": "This is an example."})
    assert response.status_code == 200
    body = response.json()
    expected = served_translator.translate(["This is an example."], max_length=63)[0]
    assert body["model"] == "tiny"
    assert body["translation"] == expected.translation
    assert [t["text"] for t in body["source_tokens"]] == ["this", "is", "an", "example", ".", "</s>"]
    assert [t["text"] for t in body["target_tokens"]] == [t.text for t in expected.target_tokens]
    assert body["translation"] == join_japanese([t["text"] for t in body["target_tokens"]])
    # the API runs the model on its own torch thread count, so the last float digits may differ
    assert body["score"] == pytest.approx(expected.score, rel=1e-5)
    assert [h["translation"] for h in body["n_best"]] == [body["translation"]]


def test_beam_search_returns_the_n_best_list_best_first(client):
    body = client.post("/api/v1/translate", json={"source": "i like tea .", "beam_size": 3}).json()
    scores = [h["score"] for h in body["n_best"]]
    assert 1 <= len(scores) <= 3
    assert scores == sorted(scores, reverse=True)
    assert body["n_best"][0]["translation"] == body["translation"]
    assert body["n_best"][0]["score"] == body["score"]


def test_max_length_caps_the_produced_tokens(client):
    body = client.post("/api/v1/translate", json={"source": "i like tea .", "max_length": 3}).json()
    assert len(body["target_tokens"]) <= 3


def test_translate_rejects_bad_input_like_attention(client):
    assert client.post("/api/v1/translate", json={"source": " "}).status_code == 422
    assert client.post("/api/v1/translate", json={"source": "hi", "beam_size": 99}).status_code == 422
    assert client.post("/api/v1/translate", json={"source": "hi", "model": "x"}).status_code == 404
    assert client.post("/api/v1/translate", json={"source": "hi", "kinds": ["cross"]}).status_code == 422
