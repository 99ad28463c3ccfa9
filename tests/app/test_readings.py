"""Target tokens carry their Latin-letter reading from the table shipped beside the checkpoint."""

import json

import pytest

from app.registry import ModelRegistry, RegistryError
from model.readings import readings_path
from tests.app.conftest import attention, make_client

READINGS = {"これ": "kore", "は": "wa", "例": "rei", "で": "de", "す": "su"}


@pytest.fixture
def client_with_readings(tiny_model_dir):
    blob = {"format": 1, "language": "ja", "readings": READINGS}
    readings_path(tiny_model_dir / "tiny.pt").write_text(json.dumps(blob, ensure_ascii=False), encoding="utf-8")
    with make_client(tiny_model_dir) as client:
        yield client


def test_forced_target_tokens_and_decoder_inputs_carry_readings(client_with_readings):
    body = attention(client_with_readings, source="This is an example.", target="これ は 例 で す 。")
    assert [t["reading"] for t in body["target_tokens"]] == ["kore", "wa", "rei", "de", "su", None, None]
    assert [t["reading"] for t in body["decoder_input_tokens"]] == [None, "kore", "wa", "rei", "de", "su", None]
    assert all(t["reading"] is None for t in body["source_tokens"])


def test_translate_returns_readings_of_what_it_produced(client_with_readings):
    body = client_with_readings.post("/api/v1/translate", json={"source": "This is an example."}).json()
    assert all(t["reading"] == READINGS.get(t["text"]) for t in body["target_tokens"])


def test_a_model_without_a_table_answers_with_null_readings(client):
    body = attention(client, source="This is an example.", target="これ は 例")
    assert all(t["reading"] is None for t in body["target_tokens"])


def test_a_broken_table_stops_the_registry_with_a_clear_message(tiny_model_dir):
    readings_path(tiny_model_dir / "tiny.pt").write_text("{not json", encoding="utf-8")
    with pytest.raises(RegistryError, match="readings table of tiny.pt"):
        ModelRegistry.load(tiny_model_dir, "cpu")
