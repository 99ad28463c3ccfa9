"""Security headers on every answer, the docs page's own policy, CORS closed by default, no internals in errors."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from app.middleware import CONTENT_SECURITY_POLICY
from tests.app.conftest import make_client


def assert_secured(response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    script_src = re.search(r"script-src ([^;]*)", policy).group(1)
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src


def test_the_app_policy_allows_only_its_own_scripts_and_styles():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/", None, 200),
        ("GET", "/static/js/main.js", None, 200),
        ("GET", "/vendor/plotly.min.js", None, 200),
        ("GET", "/healthz", None, 200),
        ("GET", "/openapi.json", None, 200),
        ("GET", "/api/v1/models", None, 200),
        ("POST", "/api/v1/attention", {"source": "this is an example"}, 200),
        ("POST", "/api/v1/translate", {"source": "this is an example"}, 200),
        ("POST", "/api/v1/attention", {"source": " "}, 422),
        ("POST", "/api/v1/attention", {"source": "hi", "model": "nope"}, 404),
        ("GET", "/api/v1/attention", None, 405),
        ("GET", "/nothing/here", None, 404),
        ("POST", "/api/v1/attention", {"source": "a" * 70_000}, 413),
    ],
)
def test_every_answer_carries_the_security_headers(client, method, path, body, status):
    response = client.request(method, path, json=body)
    assert response.status_code == status
    assert_secured(response)
    if path != "/docs":
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_an_unexpected_failure_carries_them_too(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /work/main/app/shaping.py")

    monkeypatch.setattr("app.shaping.attention", broken)
    response = client.post("/api/v1/attention", json={"source": "this is"})
    assert response.status_code == 500
    assert_secured(response)
    assert response.json() == {"detail": "internal error: the server could not answer this request; it has been logged"}


def test_the_docs_page_allows_exactly_its_own_inline_script_and_nothing_off_the_app(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert_secured(response)
    policy = response.headers["content-security-policy"]
    for script in re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "/openapi.json" in response.text
    assert "http" not in policy
    assert sorted(re.findall(r'(?:src|href)="([^"]*)"', response.text)) == [
        "/vendor/favicon.png",
        "/vendor/swagger-ui-bundle.js",
        "/vendor/swagger-ui.css",
    ]


def test_cors_is_closed_unless_configured(client, tiny_model_dir):
    preflight = {"origin": "https://evil.example", "access-control-request-method": "POST"}
    closed = client.options("/api/v1/attention", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    simple = client.post("/api/v1/attention", json={"source": "hi"}, headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
    with make_client(tiny_model_dir, cors_origins=["https://ok.example"]) as open_client:
        allowed = open_client.options("/api/v1/attention", headers={**preflight, "origin": "https://ok.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://ok.example"
        assert_secured(allowed)
        other = open_client.options("/api/v1/attention", headers=preflight)
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_errors_never_echo_paths_or_stack_traces(client):
    responses = [
        client.post("/api/v1/attention", content=b'{"source": ', headers={"content-type": "application/json"}),
        client.post("/api/v1/attention", json={"source": "hi", "model": "../../etc/passwd"}),
        client.get("/api/v1/models/..%2F..%2Fetc%2Fpasswd"),
        client.get("/static/../app/settings.py"),
        client.get("/static/%2e%2e/app/settings.py"),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500
        assert "Traceback" not in response.text and "/work" not in response.text and "site-packages" not in response.text
        assert "BaseSettings" not in response.text  # no file from outside static/ was served


def test_the_415_for_a_body_not_sent_as_json_is_secured(client):
    response = client.post("/api/v1/attention", content=b'{"source": "hi"}', headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert_secured(response)
