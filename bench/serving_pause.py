"""How long the server takes to answer from its cache, against the pause before the request and what fills it.

    python bench/serving_pause.py [--model-dir model/checkpoints] [--rounds 150]

The HTTP ratio target of docs/speed.md compares a request's time with its model call, so what counts is the serving
path as it runs right after a model call, when it is 2-4x slower than back to back. This bench separates the
causes a model call could be suspected of, with no model call in the path at all: it starts `attnscope serve` with
its response cache, sends one 10-word request until it is cached, and then, round after round, times the same
request at concurrency 1 (live_server.LeanClient, the time the client sees) after:
- no pause: right after the last answer;
- an idle pause of 1, 5, 25 or 100 ms: the client sleeps, both vCPUs may halt;
- 25 ms with every CPU spinning: a nice-19 process pinned to each CPU loops without touching memory, so no CPU
  halts and no cache is disturbed;
- 25 ms with every CPU reading memory: the same processes each sum a 64 MiB tensor over and over, which drives the
  server's code and data out of every cache level, the shared L3 included.
A model call's use of the caches would show as the last condition taking longer than the one before; the CPUs
halting, as the idle 25 ms taking longer than the spinning. It prints each condition's p50 and p90 and its p50
minus that of no pause. The conditions run in turn, reversed every other round (interleave.in_turn).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from interleave import in_turn  # noqa: E402
from live_server import LeanClient, free_port, start_server  # noqa: E402

from app.settings import Settings  # noqa: E402

SOURCE = "the old teacher often reads a book in the school ."
FILL_MS = 25
IDLE_MS = (1, 5, 25, 100)
SWEEP_MIB = 64


def fill_cpu(cpu: int, orders: Connection) -> None:
    """On `cpu`, at the lowest priority: for each order (ms, read_memory) spin or sum SWEEP_MIB that long, then
    say so; None ends it."""
    os.sched_setaffinity(0, {cpu})
    os.nice(19)
    import torch

    torch.set_num_threads(1)
    sweep = torch.ones(SWEEP_MIB * 2**20 // 4)
    while (order := orders.recv()) is not None:
        ms, read_memory = order
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            if read_memory:
                sweep.sum()
        orders.send(True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def measure(port: int, fillers: list[Connection], rounds: int) -> dict[str, list[float]]:
    """Milliseconds of the cached request after each pause, `rounds` of each."""

    def fill(read_memory: bool) -> None:
        for filler in fillers:
            filler.send((FILL_MS, read_memory))
        for filler in fillers:
            filler.recv()

    pauses = {"no pause": lambda: None}
    pauses |= {f"idle {ms} ms": (lambda ms=ms: time.sleep(ms / 1000)) for ms in IDLE_MS}
    pauses[f"{FILL_MS} ms, every CPU spinning"] = lambda: fill(read_memory=False)
    pauses[f"{FILL_MS} ms, every CPU reading {SWEEP_MIB} MiB"] = lambda: fill(read_memory=True)

    client = LeanClient("127.0.0.1", port)
    body = {"source": SOURCE, "encoding": "base64"}
    times: dict[str, list[float]] = {name: [] for name in pauses}
    try:
        for _ in range(50):  # cached, and the path warm
            status, _, _ = await client.post_json("/api/v1/attention", body)
            if status != 200:
                sys.exit(f"the server answered {status}")
        for turn in range(rounds):
            for name in in_turn(pauses, turn):
                await client.post_json("/api/v1/attention", body)  # the pause counts from an answer
                pauses[name]()
                start = time.perf_counter()
                status, _, _ = await client.post_json("/api/v1/attention", body)
                times[name].append((time.perf_counter() - start) * 1e3)
                if status != 200:
                    sys.exit(f"the server answered {status}")
    finally:
        await client.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Settings().model_dir)
    parser.add_argument("--rounds", type=int, default=150, help="requests timed for each condition")
    args = parser.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    fillers, processes = [], []
    for cpu in cpus:
        ours, theirs = multiprocessing.Pipe()
        process = multiprocessing.Process(target=fill_cpu, args=(cpu, theirs), daemon=True)
        process.start()
        fillers.append(ours)
        processes.append(process)
    port = free_port()
    server = start_server(args.model_dir, port)
    try:
        print(f"{len(cpus)} CPUs, load average {os.getloadavg()[0]:.1f} before the run, {args.rounds} rounds, "
              f"the same cached 10-word request (packed maps) at concurrency 1")  # fmt: skip
        times = asyncio.run(measure(port, fillers, args.rounds))
    finally:
        server.terminate()
        for filler in fillers:
            filler.send(None)
        for process in processes:
            process.join(timeout=5)
    baseline = percentile(times["no pause"], 50)
    print(f"\n{'before the request':<40} {'p50 ms':>7} {'p90 ms':>7} {'p50 - no pause':>15}")
    for name, values in times.items():
        p50 = percentile(values, 50)
        print(f"{name:<40} {p50:>7.2f} {percentile(values, 90):>7.2f} {p50 - baseline:>+15.2f}")


if __name__ == "__main__":
    main()
