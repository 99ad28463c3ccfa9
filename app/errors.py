"""Every failure becomes JSON {"detail": "..."} with a message a person can act on; no stack trace leaves the server."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.registry import UnknownModel
from app.runner import RequestCancelled, ServerBusy
from app.schemas import ErrorResponse, ValidationIssue
from backends.interface import InputError

log = logging.getLogger("attnscope")


def _encodable(text: str, limit: int = 300) -> str:
    """Messages may quote what the caller sent: keep them short and free of lone surrogates (not UTF-8 encodable)."""
    text = text if len(text) <= limit else text[:limit] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(status: int, detail: str, errors: list[ValidationIssue] | None = None, headers=None) -> JSONResponse:
    body = ErrorResponse(detail=_encodable(detail, limit=2000), errors=errors).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple) -> str:
    # ("body", "layers", 0) -> "layers[0]"; the "body" prefix says nothing to the caller
    parts = [p for p in loc if p != "body"]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _issue_message(error: dict) -> str:
    if error["type"] == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    if error["loc"] == ("body",):
        return f"the body must be a JSON object sent with content-type: application/json ({error['msg']})"
    return f"{_field(error['loc'])}: {error['msg']}"


# A body of thousands of unknown keys would otherwise get an answer many times its own size.
MAX_LISTED_ERRORS = 20


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The offending input is not echoed back: it may be huge, or hold text that cannot be encoded.
    errors = exc.errors()
    listed = errors[:MAX_LISTED_ERRORS]
    issues = [ValidationIssue(loc=[_encodable(p) if isinstance(p, str) else p for p in e["loc"]], msg=e["msg"]) for e in listed]
    detail = "; ".join(dict.fromkeys(_issue_message(e) for e in listed)) or "the request is malformed"
    if len(errors) > len(listed):
        detail += f" (the first {len(listed)} of {len(errors)} errors)"
    return error_response(422, detail, issues)


async def _input_error(request: Request, exc: InputError) -> JSONResponse:
    return error_response(422, str(exc))


async def _unknown_model(request: Request, exc: UnknownModel) -> JSONResponse:
    return error_response(404, str(exc))


async def _server_busy(request: Request, exc: ServerBusy) -> JSONResponse:
    return error_response(503, str(exc), headers={"Retry-After": str(exc.retry_after)})


async def _request_cancelled(request: Request, exc: RequestCancelled) -> JSONResponse:
    # Nobody reads this: the client has gone. 499 is what access logs conventionally call it.
    return error_response(499, "the client closed the connection before the answer was ready")


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's body parsing answers 400 for bytes that are not UTF-8
        return error_response(
            422, f"the body is not valid JSON: JSON must be UTF-8 encoded ({exc.__cause__.reason} at byte {exc.__cause__.start})"
        )
    if exc.status_code == 400 and exc.__cause__ is not None:  # any other failure of FastAPI's body parsing
        reason = "nested too deeply" if isinstance(exc.__cause__, RecursionError) else "it cannot be parsed"
        return error_response(422, f"the body is not valid JSON: {reason}")
    detail = str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "Not Found: nothing is at this path; the API's paths are listed at /docs"
    elif exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
        detail = f"Method Not Allowed: this path takes {exc.headers['Allow']}"
    return error_response(exc.status_code, detail, headers=exc.headers)


def unexpected_error_response(request_line: str) -> JSONResponse:
    """The 500 for an exception nothing else handled; app.middleware.UnexpectedErrors sends it."""
    log.exception("unexpected error on %s", request_line)
    return error_response(500, "internal error: the server could not answer this request; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(UnknownModel, _unknown_model)
    app.add_exception_handler(ServerBusy, _server_busy)
    app.add_exception_handler(RequestCancelled, _request_cancelled)
    app.add_exception_handler(HTTPException, _http_error)
