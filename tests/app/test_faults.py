"""Faults: a server that cannot serve says so in one line; a full queue answers 503 with Retry-After;
a client that goes away frees its model slot; the response cache stays within its byte budget."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from functools import lru_cache

import anyio
import httpx
import pytest
import torch

from app import shaping
from app.cli import main
from app.runner import InferenceRunner, RequestCancelled, ResponseCache, ServerBusy
from app.settings import Settings
from backends.builtin import BuiltinModel
from backends.interface import never_stop
from tests.app.conftest import live_server
from tests.conftest import write_model_dir


def serve(capsys, monkeypatch, model_dir, *options: str) -> tuple[int, str]:
    """`attnscope serve --model-dir model_dir [options]`, which must refuse: its exit code and what it printed."""
    # serve passes its options on through the environment: keep them out of the other tests
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr("app.cli.get_settings", lru_cache(Settings))
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("the server started on models it cannot serve"))
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--model-dir", str(model_dir), *options, "--port", "0"])
    return exit_info.value.code, capsys.readouterr().err


def assert_one_clear_line(err: str, *fragments: str) -> None:
    assert err.startswith("attnscope: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_serve_refuses_a_missing_folder(capsys, monkeypatch, tmp_path):
    code, err = serve(capsys, monkeypatch, tmp_path / "nowhere")
    assert code == 2
    assert_one_clear_line(err, "does not exist")


def test_serve_refuses_a_truncated_checkpoint(capsys, monkeypatch, tmp_path):
    path = write_model_dir(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    code, err = serve(capsys, monkeypatch, tmp_path)
    assert code == 2
    assert_one_clear_line(err, "tiny.pt", "truncated or not a checkpoint")


def test_serve_refuses_a_checkpoint_of_an_incompatible_config(capsys, monkeypatch, tmp_path):
    path = write_model_dir(tmp_path)
    blob = torch.load(path, weights_only=True)
    blob["config"]["d_model"] = 48  # the weights are 32 wide
    torch.save(blob, path)
    code, err = serve(capsys, monkeypatch, tmp_path)
    assert code == 2
    assert_one_clear_line(err, "tiny.pt", "incompatible")


def test_serve_refuses_a_checkpoint_of_another_format(capsys, monkeypatch, tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    code, err = serve(capsys, monkeypatch, tmp_path)
    assert code == 2
    assert_one_clear_line(err, "other.pt", "not an attnscope checkpoint")


def test_serve_refuses_a_broken_model_card(capsys, monkeypatch, tmp_path):
    write_model_dir(tmp_path).with_suffix(".json").write_text("{not json", encoding="utf-8")
    code, err = serve(capsys, monkeypatch, tmp_path)
    assert code == 2
    assert_one_clear_line(err, "model card tiny.json cannot be read")


class BlockedModel:
    """Stands in for shaping.attention: each call waits until released, so a test controls who holds the slot."""

    def __init__(self, real=shaping.attention):
        self.real = real
        self.release = threading.Event()
        self.calls = 0
        self.running = threading.Event()

    def __call__(self, model, name, call, stop):
        self.calls += 1
        self.running.set()
        self.release.wait(30)
        return self.real(model, name, call, stop)


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.02)


def post_in_thread(base: str, body: dict, results: list, timeout: float = 30) -> threading.Thread:
    def send():
        try:
            results.append(httpx.post(f"{base}/api/v1/attention", json=body, timeout=timeout))
        except httpx.TimeoutException as exc:
            results.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_a_full_queue_and_a_long_wait_answer_503_with_retry_after(tiny_model_dir, monkeypatch):
    blocked = BlockedModel()
    monkeypatch.setattr(shaping, "attention", blocked)
    settings = Settings(model_dir=tiny_model_dir, concurrency=1, max_queue=1, deadline=1.5, cache_size=0)
    with live_server(settings) as base:
        holder, waiter = [], []
        threads = [post_in_thread(base, {"source": "this is"}, holder)]
        blocked.running.wait(10)
        threads.append(post_in_thread(base, {"source": "i like tea"}, waiter))

        # The queue holds one request: the next is turned away at once.
        time.sleep(0.3)
        started = time.monotonic()
        full = httpx.post(f"{base}/api/v1/attention", json={"source": "the cat"}, timeout=10)
        assert time.monotonic() - started < 1
        assert full.status_code == 503
        assert full.headers["retry-after"] == "1"
        assert "busy" in full.json()["detail"] and "waiting" in full.json()["detail"]

        # The waiting one gives up at its deadline rather than hanging.
        threads[1].join(10)
        assert waiter[0].status_code == 503, waiter
        assert "ran past its time limit of 1.5 s waiting for a model slot" in waiter[0].json()["detail"]
        assert int(waiter[0].headers["retry-after"]) >= 1

        # The deadline is end to end: the holder, released past it, stops at its model's first step.
        blocked.release.set()
        threads[0].join(10)
        assert holder[0].status_code == 503
        assert "ran past its time limit of 1.5 s computing the answer" in holder[0].json()["detail"]
        assert holder[0].headers["retry-after"] == "1"
        assert httpx.post(f"{base}/api/v1/attention", json={"source": "the dog"}, timeout=10).status_code == 200
        assert blocked.calls == 2  # the two turned away never reached the model


def test_a_client_that_leaves_the_queue_frees_its_place_and_never_runs(tiny_model_dir, monkeypatch):
    blocked = BlockedModel()
    monkeypatch.setattr(shaping, "attention", blocked)
    settings = Settings(model_dir=tiny_model_dir, concurrency=1, max_queue=1, deadline=30, cache_size=0)
    with live_server(settings) as base:
        holder, leaver = [], []
        threads = [post_in_thread(base, {"source": "this is"}, holder)]
        blocked.running.wait(10)
        threads.append(post_in_thread(base, {"source": "i like tea"}, leaver, timeout=0.5))
        threads[1].join(10)
        assert isinstance(leaver[0], httpx.TimeoutException)  # the client gave up and closed the connection
        # Its place in the queue is free again: another request may wait (with a full queue it would get 503).
        waiting = []
        threads.append(post_in_thread(base, {"source": "the cat"}, waiting))
        time.sleep(0.5)
        assert waiting == []
        blocked.release.set()
        for thread in threads:
            thread.join(10)
        assert holder[0].status_code == 200 and waiting[0].status_code == 200
        assert blocked.calls == 2  # the one that left never ran


def test_a_client_that_leaves_mid_call_stops_the_model_and_frees_its_slot(tiny_model_dir, monkeypatch):
    stopped = threading.Event()
    real_attention = shaping.attention

    def endless(model, name, call, stop):
        """A model call that would take 60 s: decoding step after decoding step, checking stop as every model does."""
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                model.attention(call.source, stop=stop)
        except RequestCancelled:
            stopped.set()
            raise
        return real_attention(model, name, call, stop)

    monkeypatch.setattr(shaping, "attention", endless)
    settings = Settings(model_dir=tiny_model_dir, concurrency=1, deadline=30, cache_size=0)
    with live_server(settings) as base:
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{base}/api/v1/attention", json={"source": "this is"}, timeout=0.5)
        assert stopped.wait(5), "the model call went on after its client had left"
        monkeypatch.setattr(shaping, "attention", real_attention)
        started = time.monotonic()
        assert httpx.post(f"{base}/api/v1/attention", json={"source": "i like tea"}, timeout=10).status_code == 200
        assert time.monotonic() - started < 5


def test_runner_turns_requests_away_when_the_queue_is_full():
    runner = InferenceRunner(concurrency=1, cache_size=0, max_queue=0, deadline=5)
    release = threading.Event()
    outcomes = []

    async def call(i):
        try:
            await runner.gzipped_json(i, lambda stop: (release.wait(5), Settings())[1], cost=0)
            outcomes.append("ok")
        except ServerBusy as exc:
            outcomes.append(exc.retry_after)
            release.set()

    async def main():
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, 1)
            await anyio.sleep(0.1)
            tasks.start_soon(call, 2)

    anyio.run(main)
    assert sorted(outcomes, key=str) == [3, "ok"]


def test_the_cache_is_bounded_by_bytes_as_well_as_entries():
    cache = ResponseCache(size=100, max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"5678")
    cache.put("c", b"90")
    assert (len(cache), cache.bytes) == (3, 10)
    cache.put("d", b"xyz")  # over budget: the least recently used go first
    assert cache.get("a") is None and cache.get("d") == b"xyz"
    assert cache.bytes <= 10
    cache.put("huge", b"x" * 11)  # bigger than the whole budget: not kept, nothing evicted for it
    assert cache.get("huge") is None and cache.get("d") == b"xyz"
    cache.put("d", b"xy")  # replacing an entry counts its new size only
    assert cache.bytes == sum(len(cache.get(k) or b"") for k in ["b", "c", "d"])


def test_the_app_takes_the_cache_budget_from_the_settings(tiny_model_dir):
    from tests.app.conftest import make_client

    with make_client(tiny_model_dir, cache_max_bytes=1000) as client:
        assert client.post("/api/v1/attention", json={"source": "this is an example"}).status_code == 200
        assert len(client.app.state.runner.cache) == 0  # the answer is bigger than 1000 bytes
        assert client.app.state.runner.cache.max_bytes == 1000


def test_bad_input_is_answered_at_once_even_when_every_slot_is_taken(tiny_model_dir, monkeypatch):
    # Found by bench/load.py: validation ran inside the model call, so under load a typo waited, then got 503.
    blocked = BlockedModel()
    monkeypatch.setattr(shaping, "attention", blocked)
    settings = Settings(model_dir=tiny_model_dir, concurrency=1, max_queue=0, deadline=5, cache_size=0)
    with live_server(settings) as base:
        holder = []
        thread = post_in_thread(base, {"source": "this is"}, holder)
        blocked.running.wait(10)
        for body, status in [
            ({"source": "  "}, 422),
            ({"source": "hi", "heads": [-1]}, 422),
            ({"source": "hi", "model": "x"}, 404),
        ]:
            response = httpx.post(f"{base}/api/v1/attention", json=body, timeout=5)
            assert response.status_code == status, response.text
        translate = httpx.post(f"{base}/api/v1/translate", json={"source": "hi", "beam_size": 99}, timeout=5)
        assert translate.status_code == 422
        assert httpx.post(f"{base}/api/v1/attention", json={"source": "the cat"}, timeout=5).status_code == 503
        blocked.release.set()
        thread.join(10)
        assert holder[0].status_code == 200


class SlowSteps:
    """Stands in for the built-in model's attention(): 30 s of decoding steps, 10 ms each, calling stop before
    each one as every model does; counts the calls in progress, so a test sees the moment their slots free."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0
        self.started = 0
        self.sources: list[str] = []  # of the calls started, in their order
        self.last_step = 0.0

    def __call__(self, source, target=None, *, stop=never_stop, **options):  # set on the class, it is called unbound
        with self.lock:
            self.active += 1
            self.started += 1
            self.sources.append(source)
        try:
            for _ in range(3000):
                stop()
                self.last_step = time.monotonic()
                time.sleep(0.01)
            raise AssertionError("nobody stopped the call")
        finally:
            with self.lock:
                self.active -= 1


