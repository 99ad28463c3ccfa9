"""Load and soak, a cost attack and slow sockets: the real server over loopback.

    python bench/load.py [--phase soak|cost-attack|slow-sockets|all] [--model-dir model/checkpoints]
                         [--clients 32] [--duration 60] [--soak-requests 10000]

Each phase starts its own `attnscope serve` on a free 127.0.0.1 port, on a copy of the checkpoint (so
training may go on writing its own), with the default settings, and stops by itself. `soak` (below) is
the default phase; `all` runs the three.

**cost-attack**: the heaviest valid request (a 128-token source of "!", beam_size 8, max_length 160), 16
at a time. First all 16 hang up after 1 s: prints how long the server's CPU stays busy after the
hang-ups (until a 100 ms window uses under 0.2 cores; target 0.5 s). Then for `--attack-duration` s,
16 attackers keep one heavy request each in flight (half hang up after 1 s and send the next, half
wait for their answer) while a distinct 5-word probe is sent every 0.5 s: prints the probe's p50/p99
(target p99 < 1 s), its 503s (target 0) and how the heavy requests ended.

**slow-sockets**: 125 connections dribble a request head one byte a second, 125 send a head and dribble
a 60,000-byte body, one sends a 50,000,000-byte header: prints when the server closed them and what it
answered (targets: the configured header and body timeouts; 431 for the big header).

**soak**: drives the server with `--clients` concurrent clients for `--duration` seconds, then on
until `--soak-requests` requests have been answered (at most `--max-duration` seconds in all). The mix:
distinct sentences, forced targets, repeats (answered from the cache) and bad requests that must get
their documented 4xx; one more client sends a request of the model's longest source (128 tokens) now
and then. Prints requests/s, p50/p95/p99 latency, unexpected answers (target 0), the p99 of short
requests while a long one ran against their p99 otherwise (target <= 2x), and the server's RSS (its model
processes' included) at
start, after 1,000 and after 10,000 requests (target: growth < 10% between the last two).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from live_server import free_port, start_server  # noqa: E402

from app.settings import Settings  # noqa: E402

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


def process_tree(pid: int) -> list[int]:
    """The server process and every process under it (its model processes)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        for child in children:
            pids += process_tree(int(child))
    return pids


def rss_mib(pid: int) -> float:
    """The resident memory of the server and its model processes, summed."""
    total = 0.0
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


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


@contextmanager
def served(model_dir: Path) -> Iterator[tuple[str, subprocess.Popen, dict]]:
    """`attnscope serve` on a copy of the model folder; yields its URL, its process and its default model."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in model_dir.glob("*"):
            if path.suffix in (".pt", ".json"):
                shutil.copy(path, tmp)
        port = free_port()
        server = start_server(tmp, port)
        base = f"http://127.0.0.1:{port}"
        try:
            # the model a request without "model" gets (en-ja-rnn lists before en-ja)
            yield base, server, next(m for m in httpx.get(f"{base}/api/v1/models").json() if m["default"])
        finally:
            server.terminate()
            server.wait(timeout=30)


def soak(args: argparse.Namespace) -> bool:
    with served(args.model_dir) as (base, server, model):
        load = Load(base, server.pid, args, model["limits"]["max_source_tokens"])
        asyncio.run(load.run())
        wall = time.monotonic() - load.started

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
    return not load.unexpected


# --- cost attack ------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time so far of the server and its model processes, their threads included."""
    total = 0
    for member in process_tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def heavy_body(n: int) -> bytes:
    # 127 "!" and a distinct last word: 128 tokens, the longest source, and never a cache hit
    return json.dumps({"source": "! " * 127 + f"{WORDS[n % len(WORDS)]}{n}", "beam_size": 8, "max_length": 160}).encode()


