"""The real server for the bench scripts and docs/screenshot.py (`attnscope serve` on a free loopback port),
and how the page benches print their figures."""

from __future__ import annotations

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


def start_server(model_dir: Path | str, port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the server and return once /readyz answers 200; exits the script with the reason otherwise."""
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
        command, cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
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
