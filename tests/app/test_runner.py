from __future__ import annotations

import threading
import time

import anyio

from app.runner import InferenceRunner, ResponseCache
from app.settings import Settings


def test_cache_evicts_the_least_recently_used():
    cache = ResponseCache(2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # now b is the least recently used
    cache.put("c", b"3")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
    assert len(cache) == 2


def test_runner_bounds_the_model_calls_running_at_once():
    runner = InferenceRunner(concurrency=2, cache_size=0)
    running, most = 0, 0
    lock = threading.Lock()

    def compute(stop):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return Settings()

    async def main():
        async with anyio.create_task_group() as tasks:
            for i in range(6):
                tasks.start_soon(runner.gzipped_json, i, compute)

    anyio.run(main)
    assert most == 2
