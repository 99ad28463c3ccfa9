from __future__ import annotations

import threading
import time
from functools import partial

import anyio
import pytest

from app.runner import DeadlineExceeded, InferenceRunner, ResponseCache
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
                tasks.start_soon(partial(runner.gzipped_json, i, compute, cost=0))

    anyio.run(main)
    assert most == 2


def steps(seconds: float, step: float = 0.01):
    """A compute that decodes for `seconds`, calling stop before each step as every model does; records its steps."""
    taken = []

    def compute(stop):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            stop()
            taken.append(time.monotonic())
            time.sleep(step)
        return Settings()

    return compute, taken


def test_a_cheap_request_does_not_wait_behind_costly_ones():
    runner = InferenceRunner(concurrency=1, cache_size=0, cheap_cost=100)
    heavy, _ = steps(1.0)
    light, _ = steps(0.02)
    answered = {}

    async def timed(name, compute, cost):
        started = time.monotonic()
        await runner.gzipped_json(name, compute, cost=cost)
        answered[name] = time.monotonic() - started

    async def main():
        async with anyio.create_task_group() as tasks:
            for i in range(3):
                tasks.start_soon(timed, f"heavy {i}", heavy, 10_000)
            await anyio.sleep(0.1)
            assert (runner.costly.running, runner.costly.waiting) == (1, 2)
            tasks.start_soon(timed, "light", light, 100)

    anyio.run(main)
    assert answered["light"] < 0.3, answered  # not after the 3 s the heavy ones take in their lane
    assert answered["heavy 2"] > 2.5


def test_a_call_past_its_deadline_stops_at_its_next_step():
    runner = InferenceRunner(concurrency=1, cache_size=0, deadline=0.3)
    compute, taken = steps(5.0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="time limit of 0.3 s computing the answer") as raised:
        anyio.run(partial(runner.gzipped_json, "k", compute, cost=0))
    assert time.monotonic() - started < 0.5
    assert taken[-1] - started < 0.35  # no step ran after the deadline
    assert raised.value.retry_after == 1


def test_the_deadline_counts_the_wait_for_a_slot_as_well():
    # One slot, 0.5 s per request: the second waits 0.3 s, then has 0.2 s left, not 0.5.
    runner = InferenceRunner(concurrency=1, cache_size=0, deadline=0.5)
    first, _ = steps(0.3)
    second, taken = steps(5.0)
    outcomes = {}

    async def call(name, compute):
        started = time.monotonic()
        try:
            await runner.gzipped_json(name, compute, cost=0)
            outcomes[name] = "ok"
        except DeadlineExceeded:
            outcomes[name] = time.monotonic() - started

    async def main():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, "first", first)
            await anyio.sleep(0.01)
            tasks.start_soon(call, "second", second)

    anyio.run(main)
    assert outcomes["first"] == "ok"
    assert 0.45 < outcomes["second"] < 0.65, outcomes
    assert taken and taken[0] > 0  # it did get the slot and start before the deadline stopped it


def test_a_request_that_waits_past_its_deadline_never_runs():
    runner = InferenceRunner(concurrency=1, cache_size=0, deadline=0.3)
    waiter, taken = steps(1.0)
    outcomes = []

    def holder(stop):  # one long step that never checks stop: it keeps the slot for 0.5 s whatever happens
        time.sleep(0.5)
        return Settings()

    async def call(name, compute):
        try:
            await runner.gzipped_json(name, compute, cost=0)
            outcomes.append(f"{name} ok")
        except DeadlineExceeded as exc:
            outcomes.append(str(exc))

    async def main():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, "holder", holder)
            await anyio.sleep(0.1)
            tasks.start_soon(call, "waiter", waiter)

    anyio.run(main)
    assert "time limit of 0.3 s waiting for a model slot" in outcomes[0]
    assert outcomes[1] == "holder ok"
    assert taken == []
    assert (runner.cheap.running, runner.cheap.waiting) == (0, 0)


def test_costly_calls_give_way_while_a_cheap_one_runs():
    runner = InferenceRunner(concurrency=2, cache_size=0, cheap_cost=100)
    assert (runner.cheap.limiter.total_tokens, runner.costly.limiter.total_tokens) == (2, 1)
    heavy, taken = steps(2.0, step=0.02)
    cheap_window = []

    def cheap(stop):
        cheap_window.append(time.monotonic())
        time.sleep(0.6)
        cheap_window.append(time.monotonic())
        return Settings()

    async def main():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(runner.gzipped_json, "heavy", heavy, cost=10_000))
            await anyio.sleep(0.7)
            tasks.start_soon(partial(runner.gzipped_json, "cheap", cheap, cost=100))

    anyio.run(main)
    start, end = cheap_window
    during = sum(start < t < end for t in taken)
    before = sum(start - 0.6 < t < start for t in taken)
    # 20 ms steps alone; while the cheap call ran, a pause as long as each step: about half as many
    assert 0.3 * before < during < 0.75 * before, (before, during)
    assert runner.cheap.idle.is_set() and runner.costly.idle.is_set()
