from __future__ import annotations

import gzip
import json
import threading
import time
from functools import partial

import anyio
import numpy as np
import pytest

from app import checks, shaping
from app.registry import ModelRegistry
from app.runner import (
    Batchable,
    DeadlineExceeded,
    InferenceRunner,
    RequestCancelled,
    ResponseCache,
    ServerBusy,
    answer_json,
    gzip_json,
)
from app.schemas import AttentionRequest, ErrorResponse, ExplainRequest
from app.settings import Settings
from backends.interface import never_stop


def test_cache_evicts_the_least_recently_used():
    cache = ResponseCache(2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # now b is the least recently used
    cache.put("c", b"3")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
    assert len(cache) == 2


def test_gzip_json_is_plain_gzip_with_no_time_stamp():
    answer = ErrorResponse(detail="the same words again " * 200)
    body = gzip_json(answer)
    assert gzip.decompress(body) == answer.model_dump_json().encode()
    assert body[:3] == b"\x1f\x8b\x08" and body[4:8] == bytes(4)  # gzip, deflate, mtime 0
    assert len(body) < len(answer.model_dump_json()) / 10
    assert gzip_json(answer) == body  # the same answer is the same bytes, whenever it is made


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


# --- batching -------------------------------------------------------------------------------------------------------


class Recorder:
    """A run_many that decodes for `seconds` in steps, calling every live member's stop each step as the models do,
    and records the batches it was given and each member's steps."""

    def __init__(self, seconds: float = 0.2, step: float = 0.01, per_item: float = 0.0):
        self.seconds, self.step, self.per_item = seconds, step, per_item
        self.batches: list[list[str]] = []
        self.steps: dict[str, int] = {}

    def __call__(self, context, items, stops):
        self.batches.append(list(items))
        answers: list = [None] * len(items)
        end = time.monotonic() + self.seconds + self.per_item * len(items)
        while time.monotonic() < end and any(a is None for a in answers):
            for i, (item, stop) in enumerate(zip(items, stops, strict=True)):
                if answers[i] is None:
                    try:
                        stop()
                        self.steps[item] = self.steps.get(item, 0) + 1
                    except Exception as exc:
                        answers[i] = exc
            time.sleep(self.step)
        return [Settings(host=item) if a is None else a for item, a in zip(items, answers, strict=True)]


def batchable(item: str, run_many, group="g"):
    return Batchable(group, item, run_many)


def test_concurrent_requests_of_a_group_share_one_model_call():
    runner = InferenceRunner(concurrency=1, cache_size=0, max_batch=4, batch_window=0.05)
    run_many = Recorder(0.2)
    bodies = {}

    async def call(item):
        bodies[item] = await runner.gzipped_json(item, batchable(item, run_many), cost=0)

    async def main():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, "first")
            await anyio.sleep(0.05)  # the first runs alone; six more arrive while it runs
            for i in range(6):
                tasks.start_soon(call, f"r{i}")
            tasks.start_soon(call, "other group")

    anyio.run(main)
    assert run_many.batches[0] == ["first"]
    assert run_many.batches[1] == ["r0", "r1", "r2", "r3"]  # the cap
    assert sorted(sum(run_many.batches[2:], [])) == ["other group", "r4", "r5"]
    for item, body in bodies.items():
        assert Settings.model_validate_json(gzip.decompress(body)).host == item  # each request got its own answer


def test_a_lone_request_does_not_wait_for_the_window():
    runner = InferenceRunner(concurrency=2, cache_size=0, batch_window=5.0)
    run_many = Recorder(0.0)
    started = time.monotonic()
    anyio.run(partial(runner.gzipped_json, "alone", batchable("alone", run_many), cost=0))
    assert time.monotonic() - started < 1.0  # not the 5 s window
    assert run_many.batches == [["alone"]]


def test_while_the_lane_is_busy_a_batch_waits_the_window_for_company():
    runner = InferenceRunner(concurrency=2, cache_size=0, max_batch=8, batch_window=0.3)
    run_many = Recorder(0.05)
    holder, _ = steps(1.0)

    async def main():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(runner.gzipped_json, "holder", holder, cost=0))  # the other slot is busy
            await anyio.sleep(0.05)
            tasks.start_soon(partial(runner.gzipped_json, "a", batchable("a", run_many), cost=0))
            await anyio.sleep(0.1)  # well inside the window
            tasks.start_soon(partial(runner.gzipped_json, "b", batchable("b", run_many), cost=0))

    anyio.run(main)
    assert run_many.batches == [["a", "b"]]


