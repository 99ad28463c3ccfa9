"""The built-in models through the model interface: what describe() says follows the architecture."""

from __future__ import annotations

import pytest

from app.registry import ModelRegistry
from backends.builtin import BuiltinModel
from backends.interface import InputError, TranslationModel, resolve_controls
from tests.app.conftest import attention, make_client
from tests.conftest import write_model_dir


def test_a_transformer_describes_three_kinds_and_its_politeness(tmp_path):
    model = BuiltinModel.load(write_model_dir(tmp_path, politeness_levels=("plain", "polite")), "cpu")
    assert isinstance(model, TranslationModel)
    description = model.describe()
    assert description.family == "attnscope-transformer"
    assert list(description.kinds) == ["encoder", "decoder", "cross"]
    assert [c.name for c in description.controls] == ["politeness"]
    assert description.tokens.word_level and description.tokens.target_joiner == ""


def test_an_rnn_describes_one_cross_map_and_no_controls(tmp_path):
    model = BuiltinModel.load(write_model_dir(tmp_path, "rnn", arch="rnn"), "cpu")
    description = model.describe()
    assert description.family == "attnscope-rnn"
    assert {kind: (s.layers, s.heads) for kind, s in description.kinds.items()} == {"cross": (1, 1)}
    assert description.controls == ()
    result = model.attention("this is an example .", max_length=6)
    assert set(result.maps) == {"cross"}
    assert result.maps["cross"].shape == (1, 1, len(result.target_tokens), len(result.source_tokens))
    with pytest.raises(InputError, match="no control 'politeness'"):
        resolve_controls(description, {"politeness": "plain"})


def test_the_service_serves_an_rnn_next_to_a_transformer_with_no_special_case(tmp_path):
    write_model_dir(tmp_path, "tiny")
    write_model_dir(tmp_path, "rnn", arch="rnn")
    assert ModelRegistry.load(tmp_path).names == ["rnn", "tiny"]
    with make_client(tmp_path) as client:
        info = {m["name"]: m for m in client.get("/api/v1/models").json()}
        assert info["rnn"]["kinds"] == {"cross": {"layers": 1, "heads": 1}}
        assert info["rnn"]["family"] == "attnscope-rnn"
        body = attention(client, model="rnn", source="This is an example.", max_length=6)
        assert list(body["attention"]) == ["cross"]
        forced = attention(client, model="rnn", source="This is an example.", target="これ は 例 で す 。")
        assert len(forced["attention"]["cross"]["weights"][0][0]) == 7
        refused = client.post("/api/v1/attention", json={"model": "rnn", "source": "hi", "kinds": ["encoder"]})
        assert refused.status_code == 422
        assert refused.json()["detail"] == "model rnn has no encoder attention; its kinds are cross"