def test_hang_ups_of_heavy_requests_free_every_slot_within_half_a_second(tiny_model_dir, monkeypatch):
    slow = SlowSteps()
    monkeypatch.setattr(BuiltinModel, "attention", slow)
    # every request in the costly lane, which has half of 4 slots: 2 run, the other 4 wait (one model call a
    # request, as this test counts them: batching off; the batched case is the next test)
    settings = Settings(model_dir=tiny_model_dir, concurrency=4, cheap_cost=0, deadline=60, cache_size=0, max_batch=1)
    with live_server(settings) as base:
        port = int(base.rsplit(":", 1)[1])
        sockets = []
        for i in range(6):
            body = json.dumps({"source": f"this is an example {i}", "beam_size": 8}).encode()
            sock = socket.create_connection(("127.0.0.1", port))
            head = (
                "POST /api/v1/attention HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            sockets.append(sock)
        wait_until(lambda: slow.active == 2)
        time.sleep(0.3)
        assert (slow.active, slow.started) == (2, 2)
        # The waiting ones hang up first: the server runs in a thread of this process, so between two closes it may
        # free a running request's slot, and a waiting request whose client is still there rightly takes it.
        running = [f"this is an example {i}" in slow.sources for i in range(len(sockets))]
        assert sum(running) == 2
        hung_up = time.monotonic()
        for i in sorted(range(len(sockets)), key=running.__getitem__):
            sockets[i].close()
        wait_until(lambda: slow.active == 0, timeout=5)
        freed = time.monotonic() - hung_up
        assert freed < 0.5, f"the slots took {freed:.2f} s to free"
        assert slow.last_step - hung_up < 0.5
        time.sleep(0.2)
        assert slow.started == 2  # the 4 that were waiting left the queue and never ran
        monkeypatch.undo()
        started = time.monotonic()
        assert httpx.post(f"{base}/api/v1/attention", json={"source": "i like tea"}, timeout=10).status_code == 200
        assert time.monotonic() - started < 2


class SlowBatch(SlowSteps):
    """Stands in for the built-in model's attention_batch(): decoding steps that call each live member's stop."""

    def __call__(self, queries, stops):  # set on the class, it is called unbound: no model argument
        with self.lock:
            self.active += 1
            self.started += 1
        answers: list = [None] * len(queries)
        try:
            for _ in range(3000):
                for i, stop in enumerate(stops):
                    if answers[i] is None:
                        try:
                            stop()
                        except Exception as exc:
                            answers[i] = exc
                if all(answer is not None for answer in answers):
                    return answers
                self.last_step = time.monotonic()
                time.sleep(0.01)
            raise AssertionError("nobody stopped the call")
        finally:
            with self.lock:
                self.active -= 1


def test_hang_ups_of_a_whole_batch_free_its_slot_within_half_a_second(tiny_model_dir, monkeypatch):
    slow, batch = SlowSteps(), SlowBatch()
    monkeypatch.setattr(BuiltinModel, "attention", slow)  # the first request runs alone: the lane was idle
    monkeypatch.setattr(BuiltinModel, "attention_batch", batch)  # the 5 that come while it runs: one batch
    settings = Settings(model_dir=tiny_model_dir, concurrency=1, deadline=60, cache_size=0)
    with live_server(settings) as base:
        port = int(base.rsplit(":", 1)[1])
        sockets = []
        for i in range(6):
            body = json.dumps({"source": f"this is an example {i}"}).encode()
            sock = socket.create_connection(("127.0.0.1", port))
            head = (
                "POST /api/v1/attention HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            sockets.append(sock)
            if i == 0:
                wait_until(lambda: slow.active == 1)
        time.sleep(0.3)
        sockets.pop(0).close()  # the lone one hangs up: its slot goes to the batch of the other five
        wait_until(lambda: batch.active == 1)
        hung_up = time.monotonic()
        for sock in sockets:
            sock.close()
        wait_until(lambda: batch.active == 0, timeout=5)
        freed = time.monotonic() - hung_up
        assert freed < 0.5, f"the batch took {freed:.2f} s to free its slot"
        assert (slow.started, batch.started) == (1, 1)
