"""Pure ASGI middleware (no response buffering, so streaming and gzip are unaffected)."""

from __future__ import annotations

import anyio
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import unexpected_error_response


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not they declare a Content-Length."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self) -> str:
        return f"the request body is over the limit of {self.max_bytes} bytes ({self.max_bytes // 1024} KiB): send less text"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await JSONResponse({"detail": self._detail()}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException passes through FastAPI's body parsing untouched and becomes the 413 response.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)


class BodyReadTimeout:
    """Answer 408 and close the connection when a request's body has not all arrived `seconds` after its head.

    It times the app's reads of the body, so a client that dribbles a body byte by byte holds a
    connection for `seconds` at most; reads after the body (waiting for a disconnect) are not timed.
    """

    def __init__(self, app: ASGIApp, seconds: float):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = anyio.current_time() + self.seconds
        complete = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()):
                message = await receive()
                complete = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            detail = f"the request body did not arrive within {self.seconds:g} s of its headers: send it at once"
            # An HTTPException passes through FastAPI's body parsing untouched, as in BodySizeLimit.
            raise HTTPException(408, detail, headers={"Connection": "close"})

        await self.app(scope, timed_receive, send)


# Only the app's own scripts and styles, nothing inline; Plotly's PNG/SVG export goes through data: and blob: images.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """Add SECURITY_HEADERS to every response; a route that sets its own policy (the API docs) keeps it."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.headers = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self.headers if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UnexpectedErrors:
    """Turn an exception nothing else handled into a JSON 500 without internals.

    Starlette sends its own 500 from outside every middleware, so that answer would miss the security
    headers; this one sits inside SecurityHeaders.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:  # too late for a clean answer: let the server close the connection
                raise
            await unexpected_error_response(f"{scope['method']} {scope['path']}")(scope, receive, send)
