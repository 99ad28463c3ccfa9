"""Switching heads off through the API: the `ablate` field of both requests, and what the responses say."""

from __future__ import annotations

import pytest

from tests.app.conftest import attention, make_client
from tests.conftest import write_model_dir

EXAMPLE = "This is an example."
TARGET = "これ は 例 で す 。"
CROSS_1_2 = {"kind": "cross", "layer": 1, "head": 2}


@pytest.fixture
def uncached(tiny_model_dir):
    """No response cache: two requests that ask the same are computed twice."""
    with make_client(tiny_model_dir, cache_size=0) as client:
        yield client


@pytest.mark.parametrize("path", ["/api/v1/attention", "/api/v1/translate"])
def test_an_empty_ablation_list_gives_byte_identical_responses(uncached, path):
    plain = uncached.post(path, json={"source": EXAMPLE})
    empty = uncached.post(path, json={"source": EXAMPLE, "ablate": []})
    assert plain.status_code == empty.status_code == 200
    assert empty.content == plain.content
    assert plain.json()["ablated"] == []


def test_switched_off_heads_are_named_in_order_and_change_the_result(client):
    plain = attention(client, source=EXAMPLE, target=TARGET)
    ablate = [CROSS_1_2, {"kind": "encoder", "layer": 0, "head": 3}, CROSS_1_2, {"kind": "cross", "layer": 0, "head": 1}]
    off = attention(client, source=EXAMPLE, target=TARGET, ablate=ablate)
    assert off["ablated"] == [
        {"kind": "encoder", "layer": 0, "head": 3},
        {"kind": "cross", "layer": 0, "head": 1},
        CROSS_1_2,
    ]
    assert off["score"] != plain["score"]
    assert off["attention"]["encoder"]["weights"][0] == plain["attention"]["encoder"]["weights"][0]
    assert off["attention"]["encoder"]["weights"][1] != plain["attention"]["encoder"]["weights"][1]
    # cached apart: asking again without the field gives the unablated answer back, the same heads in another order the same
    assert attention(client, source=EXAMPLE, target=TARGET) == plain
    assert attention(client, source=EXAMPLE, target=TARGET, ablate=list(reversed(ablate))) == off


def test_translate_switches_heads_off_too(client):
    layers = client.get("/api/v1/models/tiny").json()["kinds"]["cross"]["layers"]
    every_cross = [{"kind": "cross", "layer": layer, "head": head} for layer in range(layers) for head in range(4)]
    # without cross-attention the decoder never sees the source: two sources of one length translate alike
    sources = (EXAMPLE, "i like tea now .")
    answers = [client.post("/api/v1/translate", json={"source": s, "ablate": every_cross}).json() for s in sources]
    assert answers[0]["translation"] == answers[1]["translation"] and answers[0]["score"] == answers[1]["score"]
    assert answers[0]["ablated"] == every_cross
    plain = [client.post("/api/v1/translate", json={"source": s}).json()["score"] for s in sources]
    assert plain[0] != plain[1]


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (
            {"kind": "cross", "layer": 2, "head": 0},
            "ablate: cross layer 2, head 0 is not a head of model tiny: cross layers are 0 to 1, heads 0 to 3",
        ),
        (
            {"kind": "encoder", "layer": 0, "head": 4},
            "ablate: encoder layer 0, head 4 is not a head of model tiny: encoder layers are 0 to 1, heads 0 to 3",
        ),
    ],
)
def test_a_head_the_model_lacks_is_422_naming_the_valid_range(client, head, message):
    response = client.post("/api/v1/attention", json={"source": EXAMPLE, "ablate": [head]})
    assert response.status_code == 422
    assert response.json()["detail"] == message


@pytest.mark.parametrize(
    "head", [{"kind": "self", "layer": 0, "head": 0}, {"kind": "cross", "layer": -1, "head": 0}, {"kind": "cross", "layer": 0}]
)
def test_a_malformed_head_is_422(client, head):
    response = client.post("/api/v1/translate", json={"source": EXAMPLE, "ablate": [head]})
    assert response.status_code == 422
    assert "ablate" in response.json()["detail"]


def test_the_rnn_can_switch_its_one_head_off_and_names_what_it_has(tmp_path):
    write_model_dir(tmp_path, "tiny_rnn", arch="rnn")
    with make_client(tmp_path) as client:
        info = client.get("/api/v1/models/tiny_rnn").json()
        assert info["ablation"] is True
        off = attention(client, source=EXAMPLE, target=TARGET, ablate=[{"kind": "cross", "layer": 0, "head": 0}])
        assert off["ablated"] == [{"kind": "cross", "layer": 0, "head": 0}]
        assert off["score"] != attention(client, source=EXAMPLE, target=TARGET)["score"]
        decoder = {"kind": "decoder", "layer": 0, "head": 0}
        response = client.post("/api/v1/attention", json={"source": EXAMPLE, "ablate": [decoder]})
    assert response.status_code == 422
    assert response.json()["detail"] == "ablate: model tiny_rnn has no decoder attention; its heads: cross (1 layer × 1 head)"


def test_models_say_whether_they_can_switch_heads_off(client):
    info = client.get("/api/v1/models/tiny").json()
    assert info["ablation"] is True
    assert info["head_importance"] is False


def test_every_method_runs_with_the_heads_switched_off(client):
    """norms, alti and saliency are of the ablated model: the same score as its weights, the switched-off head
    moves nothing under norms, and contributions still sum to one per produced token."""
    off = [CROSS_1_2, {"kind": "encoder", "layer": 1, "head": 0}]
    weights = attention(client, source=EXAMPLE, target=TARGET, ablate=off)
    norms = attention(client, source=EXAMPLE, target=TARGET, ablate=off, method="norms")
    alti = attention(client, source=EXAMPLE, target=TARGET, ablate=off, method="alti")
    saliency = attention(client, source=EXAMPLE, target=TARGET, ablate=off, method="saliency", saliency={"steps": 4})
    plain_saliency = attention(client, source=EXAMPLE, target=TARGET, method="saliency", saliency={"steps": 4})
    for answer in (norms, alti, saliency):
        assert answer["ablated"] == weights["ablated"] and answer["score"] == pytest.approx(weights["score"], abs=1e-4)
    assert all(value == 0 for row in norms["attention"]["cross"]["weights"][1][2] for value in row)
    assert any(value > 0 for row in norms["attention"]["cross"]["weights"][1][1] for value in row)
    assert all(value == 0 for row in norms["attention"]["encoder"]["weights"][1][0] for value in row)
    for source, prefix in zip(alti["contributions"]["source"], alti["contributions"]["prefix"], strict=True):
        assert sum(source) + sum(prefix) == pytest.approx(1, abs=1e-3)
    assert saliency["contributions"]["source"] != plain_saliency["contributions"]["source"]
