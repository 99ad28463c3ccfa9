"""Model processes (app.workers): the app's batches in processes of their own, and what a process does with a
row that is cancelled, late, or whose process dies. The functions a worker runs live at module level: spawned
processes import this module to find them."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from app.workers import CancelFlag, ModelProcesses, WorkerFailed
from tests.app.conftest import live_server


def counting_context() -> dict:
    return {"pid": os.getpid()}


def failing_context() -> dict:
    raise FileNotFoundError("no such checkpoint: missing.pt")


def steps_until_stopped(context: dict, items: list, stops: list) -> list:
    """Each item is a step count: every row steps (calling its stop) until it has done that many or is stopped."""
    answers: list = [None] * len(items)
    done = [0] * len(items)
    while any(answer is None for answer in answers):
        for i, stop in enumerate(stops):
            if answers[i] is not None:
                continue
            try:
                stop()
            except Exception as exc:  # the row's stop: cancelled or late
                answers[i] = exc
                continue
            done[i] += 1
            if done[i] == items[i]:
                answers[i] = {"steps": done[i], "pid": context["pid"]}
        time.sleep(0.01)
    return answers


def exits(context: dict, items: list, stops: list) -> list:
    os._exit(3)


class Unpicklable(Exception):
    def __init__(self, message: str, handle: threading.Lock):
        super().__init__(message)
        self.handle = handle


def refuses_oddly(context: dict, items: list, stops: list) -> list:
    return [Unpicklable(f"row {item} refused", threading.Lock()) for item in items]


def finish(answer: dict) -> bytes:
    return repr(answer).encode()


@pytest.fixture(scope="module")
def processes():
    pool = ModelProcesses(1, counting_context, torch_threads=1, give_way_seconds=0.05)
    yield pool
    pool.close()


def never() -> list[CancelFlag]:
    return [CancelFlag(), CancelFlag()]


def test_rows_are_answered_in_their_order_by_the_process(processes):
    outcomes = processes.run(steps_until_stopped, finish, [3, 1], [time.monotonic() + 30] * 2, never(), yields=False)
    assert [outcome[0] for outcome in outcomes] == ["body", "body"]
    first, second = (eval(outcome[1]) for outcome in outcomes)  # noqa: S307 (our own repr)
    assert (first["steps"], second["steps"]) == (3, 1)
    assert first["pid"] != os.getpid()  # it ran in the model process, on the context that process built


def test_a_cancelled_row_stops_at_its_next_step_and_the_rest_go_on(processes):
    cancels = never()
    threading.Timer(0.2, cancels[1].set).start()
    started = time.monotonic()
    outcomes = processes.run(steps_until_stopped, finish, [60, 10_000], [time.monotonic() + 30] * 2, cancels, yields=False)
    assert outcomes[0][0] == "body" and eval(outcomes[0][1])["steps"] == 60  # noqa: S307
    assert outcomes[1] == ("cancelled",)
    assert time.monotonic() - started < 5  # not the 10,000 steps (100 s) of the cancelled row


def test_a_row_cancelled_before_its_batch_starts_never_runs(processes):
    cancels = never()
    cancels[0].set()
    outcomes = processes.run(steps_until_stopped, finish, [10_000, 2], [time.monotonic() + 30] * 2, cancels, yields=False)
    assert outcomes[0] == ("cancelled",) and outcomes[1][0] == "body"


def test_a_cancel_flag_writes_the_row_it_is_bound_to_only_while_bound():
    flags = [False, False]
    first, second = CancelFlag(), CancelFlag()
    first.bind(flags, 1)
    first.set()
    assert flags == [False, True] and first.is_set()
    first.unbind()
    second.bind(flags, 1)  # the next batch's row 1
    assert flags == [False, False]
    first.set()  # a late second set of the old row's flag leaves the new row alone
    assert flags == [False, False] and not second.is_set()


def test_a_row_past_its_deadline_is_late(processes):
    deadlines = [time.monotonic() + 30, time.monotonic() + 0.2]
    outcomes = processes.run(steps_until_stopped, finish, [5, 10_000], deadlines, never(), yields=False)
    assert outcomes[0][0] == "body"
    assert outcomes[1] == ("late",)


def test_an_exception_that_cannot_cross_the_pipe_still_says_what_it_was(processes):
    outcomes = processes.run(refuses_oddly, finish, [7], [time.monotonic() + 30], never()[:1], yields=False)
    kind, error = outcomes[0]
    assert kind == "error" and isinstance(error, RuntimeError)
    assert "Unpicklable: row 7 refused" in str(error)


def test_a_process_that_dies_fails_its_batch_and_is_replaced(processes):
    with pytest.raises(WorkerFailed, match="ended unexpectedly"):
        processes.run(exits, finish, [1], [time.monotonic() + 30], never()[:1], yields=False)
    outcomes = processes.run(steps_until_stopped, finish, [2], [time.monotonic() + 30], never()[:1], yields=False)
    assert outcomes[0][0] == "body"  # the replacement answers


def test_a_process_that_cannot_load_its_models_fails_the_start_with_the_reason():
    with pytest.raises(WorkerFailed, match="could not load its models: FileNotFoundError: no such checkpoint"):
        ModelProcesses(1, failing_context, torch_threads=1, give_way_seconds=0.05)


def test_the_app_answers_batches_from_its_model_processes_with_the_bytes_of_threads(tiny_model_dir):
    """Mixed lengths, free and forced, greedy and beam, sent together (so they batch) to an app with model processes: each body is
    byte for byte the body the same request gets alone from an app without them. The server process's own model
    is broken meanwhile, so an answer can only come from a model process."""
    requests = [{"source": "this is an example ."}, {"source": "i like tea !"}, {"source": "the cat ."},
                {"source": "do n't go ?", "target": "行 く な"}, {"source": "he 's the dog ."},
                {"source": "this is an example .", "beam_size": 3}, {"source": "i like the cat .", "beam_size": 3}]  # fmt: skip

    def bodies(settings: Settings, together: bool, break_own_model: bool = False) -> list[bytes]:
        app = create_app(settings)
        with live_server(settings, app) as base:
            if break_own_model:
                for model in app.state.registry.models.values():
                    model.attention_batch = _broken
                    model.attention = _broken

            async def send() -> list[bytes]:
                async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                    if together:
                        answers = await asyncio.gather(*(client.post("/api/v1/attention", json=r) for r in requests))
                    else:
                        answers = [await client.post("/api/v1/attention", json=r) for r in requests]
                assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
                return [a.content for a in answers]

            return asyncio.run(send())

    # concurrency 1: two model processes (a slot in each lane), each of which starts in 3-5 s on this machine
    common = {"model_dir": tiny_model_dir, "device": "cpu", "cache_size": 0, "default_model": "tiny", "concurrency": 1}
    alone = bodies(Settings(**common, model_processes=False), together=False)
    batched = bodies(Settings(**common, model_processes=True, batch_window=0.2), together=True, break_own_model=True)
    assert batched == alone


def _broken(*args, **kwargs):
    raise AssertionError("the server process's own model was called")


def loaded_names(context, items: list, stops: list) -> list:
    return [{"names": context.names} for _ in items]


def test_the_model_processes_load_only_the_models_that_batch(tmp_path):
    """A Hugging Face model is served from threads of the server process: the model processes do not load it."""
    pytest.importorskip("transformers", reason="the hf extra is not installed")
    from tests.backends.conftest import write_tiny_hf_model
    from tests.conftest import write_model_dir

    write_model_dir(tmp_path, "tiny")
    write_tiny_hf_model(tmp_path / "tiny-marian", "marian")
    app = create_app(
        Settings(model_dir=tmp_path, device="cpu", cache_size=0, default_model="tiny", model_processes=True, concurrency=1)
    )
    with live_server(app.state.settings, app) as base:
        processes = app.state.runner.processes
        outcomes = processes.run(loaded_names, finish, [0], [time.monotonic() + 30], never()[:1], yields=False)
        assert eval(outcomes[0][1]) == {"names": ["tiny"]}  # noqa: S307 (our own repr)
        for model in ("tiny", "tiny-marian"):  # both answer, from wherever they run
            response = httpx.post(f"{base}/api/v1/attention", json={"model": model, "source": "this is an example ."}, timeout=60)
            assert response.status_code == 200, response.text


def inference_engines(context, items: list, stops: list) -> list:
    name, model = context.get(None)
    return [{"inference": type(model.translator.inference).__name__, "exported here": "onnx" in sys.modules} for _ in items]


def test_the_model_processes_run_the_graphs_the_server_exported(tiny_model_dir):
    """Their passes run in ONNX Runtime, from the server's export: torch.onnx's exporter (which imports onnx) never ran
    in them."""
    app = create_app(
        Settings(model_dir=tiny_model_dir, device="cpu", cache_size=0, default_model="tiny", model_processes=True, concurrency=1)
    )
    with live_server(app.state.settings, app):
        deadlines = [time.monotonic() + 30]
        outcomes = app.state.runner.processes.run(inference_engines, finish, [0], deadlines, never()[:1], yields=False)
    assert eval(outcomes[0][1]) == {"inference": "OnnxTransformer", "exported here": False}  # noqa: S307 (our own repr)
