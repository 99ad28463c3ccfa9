from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def test_liveness(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_once_the_models_are_loaded(client):
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready", "models": ["tiny"]})


def test_not_ready_before_the_lifespan_has_loaded_the_models(tiny_model_dir):
    # Without the `with` block, TestClient does not run the lifespan: the state a request sees while loading.
    response = TestClient(create_app(Settings(model_dir=tiny_model_dir))).get("/readyz")
    assert (response.status_code, response.json()) == (503, {"detail": "models are still loading"})
