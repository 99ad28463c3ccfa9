"""Latency and throughput of POST /api/v1/attention over real HTTP, against the model alone.

    python bench/api_latency.py [--model-dir model/checkpoints] [--requests 320] [--encoding lists]

Starts `attnscope serve` on a free port with the response cache disabled and sends its requests through
live_server.LeanClient (httpx would take a fifth of the 2 cores from the server), then prints:
- p50/p99 latency and requests/s at concurrency 1, 8 and 32, each request a distinct 10-word sentence
  (maps as --encoding asks: lists, the API's default, or base64, the page's; --max-batch 1 serves them
  without batching, for comparison);
- the in-process time of the same sentences through the model alone (Translator.attention, with the
  server's torch thread count), each right after its HTTP request at concurrency 1, the ratio HTTP p50 /
  in-process p50 (target <= 1.1) and their difference, the serving path's time around the model call;
- response bytes, raw and gzip, and gzip bytes per weight, of both encodings, for sources of 10, 40 and
  128 tokens;
- the error count (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from live_server import LeanClient, free_port, start_server  # noqa: E402

from app.settings import Settings  # noqa: E402
from model.translator import Translator  # noqa: E402

# Everyday words from the training vocabulary, so the sentences look like the corpus's.
WORDS = (
    "i you he she we they the a my his her this that old new good big small book house car dog cat tea water "
    "school friend teacher mother father city train letter story is was likes reads wants sees gives makes "
    "very quite often never always today yesterday here there with from to in on at and but"
).split()
CONCURRENCY = (1, 8, 32)


def distinct_sentences(count: int, words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    sentences: set[str] = set()
    while len(sentences) < count:
        sentences.add(" ".join(rng.choice(WORDS) for _ in range(words - 1)) + " .")
    return sorted(sentences)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def load(port: int, sentences: list[str], concurrency: int, encoding: str) -> tuple[list[float], float, int]:
    """Send every sentence once with `concurrency` clients, each on its own keep-alive connection, through the lean
    client (live_server.LeanClient: httpx's own CPU would be taken from the server); returns (latencies s, wall s,
    errors)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for s in sentences:
        queue.put_nowait(s)
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        client = LeanClient("127.0.0.1", port)
        try:
            while not queue.empty():
                source = queue.get_nowait()
                start = time.perf_counter()
                try:
                    status, _, _ = await client.post_json("/api/v1/attention", {"source": source, "encoding": encoding})
                    ok = status == 200
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                    await client.close()
                latencies.append(time.perf_counter() - start)
                errors += not ok
        finally:
            await client.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start, errors


