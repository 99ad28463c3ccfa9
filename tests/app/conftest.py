"""An app serving the tiny random model, through FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from model.translator import Translator


def make_client(model_dir: Path, **settings) -> TestClient:
    return TestClient(create_app(Settings(model_dir=model_dir, **settings)), raise_server_exceptions=False)


@pytest.fixture
def client(tiny_model_dir) -> Iterator[TestClient]:
    with make_client(tiny_model_dir) as test_client:
        yield test_client


def attention(client: TestClient, **body) -> dict:
    response = client.post("/api/v1/attention", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def served_translator(tiny_model_dir) -> Translator:
    """The model as the app loads it: from the checkpoint, whose weights are stored in fp16."""
    return Translator.from_checkpoint(tiny_model_dir / "tiny.pt", "cpu")
