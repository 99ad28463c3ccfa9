"""The `method` field of attention requests: what each method returns, and what a request may not ask."""

from __future__ import annotations

import pytest
import torch

from backends.interface import SaliencyOptions
from model.methods import method_maps
from tests.app.conftest import attention, make_client
from tests.conftest import write_model_dir

EXAMPLE = "This is an example."
TARGET = "これ は 例 で す 。"


def _post(client, **body):
    return client.post("/api/v1/attention", json={"source": EXAMPLE, **body})


def test_the_default_method_is_weights_and_every_map_says_so(client):
    default = attention(client, source=EXAMPLE, target=TARGET)
    assert default == attention(client, source=EXAMPLE, target=TARGET, method="weights")
    assert default["method"] == "weights" and default["contributions"] is None
    for m in default["attention"].values():
        assert (m["method"], m["rows_sum_to_one"], m["layer_weights"], m["residual"]) == ("weights", True, None, None)


def test_norms_are_the_models_norms_per_head_and_per_layer(client, served_translator):
    body = attention(client, source=EXAMPLE, target=TARGET, method="norms", precision=6)
    assert body["method"] == "norms" and body["contributions"] is None
    src = torch.tensor([[t.id for t in served_translator.source_tokens(EXAMPLE)]])
    target_ids = [t.id for t in served_translator.target_tokens(TARGET)]
    expected = method_maps(served_translator.model, src, target_ids, method="norms")
    for kind, m in body["attention"].items():
        assert m["method"] == "norms" and m["rows_sum_to_one"] is False and m["heads"] == [0, 1, 2, 3]
        per_head = torch.tensor(m["weights"], dtype=torch.float64)
        torch.testing.assert_close(per_head, expected.maps[kind].double(), atol=2e-6, rtol=0)
        layer = torch.tensor(m["layer_weights"], dtype=torch.float64)
        torch.testing.assert_close(layer, expected.layer_maps[kind].double(), atol=2e-6, rtol=0)
    weights = attention(client, source=EXAMPLE, target=TARGET)["attention"]["cross"]["weights"]
    assert body["attention"]["cross"]["weights"] != weights  # another cache entry, not the weights again


def test_alti_returns_layer_maps_and_contributions_that_sum_to_one(client):
    body = attention(client, source=EXAMPLE, target=TARGET, method="alti", kinds=["cross", "encoder"], layers=[1])
    assert list(body["attention"]) == ["encoder", "cross"]
    for kind, m in body["attention"].items():
        assert (m["method"], m["heads"], m["weights"], m["layers"]) == ("alti", [], [[]], [1])
        assert m["rows_sum_to_one"] is True
        rows = torch.tensor(m["layer_weights"]).sum(-1)
        if kind == "cross":
            rows = rows + torch.tensor(m["residual"])
        else:
            assert m["residual"] is None
        torch.testing.assert_close(rows, torch.ones_like(rows), atol=1e-3, rtol=0)
    contributions = body["contributions"]
    assert contributions["method"] == "alti" and contributions["normalised"] is True
    source, prefix = torch.tensor(contributions["source"]), torch.tensor(contributions["prefix"])
    assert source.shape == (7, 6) and prefix.shape == (7, 7)
    torch.testing.assert_close(source.sum(-1) + prefix.sum(-1), torch.ones(7), atol=1e-3, rtol=0)
    torch.testing.assert_close(torch.tensor(contributions["source_share"]), source.sum(-1), atol=1e-3, rtol=0)


def test_saliency_returns_contributions_only(client, served_translator):
    body = attention(client, source=EXAMPLE, target=TARGET, method="saliency", saliency={"steps": 4}, precision=6)
    assert body["attention"] == {} and body["method"] == "saliency"
    contributions = body["contributions"]
    assert contributions["normalised"] is False
    src = torch.tensor([[t.id for t in served_translator.source_tokens(EXAMPLE)]])
    target_ids = [t.id for t in served_translator.target_tokens(TARGET)]
    options = SaliencyOptions("integrated_gradients", 4)
    expected = method_maps(served_translator.model, src, target_ids, method="saliency", saliency_options=options).contributions
    source = torch.tensor(contributions["source"], dtype=torch.float64)
    torch.testing.assert_close(source, expected.source.double(), atol=2e-6, rtol=0)
    prefix = torch.tensor(contributions["prefix"])
    assert (prefix[torch.ones(7, 7, dtype=torch.bool).triu(1)] == 0).all()
    share = torch.tensor(contributions["source_share"])
    assert ((share > 0) & (share < 1)).all()
    gradient = attention(client, source=EXAMPLE, target=TARGET, method="saliency", saliency={"algorithm": "input_x_gradient"})
    assert gradient["contributions"]["source"] != contributions["source"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"method": "norms", "saliency": {"steps": 4}}, "saliency options are for method saliency, not norms"),
        ({"method": "saliency", "saliency": {"algorithm": "input_x_gradient", "steps": 4}}, "input_x_gradient takes none"),
        ({"method": "saliency", "saliency": {"steps": 65}}, "saliency steps 65 is over the limit: use 1 to 64"),
    ],
)
def test_bad_saliency_options_are_refused_with_what_to_change(client, body, message):
    response = _post(client, **body)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_an_unknown_method_is_a_validation_error(client):
    response = _post(client, method="attention-rollout")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][-1] == "method"


def test_a_method_the_model_lacks_is_refused_naming_its_methods(tmp_path):
    write_model_dir(tmp_path, "rnn", arch="rnn")
    with make_client(tmp_path) as client:
        response = _post(client, model="rnn", method="alti")
        assert response.status_code == 422
        assert response.json()["detail"] == "model rnn has no method alti; its methods are weights, norms, saliency"
        norms = attention(client, source=EXAMPLE, model="rnn", method="norms")["attention"]
        assert list(norms) == ["cross"] and norms["cross"]["heads"] == [0]
        saliency = attention(client, source=EXAMPLE, model="rnn", method="saliency", saliency={"steps": 2})
        assert len(saliency["contributions"]["source"]) == len(saliency["target_tokens"])


def test_models_list_their_methods(client):
    info = client.get("/api/v1/models").json()[0]
    assert [m["name"] for m in info["methods"]] == ["weights", "norms", "alti", "saliency"]
    saliency = info["methods"][-1]
    assert saliency["saliency_algorithms"] == ["integrated_gradients", "input_x_gradient"]
    assert all(m["label"] for m in info["methods"])


def test_a_free_translation_with_a_method_attributes_the_models_own_output(client):
    body = attention(client, source=EXAMPLE, method="alti")
    assert len(body["contributions"]["source"]) == len(body["target_tokens"])
    assert body["target_tokens"] == attention(client, source=EXAMPLE)["target_tokens"]