async def send_and_hang_up(port: int, body: bytes, after: float) -> None:
    """Send a request over a raw connection and close it `after` seconds later, without reading the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /api/v1/attention HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    await asyncio.sleep(after)
    writer.close()


async def cpu_busy_after(pid: int, since: float, limit: float = 30) -> float:
    """Seconds from `since` until a 200 ms window in which the process used under 0.1 cores."""
    while time.monotonic() < since + limit:
        before, started = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(0.2)
        if (cpu_seconds(pid) - before) / (time.monotonic() - started) < 0.1:
            return started - since
    return float("inf")


async def costly_lane_request(base: str, n: int) -> float:
    """Seconds to answer a short call of the costly lane (40 tokens at beam 4: a cost of 25,600, over the cheap cost)."""
    source = " ".join(WORDS[(n + i) % len(WORDS)] for i in range(39)) + f" {n}"
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            f"{base}/api/v1/attention", json={"source": source, "beam_size": 4, "kinds": ["cross"], "layers": [0]}
        )
    response.raise_for_status()
    return time.monotonic() - started


async def hang_ups(base: str, pid: int, count: int) -> dict[str, float]:
    """`count` heavy requests that hang up after 1 s: the cores the server used in that second, how long
    after the hang-ups it stayed busy, and how long a costly-lane call sent at the hang-ups took (and alone)."""
    port = int(base.rsplit(":", 1)[1])
    await costly_lane_request(base, 0)  # warm up
    alone = await costly_lane_request(base, 1)
    cpu, started = cpu_seconds(pid), time.monotonic()
    await asyncio.gather(*(send_and_hang_up(port, heavy_body(n), after=1.0) for n in range(count)))
    hung_up = time.monotonic()
    running = (cpu_seconds(pid) - cpu) / (hung_up - started)
    busy, after = await asyncio.gather(cpu_busy_after(pid, hung_up), costly_lane_request(base, 2))
    return {"running": running, "busy": busy, "after": after, "alone": alone}


class Attack:
    def __init__(self, base: str, port: int, duration: float):
        self.base, self.port, self.duration = base, port, duration
        self.ends = time.monotonic() + duration
        self.counter = itertools.count(1000)
        self.heavy: dict[str, int] = {}
        self.probes: list[tuple[float, int | str]] = []

    async def attacker(self, http: httpx.AsyncClient, hangs_up: bool) -> None:
        while time.monotonic() < self.ends:
            body = heavy_body(next(self.counter))
            if hangs_up:
                await send_and_hang_up(self.port, body, after=1.0)
                outcome = "hung up after 1 s"
            else:
                try:
                    response = await http.post("/api/v1/attention", content=body, headers={"content-type": "application/json"})
                    outcome = str(response.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
            self.heavy[outcome] = self.heavy.get(outcome, 0) + 1

    async def probe(self, http: httpx.AsyncClient, wait: float = 2) -> None:
        """A distinct 5-word sentence every 0.5 s, from `wait` s on (every slot of the costly lane is taken by then)."""
        rng = random.Random(5)
        await asyncio.sleep(wait)
        while time.monotonic() < self.ends:
            n = next(self.counter)
            source = " ".join(rng.choice(WORDS) for _ in range(4)) + f" {n}"
            started = time.monotonic()
            try:
                status: int | str = (await http.post("/api/v1/attention", json={"source": source})).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.probes.append((time.monotonic() - started, status))
            await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - started)))

    async def probe_alone(self, seconds: float) -> list[float]:
        """The probe's latencies with nothing else running: what the attack is compared with."""
        self.ends = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=self.base, timeout=60) as http:
            await self.probe(http, wait=0)
        latencies, self.probes = [seconds for seconds, _ in self.probes], []
        self.ends = time.monotonic() + self.duration
        return latencies

    async def run(self, attackers: int) -> None:
        limits = httpx.Limits(max_connections=attackers + 2)
        async with httpx.AsyncClient(base_url=self.base, timeout=60, limits=limits) as http:
            await asyncio.gather(self.probe(http), *(self.attacker(http, hangs_up=i % 2 == 0) for i in range(attackers)))


def cost_attack(args: argparse.Namespace) -> bool:
    with served(args.model_dir) as (base, server, model):
        port = int(base.rsplit(":", 1)[1])
        freed = asyncio.run(hang_ups(base, server.pid, 16))
        attack = Attack(base, port, args.attack_duration)
        alone = asyncio.run(attack.probe_alone(5))
        asyncio.run(attack.run(16))
    latencies = [seconds for seconds, status in attack.probes if status == 200]
    refused = sum(status == 503 for _, status in attack.probes)
    others = [status for _, status in attack.probes if status not in (200, 503)]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"cost attack on {model['name']}: 16 requests of 128 tokens, beam_size 8, max_length 160")
    print(
        f"16 that hang up after 1 s: the server used {freed['running']:.2f} cores while they ran and stayed busy "
        f"{freed['busy']:.2f} s after the hang-ups (target <= 0.5); a costly-lane call sent then took {freed['after']:.2f} s "
        f"({freed['alone']:.2f} s alone)"
    )
    print(f"5-word probe alone: p50 {percentile(alone, 50) * 1e3:.0f} ms, p99 {percentile(alone, 99) * 1e3:.0f} ms")
    print(
        f"5-word probe every 0.5 s for {args.attack_duration:g} s under 16 in flight: {len(attack.probes)} probes, "
        f"p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms (target < 1000), 503s {refused} (target 0), other {others}"
    )
    print("heavy requests: " + ", ".join(f"{outcome} x{count}" for outcome, count in sorted(attack.heavy.items())))
    return p99 < 1 and refused == 0 and not others and freed["busy"] <= 0.5


