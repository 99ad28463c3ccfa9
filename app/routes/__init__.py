"""One router per noun; the documented error responses they share."""

from __future__ import annotations

import gzip
from typing import Any

from fastapi import Request, Response

from app.schemas import ErrorResponse

BUSY_EXAMPLE = (
    "the server is busy: the request ran past its time limit of 15 s waiting for a model slot; "
    "try again shortly, or ask for less (a shorter source, a smaller beam_size or max_length)"
)
# Each documented status with what it means and an answer as the service words it, so /docs shows
# a 404 as an unknown model and a 503 as a busy server, not every error as an empty source.
ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    404: (
        "Unknown model; the message lists the available ones",
        {"detail": "unknown model 'en-de'; available models: en-ja"},
    ),
    408: (
        "The body did not all arrive within the body timeout (20 s by default) of the headers",
        {"detail": "the request body did not arrive within 20 s of its headers: send it at once"},
    ),
    413: (
        "Request body over the size limit (64 KiB by default)",
        {"detail": "the request body is over the limit of 65536 bytes (64 KiB): send less text"},
    ),
    415: (
        "The body was not sent with Content-Type: application/json",
        {"detail": "the request body must be JSON sent with the header Content-Type: application/json (it was missing)"},
    ),
    422: (
        "Bad input: empty or over-long text, an index out of range, a limit exceeded, wrong types or malformed JSON",
        {"detail": "the source is empty: type a sentence in English"},
    ),
    503: (
        "Busy: the queue for a model slot is full, or the request ran past its time limit (15 s by default, "
        "waiting plus computing); see Retry-After",
        {"detail": BUSY_EXAMPLE},
    ),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, example = ERRORS[status]
        content = {"application/json": {"example": example}}
        responses[status] = {"model": ErrorResponse, "description": description, "content": content}
    if 503 in responses:
        retry_after = {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
        responses[503]["headers"] = {"Retry-After": retry_after}
    return responses


POST_ERRORS = error_responses(404, 408, 413, 415, 422, 503)


def gzipped_json_response(request: Request, body: bytes) -> Response:
    """A gzipped JSON body as it is, or decompressed for a client that does not accept gzip.

    GZipMiddleware leaves a response that already has a Content-Encoding alone.
    """
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(body, media_type="application/json", headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(gzip.decompress(body), media_type="application/json")
