"""The cached, bounded runner: model calls in worker threads (batches in model processes, app.workers, when it
has them), a few at a time in two lanes by cost, each with a deadline, concurrent ones gathered into batches,
their answers cached gzipped.

Nothing here knows about models or FastAPI: a handler hands in a cache key, the call's estimated
cost and either a compute(stop) callable or a Batchable; `stop` raises RequestCancelled once the
client has gone and DeadlineExceeded once the request's time is up, and models call it inside their
decoding loops (backends.interface.StopCheck), so an abandoned or late call frees its slot (or its
row of a batch) within a step.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import deflate
import orjson
import torch
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from app.settings import Settings
from app.workers import CancelFlag, ModelProcesses, WorkerFailed, row_stops
from backends.interface import StopCheck


class ServerBusy(RuntimeError):
    """Every model slot of the request's lane is taken and its queue is full, or the request ran past its deadline."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(ServerBusy):
    """The request's deadline passed, waiting for a slot or computing: the model call stops at its next decoding step."""


class RequestCancelled(Exception):
    """The client went away: the model call stops at its next decoding step and its slot goes to the next request."""


Compute = Callable[[StopCheck], BaseModel]


@dataclass(frozen=True)
class Batchable:
    """Work that may share one model call with other requests of its `group` (the same model, the same kind of
    call): run_many(context, items, stops) computes the answer of each item on the runner's `context` (the models),
    each with its own stop check, and returns them in order, an exception standing in for an answer that could not
    be had (stopped, refused). In model processes (app.workers) the context is each process's own and run_many
    travels by pickle: a module-level function, or a partial of one."""

    group: Hashable
    item: Any
    run_many: Callable[[Any, list[Any], list[StopCheck]], list[BaseModel | Exception]]


class _Member:
    """One request of a batch: waiting in its group's queue, then taken into a batch, then done."""

    def __init__(self, item: Any, cancel: CancelFlag, deadline: float, cost: float):
        self.item = item
        self.cancel = cancel
        self.deadline = deadline
        self.cost = cost  # app.checks.cost: what the batch's time is estimated from
        self.arrived = time.monotonic()
        self.taken = False
        self.promoted = anyio.Event()  # set when it heads its group's queue, or is taken into a batch
        self.done = anyio.Event()
        self.body: bytes | None = None
        self.error: BaseException | None = None


class ResponseCache:
    """Least-recently-used gzipped responses, bounded by count and by bytes (one 128-token answer is 400 KB).

    Used from the event loop only, so it needs no lock.
    """

    def __init__(self, size: int, max_bytes: int = 16 * 1024 * 1024):
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        body = self._entries.get(key)
        if body is not None:
            self._entries.move_to_end(key)
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        if self.size == 0 or len(body) > self.max_bytes:
            return
        previous = self._entries.pop(key, None)
        self.bytes += len(body) - (len(previous) if previous is not None else 0)
        self._entries[key] = body
        while len(self._entries) > self.size or self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)


# A batch is planned to take at most this share of the time its tightest member has left, at the seconds per unit
# of cost its group's recent batches took: the rest is margin for the estimate (a loaded machine slows every call),
# and for the members that wait behind it.
BATCH_TIME_SHARE = 0.5

# The longest a costly call pauses before a decoding step while cheap calls run; it pauses as long as
# its last step took, so under a stream of cheap calls it still runs at half its speed or more.
GIVE_WAY_SECONDS = 0.05


