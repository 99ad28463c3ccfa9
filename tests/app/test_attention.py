from __future__ import annotations

import base64
import gzip
import json
import math
import struct

import pytest
import torch

from app.runner import InferenceRunner
from app.shaping import _rounded, packed
from tests.app.conftest import attention, make_client

EXAMPLE = "This is an example."
SOURCE = ["this", "is", "an", "example", ".", "</s>"]
TARGET = ["これ", "は", "例", "で", "す", "。", "</s>"]


def texts(tokens: list[dict]) -> list[str]:
    return [t["text"] for t in tokens]


def test_all_three_kinds_are_labelled_as_the_model_computes_them(client):
    body = attention(client, source=EXAMPLE)
    source, target, inputs = texts(body["source_tokens"]), texts(body["target_tokens"]), texts(body["decoder_input_tokens"])
    assert source == SOURCE
    assert target[-1] == "</s>" or len(target) == 22  # the random model may run to the length limit
    assert inputs == ["<s>", *target[:-1]]
    assert body["forced"] is False
    maps = body["attention"]
    assert list(maps) == ["encoder", "decoder", "cross"]
    expected = {
        "encoder": ("source_tokens", "source_tokens", source, source, False),
        "decoder": ("target_tokens", "decoder_input_tokens", target, inputs, True),
        "cross": ("target_tokens", "source_tokens", target, source, False),
    }
    for kind, (query_axis, key_axis, queries, keys, causal) in expected.items():
        m = maps[kind]
        assert (m["query_axis"], m["key_axis"], m["query_tokens"], m["key_tokens"], m["causal"]) == (
            query_axis,
            key_axis,
            queries,
            keys,
            causal,
        )
        assert (m["layers"], m["heads"]) == ([0, 1], [0, 1, 2, 3])
        weights = torch.tensor(m["weights"])
        assert weights.shape == (2, 4, len(queries), len(keys))
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=len(keys) * 5e-5)


def test_decoder_self_attention_is_causal_with_exact_zeros_above_the_diagonal(client):
    weights = torch.tensor(attention(client, source=EXAMPLE, target="これ は 例 で す 。")["attention"]["decoder"]["weights"])
    future = torch.ones(weights.shape[-2:], dtype=torch.bool).triu(1)
    assert (weights[..., future] == 0).all()
    assert (weights[..., ~future] > 0).all()


def test_weights_are_the_models_own_rounded_to_the_precision(client, served_translator):
    body = attention(client, source=EXAMPLE, target="これ は 例 で す 。", precision=6)
    maps = served_translator.attention(EXAMPLE, "これ は 例 で す 。").maps
    for kind in ("encoder", "decoder", "cross"):
        served = torch.tensor(body["attention"][kind]["weights"], dtype=torch.float64)
        assert torch.allclose(served, maps[kind].double(), atol=6e-7)


def test_precision_sets_the_decimal_places(client):
    weights = attention(client, source=EXAMPLE, precision=2)["attention"]["encoder"]["weights"]
    values = [v for layer in weights for head in layer for row in head for v in row]
    assert all(round(v, 2) == v for v in values)
    assert any(v != 0 for v in values)


def test_forced_decoding_uses_the_given_target(client):
    body = attention(client, source=EXAMPLE, target="これ は 例 で す 。")
    assert body["forced"] is True
    assert texts(body["target_tokens"]) == TARGET
    assert texts(body["decoder_input_tokens"]) == ["<s>", *TARGET[:-1]]
    assert body["translation"] == "これは例です。"
    assert body["score"] < 0
    # plain Japanese is segmented over the vocabulary into the same tokens
    assert texts(attention(client, source=EXAMPLE, target="これは例です。")["target_tokens"]) == TARGET


def test_kinds_layers_and_heads_select_slices_of_the_full_response(client):
    full = attention(client, source=EXAMPLE)["attention"]
    part = attention(client, source=EXAMPLE, kinds=["cross"], layers=[1], heads=[2, 0, 2])["attention"]
    assert list(part) == ["cross"]
    assert (part["cross"]["layers"], part["cross"]["heads"]) == ([1], [0, 2])
    assert part["cross"]["weights"] == [[full["cross"]["weights"][1][0], full["cross"]["weights"][1][2]]]


def test_token_flags_mark_unknown_and_special_tokens(client):
    tokens = attention(client, source="This is a zebra.")["source_tokens"]
    assert [(t["text"], t["unknown"], t["special"]) for t in tokens] == [
        ("this", False, False),
        ("is", False, False),
        ("a", True, False),
        ("zebra", True, False),
        (".", False, False),
        ("</s>", False, True),
    ]
    assert tokens[2]["id"] == tokens[3]["id"] == 1  # <unk>


