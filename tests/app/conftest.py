"""An app serving the tiny random model, through FastAPI's TestClient."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.server import uvicorn_options
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


@contextmanager
def live_server(settings: Settings, app: FastAPI | None = None) -> Iterator[str]:
    """The app (by default one made from `settings`) under a real uvicorn server on a free loopback port, in a
    thread of this process (so a test can still patch what the app calls); yields the base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = app or create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
