"""Decoding controls over HTTP: the built-in politeness, declared by a model trained with it, absent from one without."""

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


def test_models_declare_their_controls(politeness_client):
    (control,) = politeness_client.get("/api/v1/models/tiny").json()["controls"]
    assert (control["name"], control["values"], control["default"]) == ("politeness", ["auto", *POLITENESS_LEVELS], "auto")
    assert control["label"] == "Politeness" and set(control["value_labels"]) == {"auto", *POLITENESS_LEVELS}


def test_auto_resolves_to_the_predicted_politeness(politeness_client):
    body = attention(politeness_client, source="This is an example.", max_length=8)
    probabilities = body["predictions"]["politeness"]
    assert set(probabilities) == set(POLITENESS_LEVELS)
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert body["controls"] == {"politeness": max(probabilities, key=probabilities.get)}


@pytest.mark.parametrize("politeness", POLITENESS_LEVELS)
def test_an_asked_politeness_is_decoded_with(politeness_client, politeness):
    controls = {"politeness": politeness}
    translated = politeness_client.post("/api/v1/translate", json={"source": "i like tea .", "controls": controls})
    assert translated.status_code == 200
    assert translated.json()["controls"] == controls
    body = attention(politeness_client, source="i like tea .", target="私 は お 茶 が 好き", controls=controls)
    assert body["controls"] == controls


def test_the_politeness_changes_the_scores_of_a_forced_target(politeness_client):
    plain, polite = (
        attention(
            politeness_client,
            source="This is an example.",
            target="これ は 例 で す 。",
            controls={"politeness": r},
            kinds=["cross"],
        )
        for r in POLITENESS_LEVELS
    )
    assert plain["score"] != polite["score"]
    assert plain["attention"]["cross"]["weights"] != polite["attention"]["cross"]["weights"]


def test_an_unknown_value_is_a_422_naming_the_choices(politeness_client):
    response = politeness_client.post("/api/v1/attention", json={"source": "hi", "controls": {"politeness": "formal"}})
    assert response.status_code == 422
    assert response.json()["detail"] == "Politeness 'formal' is not one of auto, plain, polite"


def test_requests_that_differ_only_by_a_default_control_share_one_answer(politeness_client):
    runner = politeness_client.app.state.runner
    first = attention(politeness_client, source="i like tea .", max_length=5)
    cached = len(runner.cache)
    assert attention(politeness_client, source="i like tea .", max_length=5, controls={"politeness": "auto"}) == first
    assert len(runner.cache) == cached


def test_a_model_without_controls_refuses_one(client):
    body = attention(client, source="hi", max_length=4)
    assert body["controls"] == {} and body["predictions"] == {}
    assert client.get("/api/v1/models/tiny").json()["controls"] == []
    response = client.post("/api/v1/translate", json={"source": "hi", "controls": {"politeness": "polite"}})
    assert response.status_code == 422
    assert response.json()["detail"] == "model tiny has no control 'politeness'; its controls: none"
