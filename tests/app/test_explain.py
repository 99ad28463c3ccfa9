"""POST /api/v1/explain: one head's computation of one row, over HTTP, against the maps of POST /api/v1/attention."""

from __future__ import annotations

import math

import pytest
import torch

from tests.app.conftest import attention, make_client
from tests.conftest import write_model_dir

EXAMPLE = "This is an example."
TARGET = "これ は 例 で す 。"


def explain(client, **body) -> dict:
    response = client.post("/api/v1/explain", json={"source": EXAMPLE, **body})
    assert response.status_code == 200, response.text
    return response.json()


def refusal(client, **body) -> str:
    response = client.post("/api/v1/explain", json={"source": EXAMPLE, **body})
    assert response.status_code == 422, response.text
    return response.json()["detail"]


@pytest.mark.parametrize("target", [TARGET, None])
def test_the_recomputed_softmax_row_is_the_maps_row_for_every_kind(client, target):
    forced = {} if target is None else {"target": target}
    maps = attention(client, source=EXAMPLE, **forced, precision=8)["attention"]
    for kind in ("encoder", "decoder", "cross"):
        for layer, head, query in [(0, 0, 0), (1, 3, 2), (1, 2, 4)]:
            e = explain(client, **forced, kind=kind, layer=layer, head=head, query=query, precision=8)
            assert (e["kind"], e["layer"], e["head"], e["query"]) == (kind, layer, head, query)
            q, keys = torch.tensor(e["queries"][query], dtype=torch.float64), torch.tensor(e["keys"], dtype=torch.float64)
            scores = keys @ q / math.sqrt(e["d_k"])
            assert torch.allclose(scores, torch.tensor(e["scores"], dtype=torch.float64), atol=1e-6)
            row = scores.masked_fill(~torch.tensor(e["allowed"]), float("-inf")).softmax(-1)
            expected = torch.tensor(maps[kind]["weights"][layer][head][query], dtype=torch.float64)
            assert torch.allclose(row, expected, atol=1e-6)
            assert torch.allclose(torch.tensor(e["weights"], dtype=torch.float64), expected, atol=1e-8)


def test_the_answer_names_its_axes_and_sizes(client):
    e = explain(client, target=TARGET, kind="decoder", layer=1, head=1, query=3)
    assert (e["query_axis"], e["key_axis"]) == ("target_tokens", "decoder_input_tokens")
    assert [t["text"] for t in e["decoder_input_tokens"]] == ["<s>", *TARGET.split()]
    assert (e["d_model"], e["heads"], e["d_k"], e["d_ff"], e["layer_norm"]) == (32, 4, 8, 64, "pre")
    assert e["allowed"] == [True] * 4 + [False] * 3  # the future of produced token 3 is masked
    assert [len(e[name]) for name in ("query_input", "attention_output", "residual_in", "residual_out")] == [32] * 4
    assert (len(e["key_inputs"]), len(e["key_inputs"][0]), len(e["queries"]), len(e["head_outputs"])) == (7, 32, 7, 4)
    assert (e["positions"]["encoding"], e["positions"]["side"], len(e["positions"]["table"])) == ("sinusoidal", "target", 64)
    assert e["forced"] is True and e["warnings"] == []


def test_out_of_range_and_missing_kinds_are_refused_naming_what_to_fix(tmp_path):
    write_model_dir(tmp_path)
    write_model_dir(tmp_path, "rnn", arch="rnn")
    with make_client(tmp_path, default_model="tiny") as client:

        def refused(**body) -> str:
            return refusal(client, **{"layer": 0, "head": 0, "query": 0, **body})

        assert refused(kind="cross", layer=2) == "cross layers 2 out of range: valid cross layers are 0 to 1"
        assert refused(kind="encoder", head=4) == "encoder heads 4 out of range: valid encoder heads are 0 to 3"
        assert refused(kind="encoder", query=6) == (
            "query 6 out of range: the source has 6 tokens as the model reads it (special tokens included), "
            "so valid queries are 0 to 5"
        )
        assert refused(target=TARGET, kind="cross", query=9).startswith("query 9 out of range: the target has 7 tokens")
        # the model's own translation is decoded first: the model refuses a query past its end
        assert refused(kind="decoder", query=63).startswith("query 63 out of range: the translation has")
        assert refused(model="rnn", kind="encoder") == "model rnn has no encoder attention; its kinds are cross"
        assert refused(model="rnn", kind="cross").startswith(
            "model rnn cannot explain its attention step by step (GET /api/v1/models gives it explains: false)"
        )
        assert refused(kind="self").startswith("kind: Input should be 'encoder', 'decoder' or 'cross'")
        assert refused(kind="cross", head=-1) == "head: Input should be greater than or equal to 0"
        models = {info["name"]: (info["explains"], info["layer_norm"]) for info in client.get("/api/v1/models").json()}
        assert models == {"rnn": (False, None), "tiny": (True, "pre")}


def test_a_second_identical_request_is_answered_from_the_cache(tiny_model_dir):
    with make_client(tiny_model_dir, cache_size=8) as client:
        model = client.app.state.registry.models["tiny"]
        calls = []
        explained = model.explain
        model.explain = lambda *args, **kwargs: calls.append(kwargs["query"]) or explained(*args, **kwargs)
        first = explain(client, target=TARGET, kind="cross", layer=0, head=0, query=1)
        assert explain(client, target=TARGET, kind="cross", layer=0, head=0, query=1) == first
        explain(client, target=TARGET, kind="cross", layer=0, head=0, query=2)
        assert calls == [1, 2]
