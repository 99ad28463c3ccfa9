"""Two checkouts' servers side by side, interleaved: is a change faster, measured in one run?

    python bench/ab_servers.py [--before main] [--after .] [--alone 150] [--phases 4] [--encoding base64]

`--before` is a checkout's folder or a git ref of this repository (default `main`; a ref is checked out in a
temporary worktree, removed at the end). Starts `attnscope serve` from each checkout (with this checkout's
Python and the same model folder, the response cache off) on free ports, warms both, then
- at 1 client: `--alone` distinct 10-word sentences to each, the two servers taking turns request by request
  (who goes first alternates), and prints each p50 and the ratio after / before;
- at 32 clients: `--phases` phases of 256 requests to each, the servers taking turns phase by phase, and prints
  each phase's requests/s, the means and their ratio.
Requests go through live_server.LeanClient, so the load client takes little of the cores the servers share.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api_latency import distinct_sentences, load  # noqa: E402
from interleave import in_turn  # noqa: E402
from live_server import LeanClient, free_port, start_server  # noqa: E402

from app.settings import Settings  # noqa: E402


def serve(checkout: Path, model_dir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    return start_server(model_dir, port, env={"ATTNSCOPE_CACHE_SIZE": "0"}, cwd=checkout), port


async def one_by_one(ports: dict[str, int], sentences, count: int, encoding: str) -> dict[str, list[float]]:
    clients = {name: LeanClient("127.0.0.1", port) for name, port in ports.items()}
    latencies: dict[str, list[float]] = {name: [] for name in ports}
    try:
        for turn in range(count):
            for name in in_turn(ports, turn):
                start = time.perf_counter()
                body = {"source": next(sentences), "encoding": encoding}
                status, _, _ = await clients[name].post_json("/api/v1/attention", body)
                latencies[name].append(time.perf_counter() - start)
                if status != 200:
                    sys.exit(f"{name} answered {status}")
    finally:
        for client in clients.values():
            await client.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="main", help="the checkout to compare against: a folder or a git ref")
    parser.add_argument("--after", type=Path, default=REPO, help="the changed checkout (default: this one)")
    parser.add_argument("--model-dir", type=Path, default=Settings().model_dir, help="the model folder both serve")
    parser.add_argument("--alone", type=int, default=150, help="requests to each server at 1 client")
    parser.add_argument("--phases", type=int, default=4, help="256-request phases at 32 clients for each server")
    parser.add_argument("--encoding", choices=("lists", "base64"), default="base64")
    args = parser.parse_args()

    sentences = iter(distinct_sentences(1000 + args.alone * 2 + args.phases * 512 + 512, 10, seed=11))
    with checkout(args.before) as before:
        checkouts = {"before": before, "after": args.after}
        servers = {name: serve(folder.resolve(), args.model_dir.resolve()) for name, folder in checkouts.items()}
        try:
            compare(servers, sentences, args)
        finally:
            for server, _ in servers.values():
                server.terminate()
                server.wait(timeout=30)


@contextmanager
def checkout(folder_or_ref: str) -> Iterator[Path]:
    if Path(folder_or_ref).is_dir():
        yield Path(folder_or_ref)
        return
    folder = Path(tempfile.mkdtemp(prefix="attnscope-before-")) / "checkout"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), folder_or_ref], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)], check=True)
        shutil.rmtree(folder.parent, ignore_errors=True)


def phase(port: int, sentences, requests: int, clients: int, encoding: str) -> float:
    """Requests/s of the next `requests` sentences from `clients` closed-loop clients (api_latency.load)."""
    latencies, wall, errors = asyncio.run(load(port, [next(sentences) for _ in range(requests)], clients, encoding))
    if errors:
        sys.exit(f"the server on port {port} answered {errors} requests with an error")
    return len(latencies) / wall


def compare(servers: dict, sentences, args: argparse.Namespace) -> None:
    ports = {name: port for name, (_, port) in servers.items()}
    for port in ports.values():
        phase(port, sentences, 64, 8, args.encoding)  # warm up
    alone = asyncio.run(one_by_one(ports, sentences, args.alone, args.encoding))
    p50 = {name: statistics.median(values) for name, values in alone.items()}
    for name in ports:
        print(f"1 client, {name}: p50 {p50[name] * 1e3:.1f} ms over {len(alone[name])} requests")
    print(f"ratio after / before, p50 at 1 client: {p50['after'] / p50['before']:.3f}")
    rates: dict[str, list[float]] = {name: [] for name in ports}
    for turn in range(args.phases):
        for name in in_turn(ports, turn):
            rates[name].append(phase(ports[name], sentences, 256, 32, args.encoding))
    for name, values in rates.items():
        phases = " ".join(f"{v:.1f}" for v in values)
        print(f"32 clients, {name}: {phases} requests/s, mean {statistics.mean(values):.1f}")
    print(f"ratio after / before at 32 clients: {statistics.mean(rates['after']) / statistics.mean(rates['before']):.2f}")


if __name__ == "__main__":
    main()
