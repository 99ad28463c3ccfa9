"""Model processes: batches run in processes of their own, each with its own copy of the models and one torch thread.

A model call is thousands of small tensor ops, and each op's Python holds the interpreter lock. Two batches in
threads of the server process, and the event loop beside them, take turns at that one lock: measured at 32
clients, two batches of 16 ran 80% of the time yet used 1.35 of the 2 cores. In processes of their own each batch
has a lock of its own, and the server process keeps the HTTP, the checks and the cache.

A worker gets (run_many, finish, items, deadlines, yields) down its pipe, runs `run_many(context, items, stops)`
on the context its factory built (the server's: a ModelRegistry), turns each answer into bytes with `finish`
(pickled by reference, so both must be module-level functions or partials of them), and sends one outcome a row
back. Each row has its own stop check: a cancelled flag in shared memory, which the server's CancelFlag sets the
moment the row's client goes (nothing polls for it), its deadline on the machine's monotonic clock, and, for a
costly batch, a pause before each step while the shared "cheap calls are running" flag is up. Nothing here knows
about models or HTTP.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import pickle
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# One outcome a row: ("body", bytes), ("cancelled",), ("late",) or ("error", exception).
Outcome = tuple

# Rows a batch may have (the server's max_batch is at most this).
MAX_ROWS = 256


class _Cancelled(Exception):
    pass


class _Late(Exception):
    pass


class WorkerFailed(RuntimeError):
    """A model process ended while it ran a batch (killed, out of memory): every row of that batch hears it."""


class CancelFlag:
    """A request's cancellation, set once when its client goes: read where the request runs in this process, and
    written at once into the shared-memory flag of the model process row it is bound to while one runs it.

    Setting it writes the flag, rather than the waiting thread copying flags in a loop: a copy every 5 ms cost that
    thread about 1 ms of CPU a request, and woke it seven times during a 30 ms model call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # set() (the event loop) against bind()/unbind() (a batch's thread)
        self._set = False
        self._row: tuple[Any, int] | None = None  # (a worker's flags, the row's index) while a model process runs it

    def set(self) -> None:
        with self._lock:
            self._set = True
            if self._row is not None:
                flags, index = self._row
                flags[index] = True

    def is_set(self) -> bool:
        return self._set

    def bind(self, flags: Any, index: int) -> None:
        with self._lock:
            self._row = (flags, index)
            flags[index] = self._set

    def unbind(self) -> None:
        """The row has ended: the flags are the next batch's."""
        with self._lock:
            self._row = None


@dataclass
class _Shared:
    cancelled: Any  # RawArray of c_bool, one a row
    cheap_busy: Any  # RawValue of c_bool, shared by every worker


def _serve(conn, shared: _Shared, context_factory: Callable[[], Any], torch_threads: int, give_way_seconds: float) -> None:
    import torch

    # Ctrl-C in a terminal reaches the whole process group: the server shuts its workers down itself (an end-of-file
    # or None down the pipe), and a worker hit mid-batch would print a traceback and fail the batch's requests.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(torch_threads)
    try:
        context = context_factory()
    except BaseException as exc:  # the server hears why and fails to start, rather than waiting for a worker
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    _trim_heap()
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the server has gone
            return
        if task is None:
            return
        run_many, finish, items, deadlines, yields = task
        conn.send(_run(context, shared, run_many, finish, items, deadlines, yields, give_way_seconds))


def _trim_heap() -> None:
    """Hand the memory loading freed (the graphs a process is given, the checkpoint's buffers) back to the system:
    glibc keeps freed memory in its heap until asked (malloc_trim). With the shipped model the server and its three
    model processes went from 1631-1642 to 1568 MiB of PSS at rest. Nothing off glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def row_stops(
    count: int, stopped: Callable[[int], None], give_way: Callable[[float], None] | None, at_most: float
) -> list[Callable[[], None]]:
    """The stop checks of a batch's `count` rows, in the server's threads and in model processes alike: row i's
    check calls `stopped(i)`, which raises when that row is cancelled or late (the row then leaves the batch);
    once a step (at the lowest row still running) it calls `give_way(seconds)`, where given, to pause a costly
    batch while cheap calls run, for at most the step's own time and `at_most` seconds."""
    live = set(range(count))
    step_started = time.monotonic()

    def stop_of(i: int) -> Callable[[], None]:
        def stop() -> None:
            nonlocal step_started
            try:
                stopped(i)
            except Exception:
                live.discard(i)
                raise
            if give_way is not None and i == min(live):
                give_way(min(at_most, time.monotonic() - step_started))
                step_started = time.monotonic()

        return stop

    return [stop_of(i) for i in range(count)]


