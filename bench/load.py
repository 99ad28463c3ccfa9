"""Load and soak: the real server over loopback, 32 clients, a mix of work, and the server's memory.

    python bench/load.py [--model-dir model/checkpoints] [--clients 32] [--duration 60] [--soak-requests 10000]

Starts `attnscope serve` on a free 127.0.0.1 port (on a copy of the checkpoint, so training may go on
writing its own) and drives it with `--clients` concurrent clients for `--duration` seconds, then on
until `--soak-requests` requests have been answered (at most `--max-duration` seconds in all). The mix:
distinct sentences, forced targets, repeats (answered from the cache) and bad requests that must get
their documented 4xx; one more client sends a request of the model's longest source (128 tokens) now
and then. Prints requests/s, p50/p95/p99 latency, unexpected answers (target 0), the p99 of short
requests while a long one ran against their p99 otherwise (target <= 2x), and the server's RSS at
start, after 1,000 and after 10,000 requests (target: growth < 10% between the last two).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from live_server import free_port, start_server

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "i you he she we they the a my his her this that old new good big small book house car dog cat tea water "
    "school friend teacher mother father city train letter story is was likes reads wants sees gives makes "
    "very quite often never always today yesterday here there with from to in on at and but"
).split()
TARGETS = ["これ は 例 です 。", "私 は お 茶 が 好き です 。", "彼 は 学生 です 。", "猫 が いる 。"]
POPULAR = ["This is an example.", "I like tea.", "Don't go!", "He is my friend.", "What time is it now?"]
# (body, expected status): each must be answered with exactly this status
BAD_REQUESTS = [
    ({"source": "   "}, 422),
    ({"source": "this is", "layers": [99]}, 422),
    ({"source": "this is", "heads": [-1]}, 422),
    ({"source": "this is", "beam_size": 10**6}, 422),
    ({"source": "this is", "model": "../../etc/passwd"}, 404),
    ({"source": 5}, 422),
    (b'{"source": "unterminated', 422),
    (b'{"source": "\xff\xfe"}', 422),
    (b'{"source": "' + b"a" * 70_000 + b'"}', 413),
]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


class Load:
    def __init__(self, base: str, pid: int, args: argparse.Namespace, max_source_tokens: int):
        self.base, self.pid, self.args = base, pid, args
        self.started = time.monotonic()
        self.done = 0
        self.latencies: list[float] = []
        self.short: list[tuple[float, float]] = []  # (start, end) of every short successful request
        self.long_spans: list[tuple[float, float]] = []
        self.long_latencies: list[float] = []
        self.unexpected: list[str] = []
        self.rss: dict[str, float] = {"start": rss_mib(pid)}
        self.counter = itertools.count()
        self.long_source = " ".join(random.Random(7).choice(WORDS) for _ in range(max_source_tokens - 2)) + " ."

    def finished(self) -> bool:
        elapsed = time.monotonic() - self.started
        if elapsed > self.args.max_duration:
            return True
        return elapsed > self.args.duration and self.done >= self.args.soak_requests

    def distinct_sentence(self, rng: random.Random) -> str:
        n = next(self.counter)  # the counter makes every sentence distinct, so it misses the cache
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 11))]
        return " ".join(words) + f" {WORDS[n % len(WORDS)]} {WORDS[(n // len(WORDS)) % len(WORDS)]} {n} ."

    def pick(self, rng: random.Random) -> tuple[str, dict | bytes, int]:
        roll = rng.random()
        if roll < 0.45:
            return "/api/v1/attention", {"source": self.distinct_sentence(rng)}, 200
        if roll < 0.60:
            return "/api/v1/attention", {"source": self.distinct_sentence(rng), "target": rng.choice(TARGETS)}, 200
        if roll < 0.70:
            return "/api/v1/translate", {"source": self.distinct_sentence(rng), "beam_size": 4}, 200
        if roll < 0.85:
            return "/api/v1/attention", {"source": rng.choice(POPULAR)}, 200
        body, status = rng.choice(BAD_REQUESTS)
        return "/api/v1/attention", body, status

    def count(self) -> None:
        self.done += 1
        for mark in (1_000, 10_000):
            if self.done == mark:
                self.rss[f"after {mark:,}"] = rss_mib(self.pid)

    async def client(self, http: httpx.AsyncClient, seed: int) -> None:
        rng = random.Random(seed)
        while not self.finished():
            path, body, expected = self.pick(rng)
            kwargs = (
                {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {"json": body}
            )
            start = time.monotonic()
            try:
                response = await http.post(path, **kwargs)
                status = response.status_code
            except httpx.HTTPError as exc:
                status, response = None, exc
            end = time.monotonic()
            self.latencies.append(end - start)
            if status != expected:
                self.unexpected.append(f"{path} {str(body)[:60]}: expected {expected}, got {status} {str(response)[:120]}")
            elif expected == 200:
                self.short.append((start, end))
            self.count()

    async def long_client(self, http: httpx.AsyncClient) -> None:
        await asyncio.sleep(5)
        while not self.finished():
            start = time.monotonic()
            try:
                # distinct each time (its last words are a number), so it really runs instead of hitting the cache
                source = f"{self.long_source[: self.long_source.rindex(' ', 0, -3)]} {len(self.long_spans)} ."
                response = await http.post("/api/v1/attention", json={"source": source})
                problem = None if response.status_code == 200 else f"{response.status_code} {response.text[:120]}"
            except httpx.HTTPError as exc:
                problem = repr(exc)
            end = time.monotonic()
            if problem:
                self.unexpected.append(f"128-token request: {problem}")
            self.long_spans.append((start, end))
            self.long_latencies.append(end - start)
            self.count()
            await asyncio.sleep(self.args.long_pause)

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.args.clients + 1, max_keepalive_connections=self.args.clients + 1)
        async with httpx.AsyncClient(base_url=self.base, timeout=60, limits=limits) as http:
            await asyncio.gather(self.long_client(http), *(self.client(http, seed) for seed in range(self.args.clients)))
        self.rss["end"] = rss_mib(self.pid)


def overlaps(span: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO / "model" / "checkpoints")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60, help="seconds of load at least")
    parser.add_argument("--soak-requests", type=int, default=10_000, help="then go on until this many were answered")
    parser.add_argument("--max-duration", type=float, default=900, help="stop here whatever the count")
    parser.add_argument("--long-pause", type=float, default=2, help="seconds between two 128-token requests")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        for path in args.model_dir.glob("*"):
            if path.suffix in (".pt", ".json"):
                shutil.copy(path, tmp)
        port = free_port()
        server = start_server(tmp, port)
        base = f"http://127.0.0.1:{port}"
        try:
            model = httpx.get(f"{base}/api/v1/models").json()[0]
            load = Load(base, server.pid, args, model["limits"]["max_source_tokens"])
            asyncio.run(load.run())
            wall = time.monotonic() - load.started
        finally:
            server.terminate()
            server.wait(timeout=30)

    lat = load.latencies
    with_long = [e - s for s, e in load.short if overlaps((s, e), load.long_spans)]
    without_long = [e - s for s, e in load.short if not overlaps((s, e), load.long_spans)]
    print(f"model {model['name']}: {args.clients} clients + one sending {model['limits']['max_source_tokens']}-token requests")
    print(f"requests {load.done:,} in {wall:.0f} s: {load.done / wall:.1f} req/s")
    print("latency ms: " + "  ".join(f"p{q} {percentile(lat, q) * 1e3:.0f}" for q in (50, 95, 99)))
    print(f"unexpected answers: {len(load.unexpected)} (target 0)")
    for line in load.unexpected[:10]:
        print(f"  {line}")
    print(f"128-token requests: {len(load.long_latencies)}, p50 {percentile(load.long_latencies, 50) * 1e3:.0f} ms")
    p99_with, p99_without = percentile(with_long, 99), percentile(without_long, 99)
    print(
        f"short requests' p99 while a 128-token one ran: {p99_with * 1e3:.0f} ms ({len(with_long)} requests), "
        f"otherwise {p99_without * 1e3:.0f} ms ({len(without_long)}): ratio {p99_with / p99_without:.2f} (target <= 2)"
    )
    print("server RSS MiB: " + ", ".join(f"{name} {value:.0f}" for name, value in load.rss.items()))
    if "after 1,000" in load.rss and "after 10,000" in load.rss:
        growth = load.rss["after 10,000"] / load.rss["after 1,000"] - 1
        print(f"RSS growth from 1,000 to 10,000 requests: {growth * 100:+.1f}% (target < 10%)")
    sys.exit(1 if load.unexpected else 0)


if __name__ == "__main__":
    main()
