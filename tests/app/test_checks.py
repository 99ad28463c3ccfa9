"""The canonical call: requests that ask for the same computation share one cache key; and its estimated cost."""

from __future__ import annotations

from app import checks
from app.schemas import AttentionRequest, TranslateRequest
from app.settings import Settings
from backends.interface import SaliencyOptions


def post(client, path: str, body: dict) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text


def test_permuted_repeated_and_spelt_out_requests_share_one_cache_entry(client):
    limits = client.get("/api/v1/models").json()[0]["limits"]
    source = "this is an example"
    same = [
        {"source": source},
        {"source": source, "heads": [3, 1, 0, 2]},
        {"source": source, "heads": [0, 0, 1, 2, 3, 3], "layers": [1, 0, 1]},
        {"source": source, "kinds": ["cross", "encoder", "decoder", "cross"]},
        {
            "model": "tiny",
            "source": source,
            "target": None,
            "beam_size": 1,
            "max_length": limits["max_target_tokens"],
            "controls": {},
            "kinds": ["encoder", "decoder", "cross"],
            "layers": [0, 1],
            "heads": [0, 1, 2, 3],
            "precision": 4,
            "granularity": "token",
        },
    ]
    for body in same:
        post(client, "/api/v1/attention", body)
    assert len(client.app.state.runner.cache) == 1
    post(client, "/api/v1/attention", {"source": source, "heads": [0]})  # a different computation: its own entry
    assert len(client.app.state.runner.cache) == 2

    post(client, "/api/v1/translate", {"source": source})
    post(
        client,
        "/api/v1/translate",
        {"source": source, "model": "tiny", "beam_size": 1, "max_length": limits["max_target_tokens"]},
    )
    assert len(client.app.state.runner.cache) == 3


def test_the_cost_is_source_by_target_length_by_beam(client):
    registry = client.app.state.registry
    settings = Settings()
    _, model = registry.get(None)
    free = checks.check_translate(model, TranslateRequest(source="this is an example", beam_size=4, max_length=20), settings)
    assert free.source_length == 4
    assert checks.cost(free) == 4 * 20 * 4
    forced = checks.check_attention(
        model, AttentionRequest(source="this is an example", target="これ は 例 で す 。", beam_size=4), settings
    )
    assert checks.cost(forced) == 4 * 6  # one pass over the given target: the beam plays no part
    longest = checks.check_translate(model, TranslateRequest(source="this is " * 30, beam_size=8), settings)
    assert checks.cost(longest) > settings.cheap_cost >= checks.cost(free)


def test_methods_and_saliency_options_are_part_of_the_key_with_defaults_filled_in(client):
    source = "this is an example"
    post(client, "/api/v1/attention", {"source": source})
    post(client, "/api/v1/attention", {"source": source, "method": "weights"})
    assert len(client.app.state.runner.cache) == 1
    for body in (
        {"source": source, "method": "saliency"},
        {"source": source, "method": "saliency", "saliency": {}},
        {"source": source, "method": "saliency", "saliency": {"algorithm": "integrated_gradients", "steps": 20}},
    ):
        post(client, "/api/v1/attention", body)
    assert len(client.app.state.runner.cache) == 2
    post(client, "/api/v1/attention", {"source": source, "method": "saliency", "saliency": {"steps": 3}})
    post(client, "/api/v1/attention", {"source": source, "method": "norms"})
    assert len(client.app.state.runner.cache) == 4


def test_the_encoding_is_part_of_the_key_with_its_default_filled_in(client):
    source = "this is an example"
    post(client, "/api/v1/attention", {"source": source})
    post(client, "/api/v1/attention", {"source": source, "encoding": "lists"})
    assert len(client.app.state.runner.cache) == 1
    post(client, "/api/v1/attention", {"source": source, "encoding": "base64"})
    assert len(client.app.state.runner.cache) == 2


def test_saliency_costs_a_pass_per_produced_token_and_step(client):
    _, model = client.app.state.registry.get(None)
    settings = Settings()
    base = {"source": "this is an example", "target": "これ は 例 で す 。"}
    weights = checks.check_attention(model, AttentionRequest(**base), settings)
    alti = checks.check_attention(model, AttentionRequest(**base, method="alti"), settings)
    saliency = checks.check_attention(model, AttentionRequest(**base, method="saliency"), settings)
    assert checks.cost(alti) == checks.cost(weights) == 4 * 6
    assert saliency.saliency == SaliencyOptions("integrated_gradients", 20) and weights.saliency is None
    assert checks.cost(saliency) == 4 * 6 * 2 * 20 * 6