@pytest.mark.parametrize(
    ("source", "tokens"),
    [
        ("this 😀 is", ["this", "😀", "is", "</s>"]),
        ("\u202bthis is\u202c", ["this", "is", "</s>"]),  # RTL embedding marks are formatting, dropped
        ("שלום this", ["שלום", "this", "</s>"]),
        ("this\u0000 is\u0007", ["this", "is", "</s>"]),  # NUL and other control characters are dropped
        ("this\ud800 is", ["this", "is", "</s>"]),  # a lone surrogate too
    ],
)
def test_any_unicode_is_handled(client, source, tokens):
    # The body is built by hand: httpx cannot encode a lone surrogate, but JSON can carry one.
    response = client.post(
        "/api/v1/attention", content=json.dumps({"source": source}), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert texts(response.json()["source_tokens"]) == tokens


def test_large_responses_are_gzipped(client):
    response = client.post("/api/v1/attention", json={"source": EXAMPLE}, headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < len(response.content)
    small = client.get("/healthz", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in small.headers


def test_identical_requests_are_answered_from_the_cache(client):
    runner: InferenceRunner = client.app.state.runner
    first = client.post("/api/v1/attention", json={"source": EXAMPLE})
    assert len(runner.cache) == 1
    second = client.post("/api/v1/attention", json={"source": EXAMPLE})
    assert len(runner.cache) == 1
    assert second.content == first.content
    client.post("/api/v1/attention", json={"source": EXAMPLE, "heads": [0]})
    client.post("/api/v1/translate", json={"source": EXAMPLE})
    assert len(runner.cache) == 3


def test_cache_size_zero_disables_the_cache(tiny_model_dir):
    with make_client(tiny_model_dir, cache_size=0) as client:
        first = client.post("/api/v1/attention", json={"source": EXAMPLE})
        assert client.post("/api/v1/attention", json={"source": EXAMPLE}).content == first.content
        assert len(client.app.state.runner.cache) == 0


def test_the_cache_keeps_answers_gzipped(client):
    response = client.post("/api/v1/attention", json={"source": EXAMPLE}, headers={"accept-encoding": "gzip"})
    assert client.app.state.runner.cache.bytes == int(response.headers["content-length"]) < len(response.content)


def test_gzip_body_decodes_to_the_same_json(client):
    response = client.post("/api/v1/attention", json={"source": EXAMPLE})
    raw = client.post("/api/v1/attention", json={"source": EXAMPLE}, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert raw.content == response.content
    assert len(gzip.compress(raw.content)) < len(raw.content)


def unpacked(encoded: dict) -> list:
    """EncodedWeights as a reader unpacks it: little-endian integers over scale, nested by shape."""
    raw = base64.b64decode(encoded["data"])
    code = {"uint16": "H", "uint32": "I", "float64": "d"}[encoded["dtype"]]
    flat = [number / encoded["scale"] for number in struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw)]
    assert len(flat) == math.prod(encoded["shape"])
    for size in reversed(encoded["shape"][1:]):
        flat = [flat[i : i + size] for i in range(0, len(flat), size)]
    return flat


@pytest.mark.parametrize(
    "body",
    [
        {"source": "This is an example."},
        {"source": "i like tea !", "target": "私 は お 茶 が 好き", "precision": 8},
        {"source": "the cat and the dog", "beam_size": 3, "kinds": ["cross", "decoder"], "heads": [1, 3], "precision": 2},
        {"source": "the cat and the dog", "method": "norms"},
        {"source": "the cat and the dog", "method": "norms", "precision": 8},
        {"source": "the cat and the dog", "method": "alti"},
    ],
)
def test_packed_maps_unpack_to_the_very_numbers_of_the_lists(client, body):
    lists = attention(client, **body)
    packed = attention(client, **body, encoding="base64")
    assert packed.keys() == lists.keys()
    for kind, listed in lists["attention"].items():
        encoded = packed["attention"][kind].pop("encoded")
        assert listed.pop("encoded") is None
        if not listed["heads"]:  # alti has no per-head maps: nothing to pack, the same empty lists
            assert encoded is None and packed["attention"][kind] == listed
            continue
        assert packed["attention"][kind].pop("weights") is None
        weights = listed.pop("weights")
        assert unpacked(encoded) == weights  # equal as floats, not merely within the precision
        largest = max(w for layer in weights for head in layer for row in head for w in row) * 10 ** body.get("precision", 4)
        narrowest = "uint16" if largest < 2**16 else "uint32" if largest < 2**32 else "float64"
        assert encoded["dtype"] == narrowest
        axes = ("layers", "heads", "query_tokens", "key_tokens")
        assert encoded["shape"] == [len(listed[axis]) for axis in axes]
        assert packed["attention"][kind] == listed  # tokens, axes and indices as the lists answer has them


def test_values_too_large_for_uint32_pack_as_float64_holding_the_same_numbers():
    norms = torch.tensor([[[[0.0, 1.5, 42.94967296], [123456.12345678, 7.0, 0.00000001]]]])  # (1, 1, 2, 3)
    encoded = packed(norms, 8).model_dump()
    assert encoded["dtype"] == "float64"
    assert unpacked(encoded) == _rounded(norms, 8).tolist()
    assert packed(norms, 2).dtype == "uint32" and unpacked(packed(norms, 2).model_dump()) == _rounded(norms, 2).tolist()
