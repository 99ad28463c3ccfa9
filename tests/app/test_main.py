from __future__ import annotations

from tests.app.conftest import make_client


def test_cors_is_closed_by_default(client):
    response = client.get("/api/v1/models", headers={"origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/api/v1/attention", headers={"origin": "https://elsewhere.example", "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_the_configured_origins(tiny_model_dir):
    with make_client(tiny_model_dir, cors_origins=["https://notebook.example"]) as client:
        allowed = client.get("/api/v1/models", headers={"origin": "https://notebook.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://notebook.example"
        other = client.get("/api/v1/models", headers={"origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
