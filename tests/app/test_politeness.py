"""Politeness control over HTTP: a model trained with it, and one without."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import attention, make_client
from tests.conftest import write_model_dir

POLITENESS_LEVELS = ("plain", "polite")


@pytest.fixture
def politeness_client(tmp_path) -> Iterator[TestClient]:
    write_model_dir(tmp_path, "tiny", politeness_levels=POLITENESS_LEVELS)
    with make_client(tmp_path) as test_client:
        yield test_client


def test_models_list_their_politeness_levels(politeness_client):
    assert politeness_client.get("/api/v1/models/tiny").json()["politeness_levels"] == list(POLITENESS_LEVELS)


def test_auto_resolves_to_the_predicted_politeness(politeness_client):
    body = attention(politeness_client, source="This is an example.", max_length=8)
    probabilities = body["politeness_probabilities"]
    assert set(probabilities) == set(POLITENESS_LEVELS)
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert body["politeness"] == max(probabilities, key=probabilities.get)


@pytest.mark.parametrize("politeness", POLITENESS_LEVELS)
def test_an_asked_politeness_is_decoded_with(politeness_client, politeness):
    translated = politeness_client.post("/api/v1/translate", json={"source": "i like tea .", "politeness": politeness})
    assert translated.status_code == 200
    assert translated.json()["politeness"] == politeness
    body = attention(politeness_client, source="i like tea .", target="私 は お 茶 が 好き", politeness=politeness)
    assert body["politeness"] == politeness


def test_the_politeness_changes_the_scores_of_a_forced_target(politeness_client):
    plain, polite = (
        attention(politeness_client, source="This is an example.", target="これ は 例 で す 。", politeness=r, kinds=["cross"])
        for r in POLITENESS_LEVELS
    )
    assert plain["score"] != polite["score"]
    assert plain["attention"]["cross"]["weights"] != polite["attention"]["cross"]["weights"]


def test_an_unknown_politeness_is_a_422_naming_the_choices(politeness_client):
    response = politeness_client.post("/api/v1/attention", json={"source": "hi", "politeness": "formal"})
    assert response.status_code == 422
    assert "auto" in response.text and "polite" in response.text


def test_a_model_without_politeness_control_takes_only_auto(client):
    body = attention(client, source="hi", max_length=4)
    assert body["politeness"] is None and body["politeness_probabilities"] == {}
    response = client.post("/api/v1/translate", json={"source": "hi", "politeness": "polite"})
    assert response.status_code == 422
    assert "no politeness control" in response.json()["detail"]