class Lane:
    """`concurrency` model slots and a queue of at most `max_queue` requests waiting for one."""

    def __init__(self, concurrency: int, max_queue: int, busy_flag: Any = None):
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.busy_flag = busy_flag  # a shared-memory copy of `not idle` for model processes (app.workers), if any
        self.max_queue = max_queue
        self.waiting = 0
        self.idle = threading.Event()  # no call of this lane is running; read by the worker threads
        self.idle.set()
        self.batches: dict[Hashable, list[_Member]] = {}  # requests waiting to be batched, by group, oldest first
        self._grown: dict[Hashable, anyio.Event] = {}  # set when a group's queue gains a request
        self._answered: dict[Hashable, tuple[float, int]] = {}  # per group: when its last batch ended, and its answers

    @property
    def running(self) -> int:
        return int(self.limiter.borrowed_tokens)

    async def acquire(self, borrower: object | None = None) -> None:
        if borrower is None:
            await self.limiter.acquire()
        else:  # a batch: its slot is released by whichever task hears that it has ended
            await self.limiter.acquire_on_behalf_of(borrower)
        self.idle.clear()
        if self.busy_flag is not None:
            self.busy_flag.value = True

    def release(self, borrower: object | None = None) -> None:
        if borrower is None:
            self.limiter.release()
        else:
            self.limiter.release_on_behalf_of(borrower)
        if self.running == 0:
            self.idle.set()
            if self.busy_flag is not None:
                self.busy_flag.value = False

    def join(self, group: Hashable, member: _Member) -> list[_Member]:
        queue = self.batches.setdefault(group, [])
        queue.append(member)
        self.waiting += 1
        if len(queue) == 1:
            member.promoted.set()
        grown = self._grown.pop(group, None)
        if grown is not None:
            grown.set()
        return queue

    def leave(self, group: Hashable, queue: list[_Member], members: list[_Member]) -> None:
        """Take `members` out of their group's queue (into a batch, or gone), and tell the new head."""
        head = queue[0]
        for member in members:
            queue.remove(member)
        self.waiting -= len(members)
        if queue and queue[0] is not head:
            queue[0].promoted.set()
        if not queue and self.batches.get(group) is queue:
            del self.batches[group]

    def answered(self, group: Hashable, count: int) -> None:
        self._answered[group] = (time.monotonic(), count)

    def returning(self, group: Hashable, queue: list[_Member], now: float, within: float) -> int:
        """How many more requests of the group are likely on their way: closed-loop clients send their next request
        as soon as they have an answer, so if the group's last batch ended less than `within` seconds ago, its
        answers less those that have come back already (arrived in the queue since)."""
        ended, count = self._answered.get(group, (-math.inf, 0))
        if now - ended >= within:
            return 0
        return max(0, count - sum(member.arrived >= ended for member in queue))

    async def grown(self, group: Hashable) -> None:
        await self._grown.setdefault(group, anyio.Event()).wait()