async def alone_and_served(
    port: int, sentences: list[str], encoding: str, translator: Translator, limits: dict
) -> tuple[list[float], list[float], float, int]:
    """Each sentence over HTTP, then through the model alone in this process, one after the other, so both see the
    machine in the same state; returns (HTTP latencies s, in-process latencies s, HTTP wall s, errors)."""
    client = LeanClient("127.0.0.1", port)
    served, alone, wall, errors = [], [], 0.0, 0
    try:
        for source in sentences:
            start = time.perf_counter()
            status, _, _ = await client.post_json("/api/v1/attention", {"source": source, "encoding": encoding})
            served.append(time.perf_counter() - start)
            wall += served[-1]
            errors += status != 200
            start = time.perf_counter()
            translator.attention(source, max_length=limits["max_target_tokens"])
            alone.append(time.perf_counter() - start)
    finally:
        await client.close()
    return served, alone, wall, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Settings().model_dir)
    parser.add_argument("--model", default=None, help="checkpoint name in the folder (default: en-ja, else the first)")
    parser.add_argument("--requests", type=int, default=320, help="requests per concurrency level")
    parser.add_argument("--encoding", choices=("lists", "base64"), default="lists", help="how the maps are asked for")
    parser.add_argument("--max-batch", type=int, default=Settings().max_batch, help="the server's ATTNSCOPE_MAX_BATCH")
    args = parser.parse_args()

    checkpoint = next(
        (p for p in sorted(args.model_dir.glob("*.pt")) if p.stem == (args.model or "en-ja")),
        next(args.model_dir.glob("*.pt"), None),
    )
    if checkpoint is None:
        sys.exit(f"no checkpoint in {args.model_dir}")
    # Server and in-process timing must load the same weights, even if training rewrites the file meanwhile.
    served_dir = Path(tempfile.mkdtemp(prefix="attnscope-bench-"))
    for sibling in checkpoint.parent.glob(f"{checkpoint.stem}.*"):
        shutil.copy(sibling, served_dir)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(served_dir, port, env={"ATTNSCOPE_CACHE_SIZE": "0", "ATTNSCOPE_MAX_BATCH": str(args.max_batch)})
    errors = 0
    try:
        info = httpx.get(f"{base}/api/v1/models/{checkpoint.stem}").json()
        limits = info["limits"]
        print(
            f"model {info['name']} ({info['parameters'] / 1e6:.2f} M parameters), {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} before the run, cache disabled, max batch {args.max_batch}"
        )
        httpx.post(f"{base}/api/v1/attention", json={"source": "warm up ."}, timeout=120)

        # The model alone, with the thread count one server call gets, in this process.
        torch.set_num_threads(Settings().torch_threads)
        translator = Translator.from_checkpoint(served_dir / checkpoint.name, "cpu")
        translator.attention("warm up .", max_length=limits["max_target_tokens"])

        print(f"\nHTTP POST /api/v1/attention, distinct 10-word sentences, encoding {args.encoding}")
        print(f"{'concurrency':>11} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}")
        http_p50 = {}
        for level, concurrency in enumerate(CONCURRENCY):
            sentences = distinct_sentences(args.requests, 10, seed=level)
            if concurrency == 1:  # interleaved with the model alone: each sentence over HTTP, then in this process
                run = alone_and_served(port, sentences, args.encoding, translator, limits)
                latencies, in_process, wall, failed = asyncio.run(run)
            else:
                latencies, wall, failed = asyncio.run(load(port, sentences, concurrency, args.encoding))
            errors += failed
            http_p50[concurrency] = percentile(latencies, 50)
            print(
                f"{concurrency:>11} {len(latencies):>8} {http_p50[concurrency] * 1e3:>8.1f} "
                f"{percentile(latencies, 99) * 1e3:>8.1f} {len(latencies) / wall:>7.1f}"
            )

        model_p50 = percentile(in_process, 50)
        threads = torch.get_num_threads()
        print(f"\nin-process Translator.attention p50 {model_p50 * 1e3:.1f} ms (torch threads {threads}), each sentence "
              "right after its HTTP request at concurrency 1")  # fmt: skip
        print(f"ratio HTTP p50 (concurrency 1) / in-process p50 = {http_p50[1] / model_p50:.2f} (target <= 1.1); "
              f"the serving path took {(http_p50[1] - model_p50) * 1e3:.1f} ms of the p50")  # fmt: skip

        print("\nresponse size of /api/v1/attention (all maps, 4 decimals)")
        print(f"{'source tokens':>13} {'encoding':>8} {'weights':>8} {'raw bytes':>10} {'gzip bytes':>10} {'gzip B/weight':>13}")
        for tokens in (10, 40, 128):
            if tokens > limits["max_source_tokens"]:
                print(f"{tokens:>13}  over this model's limit of {limits['max_source_tokens']} tokens")
                continue
            source = distinct_sentences(1, tokens, seed=100 + tokens)[0]
            for encoding in ("lists", "base64"):
                url, body = f"{base}/api/v1/attention", {"source": source, "encoding": encoding}
                raw = httpx.post(url, json=body, headers={"accept-encoding": "identity"}, timeout=300)
                zipped = httpx.post(url, json=body, headers={"accept-encoding": "gzip"}, timeout=300)
                bad = (raw.status_code != 200) + (zipped.status_code != 200) + (zipped.headers.get("content-encoding") != "gzip")
                errors += bad
                if bad:
                    continue
                wire = int(zipped.headers["content-length"])
                weights = sum(len(m["layers"]) * len(m["heads"]) * len(m["query_tokens"]) * len(m["key_tokens"])
                              for m in raw.json()["attention"].values())  # fmt: skip
                print(f"{tokens:>13} {encoding:>8} {weights:>8} {len(raw.content):>10} {wire:>10} {wire / weights:>13.3f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(served_dir)
    print(f"\nerrors: {errors} (target 0)")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
