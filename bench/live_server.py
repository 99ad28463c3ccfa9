"""The real server for the bench scripts and docs/screenshot.py (`attnscope serve` on a free loopback port),
and how the page benches print their figures."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
# Debian chromium, headless, kept off the network: this machine reaches no host but loopback.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def summary(name: str, values: list[float], target: float | None = None, width: int = 56, decimals: int = 1) -> str:
    """One line of figures in ms: the median and the worst, and whether the median meets `target`."""
    median = statistics.median(values)
    verdict = "" if target is None else ("  ok" if median <= target else f"  OVER the {target:.0f} ms target")
    return f"{name:<{width}} median {median:7.{decimals}f} ms   worst {max(values):7.{decimals}f} ms{verdict}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path | str, port: int, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.Popen:
    """Start the server of the checkout `cwd` (this one by default) and return once /readyz answers 200; exits the
    script with the reason otherwise."""
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model-dir",
        str(model_dir),
    ]
    server = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited: {server.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    sys.exit("the server did not become ready in 120 s")


class LeanClient:
    """One HTTP/1.1 keep-alive connection that writes requests as bytes and reads answers by Content-Length.

    The load benches share the machine with the server they measure, so the client's own CPU is taken from the
    server: 32 httpx clients spent 3.7-4.3 ms of CPU a request here (0.33 of the 2 cores, and the server answered
    78-88 requests/s), these 0.17 ms (0.02 cores; 128-133 requests/s from the same server, the runs alternating).
    Like wrk or h2load it reads the whole answer and parses nothing past the status line and headers; a caller
    that needs the body decompresses it itself.
    """

    def __init__(self, host: str, port: int, timeout: float = 120):
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: dict, gzip_ok: bool = True) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body as sent: gzipped when the server gzipped it)."""
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\naccept-encoding: {'gzip' if gzip_ok else 'identity'}\r\n\r\n"
        )
        return await asyncio.wait_for(self._exchange(head.encode() + payload), self.timeout)

    async def _exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")[:-2]
        headers = {name.lower(): value.strip() for name, _, value in (field.partition(":") for field in fields)}
        if "content-length" not in headers:
            raise ValueError(f"an answer without content-length: {status_line}")
        content = await self._reader.readexactly(int(headers["content-length"]))
        if headers.get("connection") == "close":
            await self.close()
        return int(status_line.split()[1]), headers, content

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
