"""A real uvicorn server: `attnscope serve` on a free port; the limits app.server sets against slow and oversized clients."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from app.settings import Settings
from tests.app.conftest import live_server

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


# --- slow and oversized clients, against the server as `attnscope serve` configures it (app.server) ---------


def connect(base: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10)
    return sock


def read_until_closed(sock: socket.socket, limit: float = 10) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received, time.monotonic() - started


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def assert_secured(headers: dict[str, str]) -> None:
    from app.middleware import SECURITY_HEADERS

    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value.lower()


@pytest.fixture
def hardened(tiny_model_dir):
    settings = Settings(model_dir=tiny_model_dir, header_timeout=1, body_timeout=1, keep_alive_timeout=1, max_connections=20)
    with live_server(settings) as base:
        yield base


@pytest.mark.parametrize("size", [20_000, 50_000_000])
def test_headers_over_16_kib_get_431_with_the_security_headers(hardened, size):
    sock = connect(hardened)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    try:
        sock.sendall(head)
    except (BrokenPipeError, ConnectionResetError):  # the server answered and closed before all 50 MB were sent
        pass
    status, headers, body = parse(read_until_closed(sock)[0])
    assert status == 431
    assert_secured(headers)
    assert "over the limit of 16384 bytes" in json.loads(body)["detail"]
    assert httpx.get(f"{hardened}/healthz").status_code == 200


def test_a_malformed_request_gets_400_with_the_security_headers(hardened):
    sock = connect(hardened)
    sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    status, headers, body = parse(read_until_closed(sock)[0])
    assert status == 400
    assert_secured(headers)
    assert "not valid HTTP/1.1" in json.loads(body)["detail"]


def test_headers_dribbled_past_the_header_timeout_get_408_and_a_close(hardened):
    sock = connect(hardened)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
    answer, took = read_until_closed(sock)
    status, headers, body = parse(answer)
    assert status == 408 and 0.9 < took < 2
    assert_secured(headers)
    assert "did not arrive within 1 s" in json.loads(body)["detail"]


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(hardened):
    answer, took = read_until_closed(connect(hardened))
    assert answer == b"" and 0.9 < took < 2


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(hardened):
    sock = connect(hardened)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer, took = read_until_closed(sock)
    assert parse(answer)[0] == 200 and 0.9 < took < 2


def test_a_body_dribbled_past_the_body_timeout_gets_408_and_a_close(hardened):
    sock = connect(hardened)
    sock.sendall(
        b"POST /api/v1/attention HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"
    )
    started = time.monotonic()
    answer = b""
    for _ in range(40):  # a byte every 0.1 s: 4 s of it, if nothing stops it
        try:
            sock.sendall(b" ")
        except (BrokenPipeError, ConnectionResetError):
            break
        time.sleep(0.1)
        sock.settimeout(0.01)
        try:
            if chunk := sock.recv(65536):
                answer += chunk
            else:
                break
        except TimeoutError:
            pass
    answer += read_until_closed(sock, limit=3)[0]
    took = time.monotonic() - started
    status, headers, body = parse(answer)
    assert status == 408 and took < 2.5, (status, took)
    assert_secured(headers)
    assert "did not arrive within 1 s" in json.loads(body)["detail"]


def test_connections_past_the_limit_get_503_and_are_closed(hardened):
    held = [connect(hardened) for _ in range(20)]
    time.sleep(0.2)
    status, headers, _ = parse(read_until_closed(connect(hardened), limit=3)[0])
    assert status == 503 and headers["retry-after"] == "1"
    assert_secured(headers)
    for sock in held:
        sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{hardened}/healthz").status_code == 200
