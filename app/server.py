"""The HTTP server: uvicorn's h11 protocol with the limits uvicorn lacks, and the options `attnscope serve` runs it with.

uvicorn has a keep-alive timeout and a backlog, but no timeout for a request's head, no bound on
open connections short of answering every new request 503 (limit_concurrency), and with httptools
no bound on the size of the headers; its own 400s carry none of the app's security headers. This
subclass of its h11 protocol adds them:

- the request line and headers may take `max_header_bytes` (431 past it, whether they arrive in one
  packet or dribbled, and before they are buffered any further);
- a connection has `header_timeout` seconds to send a complete head, from connecting or from the
  previous answer (408 if it sent part of one, a silent close if it sent nothing);
- at most `max_connections` connections are open at once; one more gets 503 and is closed;
- every answer the protocol writes itself (400, 408, 431, 503) is JSON {"detail": ...} with the
  security headers, and closes the connection.

The body's own timeout is app.middleware.BodyReadTimeout: it runs while the app reads the body,
so its 408 goes through the app's error handlers like any other.
"""

from __future__ import annotations

import asyncio
import functools
import http
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.middleware import SECURITY_HEADERS
from app.settings import Settings


class _SizedConnection(h11.Connection):
    """An h11 server connection that refuses a request head over `max_head` bytes with 431.

    h11 itself refuses only a head still incomplete past its buffer size; a larger one that arrives in
    a single read would pass.
    """

    def __init__(self, max_head: int):
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head)
        self.max_head = max_head
        self.error_status = 400

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error_status = exc.error_status_hint
            raise
        if isinstance(event, h11.Request):
            size = len(event.method) + len(event.target) + sum(len(name) + len(value) + 4 for name, value in event.headers)
            if size > self.max_head:
                self.error_status = 431
                raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        return event


def raw_response(status: int, detail: str, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, written without h11 (whatever state it is in)."""
    body = json.dumps({"detail": detail}).encode()
    fields = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "connection": "close",
        **(headers or {}),
        **SECURITY_HEADERS,
    }
    head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


class HardenedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, max_header_bytes: int, header_timeout: float, max_connections: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.conn = _SizedConnection(max_header_bytes)
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_bytes = 0  # received since the head timer started

    # --- answers of the protocol's own -------------------------------------------------------------

    def _refuse(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(raw_response(status, detail, headers))
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if self.conn.error_status == 431:
            limit = self.max_header_bytes
            self._refuse(431, f"the request line and headers are over the limit of {limit} bytes: send fewer or shorter headers")
        else:
            self._refuse(400, f"the request is not valid HTTP/1.1 ({msg})")

    # --- the connection cap --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            detail = f"the server has its limit of {self.max_connections} connections open: try again shortly"
            self._refuse(503, detail, {"retry-after": "1"})
            return
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    # --- the head timeout ----------------------------------------------------------------------------

    def _serving(self) -> bool:
        """A request's head has arrived and its answer is not complete yet."""
        return self.conn.our_state in (h11.SEND_RESPONSE, h11.SEND_BODY)

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self.head_bytes = 0
        self.head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self._serving() or self.transport.is_closing():
            return
        if self.head_bytes == 0:
            self.transport.close()
            return
        self._refuse(408, f"the request's headers did not arrive within {self.header_timeout:g} s: send them at once")

    def data_received(self, data: bytes) -> None:
        self.head_bytes += len(data)
        super().data_received(data)
        if self._serving():
            self._stop_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next head is due (or the rest of a body the app did not read is still coming): the clock runs.
        if not self._serving() and not self.transport.is_closing():
            self._start_head_timer()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What uvicorn.run / uvicorn.Config take to serve with the settings' limits."""
    protocol = functools.partial(
        HardenedH11Protocol,
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        max_connections=settings.max_connections,
    )
    return {"http": protocol, "timeout_keep_alive": settings.keep_alive_timeout}
