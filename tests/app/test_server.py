"""One test against a real uvicorn server, started by `attnscope serve` on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tiny_model_dir):
    port = free_port()
    env = {**os.environ, "ATTNSCOPE_CONCURRENCY": "1"}
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--model-dir", str(tiny_model_dir)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited: {process.stdout.read()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not become ready in 60 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_real_server_answers_over_http(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert [m["name"] for m in client.get("/api/v1/models").json()] == ["tiny"]

        response = client.post("/api/v1/attention", json={"source": "This is an example.", "target": "これ は 例 で す 。"})
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        body = response.json()
        assert body["translation"] == "これは例です。"
        assert set(body["attention"]) == {"encoder", "decoder", "cross"}

        error = client.post("/api/v1/attention", json={"source": "   "})
        assert (error.status_code, error.json()) == (422, {"detail": "the source is empty: type a sentence in English"})
        too_big = client.post("/api/v1/attention", content=b"x" * 70_000, headers={"content-type": "application/json"})
        assert too_big.status_code == 413
        assert client.get("/").status_code == 200
        assert client.get("/openapi.json").status_code == 200