def test_a_request_that_waited_for_a_slot_still_waits_the_window_from_taking_it():
    # Under load the clients of a batch that just ended send their next requests a moment later: a request that
    # waited its turn would otherwise start nearly alone and hold the slot as long as a full batch.
    runner = InferenceRunner(concurrency=2, cache_size=0, max_batch=8, batch_window=0.3)
    run_many = Recorder(0.05)
    holder, _ = steps(1.5)
    first = Recorder(0.5)

    async def main():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(runner.gzipped_json, "holder", holder, cost=0))  # one slot, throughout
            tasks.start_soon(partial(runner.gzipped_json, "x", batchable("x", first, group="other"), cost=0))
            await anyio.sleep(0.1)
            tasks.start_soon(partial(runner.gzipped_json, "a", batchable("a", run_many), cost=0))  # waits for x's slot
            await anyio.sleep(0.5)  # x has ended and "a" has its slot, 0.5 s after it arrived
            tasks.start_soon(partial(runner.gzipped_json, "b", batchable("b", run_many), cost=0))

    anyio.run(main)
    assert run_many.batches == [["a", "b"]]


def test_a_batch_waits_for_the_clients_of_the_last_batch_to_come_back():
    # One slot, closed-loop clients: a batch's clients send their next requests a moment after their answers. The
    # next batch waits (up to the window) for as many as were answered, rather than start with the first one back.
    runner = InferenceRunner(concurrency=1, cache_size=0, max_batch=8, batch_window=0.5)
    run_many = Recorder(0.05)

    async def client(name: str, rounds: int, think: float):
        for round_ in range(rounds):
            await runner.gzipped_json(f"{name}{round_}", batchable(f"{name}{round_}", run_many), cost=0)
            await anyio.sleep(think)

    async def main():
        async with anyio.create_task_group() as tasks:
            for name, think in (("a", 0.0), ("b", 0.03), ("c", 0.06)):
                tasks.start_soon(client, name, 3, think)

    anyio.run(main)
    # The three start together; each later batch waited for the slowest of the three (60 ms), inside the window.
    assert [sorted(batch) for batch in run_many.batches] == [["a0", "b0", "c0"], ["a1", "b1", "c1"], ["a2", "b2", "c2"]]


def test_a_lone_client_does_not_wait_for_itself():
    # Concurrency 1: the answer of the last batch has come back, as the request that heads the queue.
    runner = InferenceRunner(concurrency=2, cache_size=0, batch_window=5.0)
    run_many = Recorder(0.0)

    async def main():
        for round_ in range(3):
            await runner.gzipped_json(round_, batchable(str(round_), run_many), cost=0)

    started = time.monotonic()
    anyio.run(main)
    assert time.monotonic() - started < 1.0  # not a 5 s window a round
    assert run_many.batches == [["0"], ["1"], ["2"]]


def test_a_member_that_leaves_mid_batch_stops_alone_and_its_slot_follows_the_batch():
    runner = InferenceRunner(concurrency=1, cache_size=0, max_batch=4, batch_window=0.1)
    run_many = Recorder(0.5, step=0.01)
    gone = anyio.Event()
    outcomes = {}

    async def client_gone():
        await gone.wait()

    async def call(item, watcher=None):
        try:
            await runner.gzipped_json(item, batchable(item, run_many), watcher, cost=0)
            outcomes[item] = "ok"
        except RequestCancelled:
            outcomes[item] = "cancelled"

    async def main():
        async with anyio.create_task_group() as tasks:
            holder, _ = steps(0.1)
            tasks.start_soon(partial(runner.gzipped_json, "holder", holder, cost=0))
            await anyio.sleep(0.02)
            tasks.start_soon(call, "stays")
            tasks.start_soon(call, "leaves", client_gone)
            await anyio.sleep(0.25)  # both run in one batch by now
            assert runner.cheap.running == 1
            gone.set()

    anyio.run(main)
    assert run_many.batches == [["stays", "leaves"]]
    assert outcomes == {"stays": "ok", "leaves": "cancelled"}
    assert run_many.steps["leaves"] < run_many.steps["stays"] * 0.8  # it stopped at its next step, the other went on
    assert (runner.cheap.running, runner.cheap.waiting) == (0, 0)


def test_waiting_members_count_against_the_queue_and_leave_it_at_their_deadline():
    runner = InferenceRunner(concurrency=1, cache_size=0, max_batch=4, deadline=0.4, max_queue=2)
    run_many = Recorder(0.0)
    outcomes = {}

    def holder(stop):  # never checks stop: keeps the only slot for 0.8 s
        time.sleep(0.8)
        return Settings()

    async def call(item):
        try:
            await runner.gzipped_json(item, batchable(item, run_many), cost=0)
            outcomes[item] = "ok"
        except ServerBusy as exc:  # DeadlineExceeded included
            outcomes[item] = str(exc)

    async def main():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(runner.gzipped_json, "holder", holder, cost=0))
            await anyio.sleep(0.05)
            for item in ("waits 1", "waits 2", "turned away"):
                tasks.start_soon(call, item)
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)
            assert runner.cheap.waiting == 2

    anyio.run(main)
    assert "requests are already waiting" in outcomes["turned away"]
    assert "waiting for a model slot" in outcomes["waits 1"] and "waiting for a model slot" in outcomes["waits 2"]
    assert run_many.batches == []  # they never ran
    assert (runner.cheap.running, runner.cheap.waiting) == (0, 0)


