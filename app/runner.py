"""The cached, bounded runner: model calls in worker threads, a few at a time, their answers cached gzipped.

Nothing here knows about models or FastAPI: a handler hands in a cache key and a compute(stop)
callable; `stop` raises RequestCancelled once the client has gone, and models call it inside their
decoding loops (backends.interface.StopCheck), so an abandoned call frees its slot within a step.
"""

from __future__ import annotations

import gzip
import math
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

import anyio
import torch
from pydantic import BaseModel

from app.settings import Settings
from backends.interface import StopCheck


class ServerBusy(RuntimeError):
    """Every model slot is taken and the queue is full, or a request waited too long for a slot."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class RequestCancelled(Exception):
    """The client went away: the model call stops at its next decoding step and its slot goes to the next request."""


Compute = Callable[[StopCheck], BaseModel]


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


class InferenceRunner:
    """Runs model calls in worker threads, `concurrency` at a time, and caches their gzipped JSON bodies.

    The model call, the serialization and the compression all run off the event loop: for a 128-token
    source the JSON of every map is 1.5 MB, and writing or compressing it there would stall every other
    request. Bodies are kept compressed, so the cache holds four times as many in the same memory.
    At most `max_queue` requests wait for a slot, each for at most `queue_timeout` seconds; beyond
    that the caller hears ServerBusy (503 with Retry-After) at once rather than hanging.
    """

    def __init__(
        self,
        concurrency: int,
        cache_size: int,
        cache_max_bytes: int = 16 * 1024 * 1024,
        max_queue: int = 64,
        queue_timeout: float = 10.0,
    ):
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.cache = ResponseCache(cache_size, cache_max_bytes)
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.waiting = 0

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.queue_timeout / 2))

    async def gzipped_json(
        self, key: Hashable, compute: Compute, client_gone: Callable[[], Awaitable[None]] | None = None
    ) -> bytes:
        """The cached or computed JSON body, gzip-compressed. When `client_gone` returns first, raise RequestCancelled: a waiting
        request leaves the queue, a running one stops at its model's next decoding step, and either way frees its slot."""
        body = self.cache.get(key)
        if body is not None:
            return body
        cancel = threading.Event()
        failure: Exception | None = None
        async with anyio.create_task_group() as tasks:
            if client_gone is not None:

                async def watch() -> None:
                    await client_gone()
                    cancel.set()
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch)
            try:
                body = await self._compute(compute, cancel)
            except Exception as exc:  # raised outside the task group, so it is not wrapped in an ExceptionGroup
                failure = exc
            tasks.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if body is None:
            raise RequestCancelled
        self.cache.put(key, body)
        return body

    async def _compute(self, compute: Compute, cancel: threading.Event) -> bytes | None:
        if self.limiter.available_tokens == 0 and self.waiting >= self.max_queue:
            raise ServerBusy(
                f"the server is busy: {self.waiting} requests are already waiting for the model; try again shortly",
                self.retry_after,
            )
        self.waiting += 1
        try:
            with anyio.fail_after(self.queue_timeout):
                await self.limiter.acquire()
        except TimeoutError:
            raise ServerBusy(
                f"the server is busy: no model slot came free within {self.queue_timeout:g} s; try again shortly",
                self.retry_after,
            ) from None
        finally:
            self.waiting -= 1
        try:
            # Not abandoned on cancellation: the slot stays taken until the thread has really stopped.
            return await anyio.to_thread.run_sync(_run_call, compute, cancel)
        except RequestCancelled:
            return None
        finally:
            self.limiter.release()


def _run_call(compute: Compute, cancel: threading.Event) -> bytes:
    def stop() -> None:
        if cancel.is_set():
            raise RequestCancelled

    stop()
    return gzip_json(compute(stop))


def gzip_json(model: BaseModel) -> bytes:
    # Level 1: a 128-token answer compresses in ~15 ms to 400 KB; level 9 takes seconds for 25% fewer bytes.
    # mtime=0 keeps the bytes the same for the same answer.
    return gzip.compress(model.model_dump_json().encode(), compresslevel=1, mtime=0)


def configure_torch(settings: Settings) -> None:
    torch.set_num_threads(settings.torch_threads)