def _run(context, shared: _Shared, run_many, finish, items, deadlines, yields: bool, give_way_seconds: float) -> list[Outcome]:
    def stopped(i: int) -> None:
        if shared.cancelled[i]:
            raise _Cancelled
        if time.monotonic() >= deadlines[i]:
            raise _Late

    def give_way(seconds: float) -> None:  # as the server's threads give way, polling the shared flag
        pause_until = time.monotonic() + seconds
        while shared.cheap_busy.value and time.monotonic() < pause_until:
            time.sleep(0.001)

    try:
        answers = run_many(context, items, row_stops(len(items), stopped, give_way if yields else None, give_way_seconds))
    except Exception as exc:  # a fault of the call itself: every row hears it
        answers = [exc] * len(items)
    return [_outcome(answer, finish) for answer in answers]


def _outcome(answer: Any, finish: Callable[[Any], bytes]) -> Outcome:
    if isinstance(answer, _Cancelled):
        return ("cancelled",)
    if isinstance(answer, _Late):
        return ("late",)
    if not isinstance(answer, Exception):
        try:
            return ("body", finish(answer))
        except Exception as exc:
            answer = exc
    try:
        pickle.dumps(answer)
    except Exception:  # an exception that cannot cross the pipe still says what it was
        answer = RuntimeError(f"{type(answer).__name__}: {answer}")
    return ("error", answer)


class _Worker:
    def __init__(self, mp, context_factory, torch_threads: int, cheap_busy, give_way_seconds: float):
        self.conn, child = mp.Pipe()
        self.shared = _Shared(mp.RawArray(ctypes.c_bool, MAX_ROWS), cheap_busy)
        self.process = mp.Process(
            target=_serve,
            args=(child, self.shared, context_factory, torch_threads, give_way_seconds),
            name="attnscope-model",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.loaded = False  # until ready() has read its first message

    def ready(self, timeout: float) -> None:
        self.loaded = True  # from here on the pipe carries outcomes, whatever this says
        if not self.conn.poll(timeout):
            raise WorkerFailed(f"a model process did not load its models within {timeout:g} s")
        try:
            message = self.conn.recv()
        except EOFError:
            raise WorkerFailed(f"a model process ended while loading its models (exit code {self.process.exitcode})") from None
        if message[0] != "ready":
            raise WorkerFailed(f"a model process could not load its models: {message[1]}")

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class ModelProcesses:
    """`count` worker processes; run() hands a batch to an idle one and waits for its outcomes.

    The server calls run() from one thread a batch, at most `count` at a time (one process a model slot), so a batch
    never waits for a process. A process that dies mid-batch fails that batch (WorkerFailed) and is replaced.
    """

    def __init__(self, count: int, context_factory: Callable[[], Any], torch_threads: int, give_way_seconds: float,
                 load_timeout: float = 300):  # fmt: skip
        # spawn, not fork: the server process has threads (and torch's), which a forked child would inherit half-made.
        self._mp = multiprocessing.get_context("spawn")
        self._start = (context_factory, torch_threads, give_way_seconds)
        self.load_timeout = load_timeout
        self.cheap_busy = self._mp.RawValue(ctypes.c_bool, False)
        # Last in, first out: a batch goes to the process that ran the last one, whose weights the CPU's caches still
        # hold (three processes' copies do not fit in them), so a lone client is served by a warm process every time.
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        workers = [self._spawn() for _ in range(count)]
        try:
            for worker in workers:
                worker.ready(load_timeout)
        except WorkerFailed:
            for worker in workers:
                worker.stop()
            raise
        for worker in workers:
            self._idle.put(worker)
        self._workers = workers
        self._closed = False

    def _spawn(self) -> _Worker:
        context_factory, torch_threads, give_way_seconds = self._start
        return _Worker(self._mp, context_factory, torch_threads, self.cheap_busy, give_way_seconds)

    def run(
        self,
        run_many: Callable,
        finish: Callable[[Any], bytes],
        items: list[Any],
        deadlines: list[float],
        cancels: list[CancelFlag],
        yields: bool,
    ) -> list[Outcome]:
        if len(items) > MAX_ROWS:
            raise ValueError(f"a batch of {len(items)} rows is over the model processes' limit of {MAX_ROWS}")
        worker = self._idle.get()
        try:
            if not worker.loaded:  # a replacement for one that died: its models load while the first batch waits
                worker.ready(self.load_timeout)
            for i, cancel in enumerate(cancels):
                cancel.bind(worker.shared.cancelled, i)
            worker.conn.send((run_many, finish, items, deadlines, yields))
            return worker.conn.recv()  # EOFError if the process ends first
        except (EOFError, OSError, WorkerFailed) as exc:
            if self._closed:
                raise WorkerFailed("the server is shutting down") from None
            worker = self._replace(worker)
            if isinstance(exc, WorkerFailed):
                raise
            raise WorkerFailed("the model process running this request ended unexpectedly; try again") from None
        finally:
            for cancel in cancels:
                cancel.unbind()
            self._idle.put(worker)

    def _replace(self, worker: _Worker) -> _Worker:
        worker.stop()
        replacement = self._spawn()
        self._workers[self._workers.index(worker)] = replacement
        return replacement

    def close(self) -> None:
        """Stop every worker: an idle one at once, a busy one after its batch (or killed after 5 s)."""
        self._closed = True
        for worker in self._workers:
            worker.stop()