class InferenceRunner:
    """Runs model calls in worker threads, in two lanes by cost, and caches their gzipped JSON bodies.

    A request whose estimated cost (app.checks.cost) is at most `cheap_cost` goes to the cheap lane,
    any other to the costly one. Each lane has its own queue and slots: `concurrency` for the cheap
    lane, half as many (at least one) for the costly one, so a short sentence never waits behind long
    beam searches, only behind other short ones, and long ones never hold more than half the cores.
    While a cheap call runs, costly ones give way: before each decoding step each pauses as long as
    its last step took (at most GIVE_WAY_SECONDS), leaving the cores and the GIL to the cheap call.
    Every request has `deadline` seconds in all, queue wait plus compute; past it the call stops at
    its model's next decoding step and the caller hears DeadlineExceeded. A full queue answers
    ServerBusy at once. Both become 503 with Retry-After.

    Batchable work of one group is gathered: the request heading its group's queue waits for a slot, then
    takes every request of its group waiting by then (at most `max_batch`) into one model call. A batch
    that gets a slot while no other call of its lane runs starts at once, so a lone request never waits;
    while others run, or while requests its group's last batch answered have not come back (Lane.returning), it
    waits up to `batch_window` seconds from taking its slot for more (under load, the clients of the batch that
    just ended are sending their next requests: a batch started at once would run nearly alone and hold its slot
    as long as a full one). A batch
    takes no more requests than it can answer in time: its estimated time (the summed cost of its requests at
    the seconds per cost its group's recent batches took) stays within BATCH_TIME_SHARE of the time its
    tightest request has left; the requests it leaves head the next batch, in the lane's other slots. Each
    request keeps its own deadline and cancellation: it leaves the queue, or its row stops at the model's
    next decoding step while the rest of the batch goes on, and its answer (503, or nothing for a client
    that has gone) is sent at once.

    The model call, the serialization and the compression all run off the event loop: for a 128-token
    source the JSON of every map is 1.5 MB, and writing or compressing it there would stall every other
    request. Bodies are kept compressed, so the cache holds four times as many in the same memory. With
    `processes` (one a slot), a batch's thread hands the batch to a model process and waits for its bodies, so
    the batches' Python runs under interpreter locks of their own, and Batchable.run_many runs there on that
    process's own context; without processes it runs in the batch's thread, on `context`.
    """

    def __init__(
        self,
        concurrency: int,
        cache_size: int,
        cache_max_bytes: int = 16 * 1024 * 1024,
        max_queue: int = 64,
        deadline: float = 15.0,
        cheap_cost: float = 16384,
        max_batch: int = 16,
        batch_window: float = 0.02,
        context: Any = None,
        processes: ModelProcesses | None = None,
    ):
        self.cache = ResponseCache(cache_size, cache_max_bytes)
        self.context = context  # what Batchable.run_many runs on in this process
        self.processes = processes
        busy_flag = processes.cheap_busy if processes is not None else None
        self.cheap = Lane(concurrency, max_queue, busy_flag)
        self.costly = Lane(self.costly_slots(concurrency), max_queue)
        # One thread a slot, kept: starting a thread a batch made the event loop wait for it (0.7 ms a request at
        # concurrency 1, py-spy). A batch's thread runs it, or waits for its model process, and outlives no slot.
        self._batch_threads = ThreadPoolExecutor(self.slots(concurrency), thread_name_prefix="attnscope-batch")
        self.deadline = deadline
        self.cheap_cost = cheap_cost
        self.max_batch = max_batch
        self.batch_window = batch_window
        self.seconds_per_cost: dict[Hashable, float] = {}  # per group, a running mean over its recent batches

    @staticmethod
    def costly_slots(concurrency: int) -> int:
        return max(1, concurrency // 2)

    @classmethod
    def slots(cls, concurrency: int) -> int:
        """Model calls that may run at once, both lanes together: the model processes one runner needs."""
        return concurrency + cls.costly_slots(concurrency)

    def close(self) -> None:
        if self.processes is not None:
            self.processes.close()
        self._batch_threads.shutdown(wait=False)

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.deadline / 2))

    def lane(self, cost: float) -> Lane:
        return self.cheap if cost <= self.cheap_cost else self.costly

    async def gzipped_json(
        self,
        key: Hashable,
        compute: Compute | Batchable,
        client_gone: Callable[[], Awaitable[None]] | None = None,
        *,
        cost: float,
    ) -> bytes:
        """The cached or computed JSON body, gzip-compressed, computed in the lane of `cost` (app.checks.cost),
        alone or, for Batchable work, in a batch of its group.

        When `client_gone` returns first, raise RequestCancelled; when the deadline passes first, DeadlineExceeded.
        Either way a waiting request leaves the queue, a running one stops at its model's next decoding step, and its
        slot is free again."""
        body = self.cache.get(key)
        if body is not None:
            return body
        deadline = time.monotonic() + self.deadline
        cancel = CancelFlag()
        failure: Exception | None = None
        async with anyio.create_task_group() as tasks:
            if client_gone is not None:

                async def watch() -> None:
                    await client_gone()
                    cancel.set()
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch)
            try:
                if isinstance(compute, Batchable):
                    body = await self._compute_batched(self.lane(cost), compute, cancel, deadline, cost)
                else:
                    body = await self._compute(self.lane(cost), compute, cancel, deadline)
            except Exception as exc:  # raised outside the task group, so it is not wrapped in an ExceptionGroup
                failure = exc
            tasks.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if body is None:
            raise RequestCancelled
        self.cache.put(key, body)
        return body

    async def _compute(self, lane: Lane, compute: Compute, cancel: CancelFlag, deadline: float) -> bytes | None:
        if lane.limiter.available_tokens == 0 and lane.waiting >= lane.max_queue:
            raise ServerBusy(
                f"the server is busy: {lane.waiting} requests are already waiting for the model; try again shortly",
                self.retry_after,
            )
        lane.waiting += 1
        try:
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                await lane.acquire()
        except TimeoutError:
            raise self._late("waiting for a model slot") from None
        finally:
            lane.waiting -= 1
        try:
            # Not abandoned on cancellation: the slot stays taken until the thread has really stopped.
            return await anyio.to_thread.run_sync(self._run_call, lane, compute, cancel, deadline)
        except RequestCancelled:
            return None
        finally:
            lane.release()

    async def _compute_batched(
        self, lane: Lane, work: Batchable, cancel: CancelFlag, deadline: float, cost: float
    ) -> bytes | None:
        if lane.limiter.available_tokens == 0 and lane.waiting >= lane.max_queue:
            raise ServerBusy(
                f"the server is busy: {lane.waiting} requests are already waiting for the model; try again shortly",
                self.retry_after,
            )
        member = _Member(work.item, cancel, deadline, cost)
        queue = lane.join(work.group, member)
        try:
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                while not member.taken:
                    if queue[0] is member:
                        await self._start_batch(lane, work, queue)
                    else:
                        await member.promoted.wait()
                await member.done.wait()
        except TimeoutError:
            # Taken into a batch: its row stops at the next step, when its stop check sees the deadline passed.
            raise self._late("computing the answer" if member.taken else "waiting for a model slot") from None
        finally:
            if not member.taken:
                lane.leave(work.group, queue, [member])
        if isinstance(member.error, RequestCancelled):
            return None
        if member.error is not None:
            raise member.error
        return member.body

    async def _start_batch(self, lane: Lane, work: Batchable, queue: list[_Member]) -> None:
        """Called by the head of the group's queue: wait for a slot (and for company while the lane is busy), then
        start the batch in a thread of its own, holding the slot until it ends."""
        borrower = object()
        await lane.acquire(borrower)
        try:
            opened = time.monotonic()
            expected = min(self.max_batch, len(queue) + lane.returning(work.group, queue, opened, self.batch_window))
            while len(queue) < self.max_batch and (lane.running > 1 or len(queue) < expected):
                left = opened + self.batch_window - time.monotonic()
                if left <= 0:
                    break
                with anyio.move_on_after(left):
                    await lane.grown(work.group)
        except BaseException:  # the head's client went, or its time is up: the next request heads the queue
            lane.release(borrower)
            raise
        members = self._plan(work.group, queue)
        lane.leave(work.group, queue, members)
        for member in members:
            member.taken = True
            member.promoted.set()
        token = anyio.lowlevel.current_token()
        try:
            self._batch_threads.submit(self._run_batch, lane, borrower, work.group, work.run_many, members, token)
        except RuntimeError as exc:  # no thread to be had: the batch's requests hear it rather than wait for nothing
            self._end_batch(lane, borrower, work.group, members, [exc] * len(members))

    def _plan(self, group: Hashable, queue: list[_Member]) -> list[_Member]:
        """The requests of the group's queue that go into its next batch: oldest first, at most max_batch, each
        only while the batch's estimated time stays within BATCH_TIME_SHARE of the time its tightest member has
        left. The head always goes: alone, it runs as it would run alone. Until the group has a measured batch,
        nothing bounds it but max_batch."""
        rate = self.seconds_per_cost.get(group)
        now = time.monotonic()
        members = [queue[0]]
        total, left = queue[0].cost, queue[0].deadline - now
        for member in queue[1:]:
            if len(members) == self.max_batch:
                break
            tightest = min(left, member.deadline - now)
            if rate is not None and rate * (total + member.cost) > BATCH_TIME_SHARE * tightest:
                continue  # it heads a later batch, or joins one with room for it
            members.append(member)
            total, left = total + member.cost, tightest
        return members

    def _measured(self, group: Hashable, cost: float, seconds: float) -> None:
        """A batch of `cost` in all took `seconds`: the group's seconds per cost moves halfway towards it."""
        if cost <= 0:
            return
        sample = seconds / cost
        previous = self.seconds_per_cost.get(group)
        self.seconds_per_cost[group] = sample if previous is None else (previous + sample) / 2

    def _run_batch(
        self, lane: Lane, borrower: object, group: Hashable, run_many: Callable, members: list[_Member], token
    ) -> None:
        def stopped(i: int) -> None:
            if members[i].cancel.is_set():
                raise RequestCancelled
            if time.monotonic() >= members[i].deadline:
                raise self._late("computing the answer")

        def give_way(seconds: float) -> None:  # a costly batch gives way as a costly call does
            if not self.cheap.idle.is_set():
                self.cheap.idle.wait(seconds)

        started = time.monotonic()
        try:
            if self.processes is not None:
                tagged = self.processes.run(
                    run_many,
                    gzip_json,
                    [member.item for member in members],
                    [member.deadline for member in members],
                    [member.cancel for member in members],
                    yields=lane is self.costly,
                )
                outcomes = [self._from_worker(outcome) for outcome in tagged]
            else:
                stops = row_stops(len(members), stopped, give_way if lane is self.costly else None, GIVE_WAY_SECONDS)
                answers = run_many(self.context, [member.item for member in members], stops)
                outcomes = [answer if isinstance(answer, Exception) else gzip_json(answer) for answer in answers]
        except WorkerFailed as exc:
            outcomes = [ServerBusy(str(exc), self.retry_after)] * len(members)
        except BaseException as exc:  # a fault of the model call itself: every request of the batch hears it
            outcomes = [exc] * len(members)
        # Rows stopped early cost less than they would have: only the answered ones count (a safe side to err on).
        answered = sum(m.cost for m, outcome in zip(members, outcomes, strict=True) if not isinstance(outcome, BaseException))
        self._measured(group, answered, time.monotonic() - started)  # one dict entry, written whole
        try:
            anyio.from_thread.run_sync(self._end_batch, lane, borrower, group, members, outcomes, token=token)
        except RuntimeError:  # the event loop has ended: nobody waits for these answers any more
            pass

    @staticmethod
    def _end_batch(lane: Lane, borrower: object, group: Hashable, members: list[_Member], outcomes: list) -> None:
        lane.answered(group, sum(not isinstance(outcome, BaseException) for outcome in outcomes))
        for member, outcome in zip(members, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                member.error = outcome
            else:
                member.body = outcome
            member.done.set()
        lane.release(borrower)

    def _from_worker(self, outcome: tuple) -> bytes | Exception:
        """A model process's outcome of one row (app.workers.Outcome) as the threads' path has it."""
        if outcome[0] == "body":
            return outcome[1]
        if outcome[0] == "cancelled":
            return RequestCancelled()
        if outcome[0] == "late":
            return self._late("computing the answer")
        return outcome[1]

    def _late(self, doing: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"the server is busy: the request ran past its time limit of {self.deadline:g} s {doing}; try again shortly, "
            "or ask for less (a shorter source, a smaller beam_size or max_length)",
            self.retry_after,
        )

    def _run_call(self, lane: Lane, compute: Compute, cancel: CancelFlag, deadline: float) -> bytes:
        step_started = time.monotonic()

        def stop() -> None:
            nonlocal step_started
            if cancel.is_set():
                raise RequestCancelled
            now = time.monotonic()
            if now >= deadline:
                raise self._late("computing the answer")
            if lane is self.costly and not self.cheap.idle.is_set():
                self.cheap.idle.wait(min(GIVE_WAY_SECONDS, now - step_started))
            step_started = time.monotonic()

        stop()
        return gzip_json(compute(stop))


def answer_json(model: BaseModel, indent: bool = False) -> bytes:
    """The JSON `model.model_dump_json()` gives, its arrays of numbers (app.schemas.float_array) written by orjson
    straight from numpy; a value orjson does not write itself (a path, a set, a date) is written as pydantic would."""
    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    return orjson.dumps(model.model_dump(), default=to_jsonable_python, option=options | (orjson.OPT_INDENT_2 if indent else 0))


def gzipped(data: bytes) -> bytes:
    # libdeflate at level 1: a 128-token answer (1.5 MB of JSON) compresses in 5.0 ms to 377 KB, where zlib's level 1
    # takes 11.5 ms for 405 KB (0.14 against 0.29 ms at 10 tokens); higher levels take several times as long for a
    # few percent fewer bytes. Its gzip header has no time stamp, so the same answer is the same bytes.
    return bytes(deflate.gzip_compress(data, 1))


def gzip_json(model: BaseModel) -> bytes:
    return gzipped(answer_json(model))


def configure_torch(settings: Settings) -> None:
    torch.set_num_threads(settings.torch_threads)


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def limit_malloc_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at `count` for the threads that allocate from now on; True if it took.

    glibc gives threads arenas of their own, up to 8 a core, and every model call in every thread of the pool
    grows the one it lands in, so RSS climbs for thousands of requests (bench/load.py's soak: +14.6% from 1,000
    to 10,000 requests with glibc's default, +9.1% with 2). Nothing happens for count 0, off glibc, or where
    MALLOC_ARENA_MAX is set (glibc has read it: the operator's choice stands)."""
    if count == 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))