# --- slow sockets -----------------------------------------------------------------------------------


async def dribble(port: int, first: bytes, then: bytes, limit: float) -> tuple[float, str]:
    """Send `first`, then `then` one byte a second, until the server closes the connection (at most `limit` s).
    Returns how long the connection stayed open and the status line the server sent, if any."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(first)

    async def feed() -> None:
        for byte in then:
            await asyncio.sleep(1)
            writer.write(bytes([byte]))
            await writer.drain()

    feeding = asyncio.create_task(feed())
    answer = b""
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=limit)
    except (TimeoutError, ConnectionError):
        pass
    finally:
        open_for = time.monotonic() - started
        feeding.cancel()
        writer.close()
    return open_for, answer.split(b"\r\n", 1)[0].decode("latin-1") or "(closed without an answer)"


async def slow_clients(port: int, count: int, limit: float) -> dict[str, list[tuple[float, str]]]:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + b"s" * 200 + b"\r\n\r\n"
    body_head = (
        b"POST /api/v1/attention HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
    )
    headers = [dribble(port, b"", head, limit) for _ in range(count)]
    bodies = [dribble(port, body_head, b'{"source": "' + b"a" * 59_986 + b'"}', limit) for _ in range(count)]
    results = await asyncio.gather(*headers, *bodies)
    return {"headers dribbled": results[:count], "body dribbled": results[count:]}


def big_header(port: int, size: int) -> tuple[str, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        started = time.monotonic()
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before it was all sent
        answer = sock.recv(65536)
        return answer.split(b"\r\n", 1)[0].decode("latin-1"), time.monotonic() - started


def slow_sockets(args: argparse.Namespace) -> bool:
    settings = Settings()  # what the server runs with: the defaults
    ok = True
    with served(args.model_dir) as (base, server, _):
        port = int(base.rsplit(":", 1)[1])
        rss_before = rss_mib(server.pid)
        status, took = big_header(port, 50_000_000)
        rss_after = rss_mib(server.pid)
        print(f"a 50,000,000-byte header: {status} after {took:.2f} s; server RSS {rss_before:.0f} -> {rss_after:.0f} MiB")
        ok &= " 431 " in status + " "
        results = asyncio.run(slow_clients(port, 125, limit=75))
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    for (name, outcomes), timeout in zip(results.items(), (settings.header_timeout, settings.body_timeout), strict=True):
        durations = [seconds for seconds, _ in outcomes]
        answers: dict[str, int] = {}
        for _, answer in outcomes:
            answers[answer] = answers.get(answer, 0) + 1
        print(
            f"{len(outcomes)} connections, {name} a byte a second: closed after p50 {percentile(durations, 50):.1f} s, "
            f"max {max(durations):.1f} s (timeout {timeout:g} s); answers: "
            + ", ".join(f"{answer} x{count}" for answer, count in answers.items())
        )
        ok &= max(durations) < timeout + 2
    return ok


PHASES = {"soak": soak, "cost-attack": cost_attack, "slow-sockets": slow_sockets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=[*PHASES, "all"], default="soak")
    parser.add_argument("--model-dir", type=Path, default=REPO / "model" / "checkpoints")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60, help="seconds of load at least")
    parser.add_argument("--soak-requests", type=int, default=10_000, help="then go on until this many were answered")
    parser.add_argument("--max-duration", type=float, default=900, help="stop here whatever the count")
    parser.add_argument("--long-pause", type=float, default=2, help="seconds between two 128-token requests")
    parser.add_argument("--attack-duration", type=float, default=20, help="seconds of the cost attack's probe")
    args = parser.parse_args()
    ok = True
    for name in PHASES if args.phase == "all" else [args.phase]:
        # The figures depend on what else the machine runs: say how busy it was.
        print(f"== {name} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
        ok &= PHASES[name](args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
