"""One router per noun; the documented error responses they share."""

from __future__ import annotations

import gzip
from typing import Any

from fastapi import Request, Response

from app.schemas import ErrorResponse


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        404: "Unknown model; the message lists the available ones",
        408: "The body did not all arrive within the body timeout (20 s by default) of the headers",
        413: "Request body over the size limit (64 KiB by default)",
        415: "The body was not sent with Content-Type: application/json",
        422: "Bad input: empty or over-long text, an index out of range, a limit exceeded, wrong types or malformed JSON",
        503: "Busy: the queue for a model slot is full, or the request ran past its time limit (15 s by default, "
        "waiting plus computing); see Retry-After",
    }
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse, "description": descriptions[status]} for status in statuses
    }
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