def test_each_member_of_a_batch_is_answered_at_its_own_deadline_while_the_batch_goes_on():
    runner = InferenceRunner(concurrency=2, cache_size=0, max_batch=4, batch_window=2.0, deadline=2.5)
    run_many = Recorder(4.0)
    holder, _ = steps(2.2)
    answered = {}

    async def call(item):
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="computing the answer"):
            await runner.gzipped_json(item, batchable(item, run_many), cost=0)
        answered[item] = time.monotonic() - started

    async def main():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(runner.gzipped_json, "holder", holder, cost=0))  # the lane is busy: a window
            await anyio.sleep(0.05)
            tasks.start_soon(call, "early")
            await anyio.sleep(0.5)
            tasks.start_soon(call, "late")  # joins within the window, 0.5 s later: its deadline is 0.5 s later
        # the batch's slot is free once its last row has stopped (the event loop must still run to hear it)
        with anyio.fail_after(2):
            while runner.cheap.running:
                await anyio.sleep(0.01)

    anyio.run(main)
    assert run_many.batches == [["early", "late"]]
    assert 2.4 < answered["early"] < 3.2 and 2.4 < answered["late"] < 3.2, answered  # each at its own 2.5 s
    assert run_many.steps["early"] < run_many.steps["late"]  # the late one's row ran on after the early one's stopped
    assert runner.cheap.waiting == 0


def test_a_batch_takes_no_more_requests_than_it_can_answer_before_their_deadline():
    """A batch of 12 at 0.2 s a request would run 2.4 s against a 2 s deadline, and every row would die computing;
    once a batch has been measured, batches are cut to what fits in half the time their requests have left, and
    they share the lane's two slots, so all 12 are answered."""
    runner = InferenceRunner(concurrency=2, cache_size=0, max_batch=16, batch_window=0.05, deadline=2.0)
    run_many = Recorder(0.0, per_item=0.2)
    outcomes = {}

    async def call(item):
        try:
            await runner.gzipped_json(item, batchable(item, run_many), cost=1)
            outcomes[item] = "ok"
        except DeadlineExceeded as exc:
            outcomes[item] = str(exc)

    async def main():
        await call("measured")  # alone: 0.2 s for a cost of 1
        holder, _ = steps(0.3)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(runner.gzipped_json, "holder", holder, cost=0))  # one slot busy: they gather
            await anyio.sleep(0.02)
            for i in range(12):
                tasks.start_soon(call, f"r{i}")

    anyio.run(main)
    assert outcomes == {item: "ok" for item in ["measured", *(f"r{i}" for i in range(12))]}
    assert 0.15 < runner.seconds_per_cost["g"] < 0.4
    assert len(run_many.batches) > 3 and max(len(batch) for batch in run_many.batches[1:]) <= 5, run_many.batches
    assert sorted(sum(run_many.batches[1:], [])) == sorted(f"r{i}" for i in range(12))


def test_malloc_arenas_are_capped_unless_the_environment_says_otherwise(monkeypatch):
    import platform

    from app.runner import limit_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(0) is False  # 0: glibc's default stands
    assert limit_malloc_arenas(2) is (platform.libc_ver()[0] == "glibc")  # mallopt took it
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas(2) is False  # the operator's setting, which glibc has read, stands


@pytest.mark.parametrize(
    "body",
    [
        {"source": "this is an example ."},
        {"source": "i like tea !", "target": "私 は お 茶 が 好き", "method": "norms", "precision": 8},
        {"source": "do n't go !", "method": "alti", "alignment": {"head": "contributions"}},
    ],
    ids=["weights", "norms", "alti"],
)
def test_answer_json_writes_what_pydantic_writes(tiny_model_dir, body):
    registry = ModelRegistry.load(tiny_model_dir, "cpu")
    name, model = registry.get(None)
    answer = shaping.attention(model, name, checks.check_attention(model, AttentionRequest(**body), Settings()), never_stop)
    held = [m.weights for m in answer.attention.values()] + [m.layer_weights for m in answer.attention.values()]
    assert any(isinstance(numbers, np.ndarray) and numbers.size for numbers in held)  # the arrays, not Python floats
    assert answer_json(answer) == answer.model_dump_json().encode()
    assert json.loads(answer_json(answer, indent=True)) == json.loads(answer.model_dump_json())


def test_answer_json_writes_an_explanation_as_pydantic_does(tiny_model_dir):
    registry = ModelRegistry.load(tiny_model_dir, "cpu")
    name, model = registry.get(None)
    request = ExplainRequest(source="this is an example .", kind="cross", layer=0, head=1, query=1)
    answer = shaping.explanation(model, name, checks.check_explain(model, request, Settings()), never_stop)
    assert answer_json(answer) == answer.model_dump_json().encode()
