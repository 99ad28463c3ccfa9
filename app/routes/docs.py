"""The interactive API docs (Swagger UI at /docs, ReDoc at /redoc), each with a Content-Security-Policy of its own.

FastAPI's pages load their bundles from a CDN and start them with an inline script. Rather than loosen
the app's policy, each page allows exactly its CDN files and, by hash, the one inline script it carries.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

CDN = "https://cdn.jsdelivr.net"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_policy(page: HTMLResponse, style_src: str, extra: str = "") -> HTMLResponse:
    html = page.body.decode()
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in INLINE_SCRIPT.findall(html)
    )
    policy = (
        f"default-src 'self'; script-src 'self' {CDN} {hashes}; style-src {style_src}; "
        f"img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        f"frame-ancestors 'none'{extra}"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": policy})


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(openapi_url=request.app.openapi_url, title=f"{request.app.title} - Swagger UI")
    return with_policy(page, style_src=f"'self' {CDN}")


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(openapi_url=request.app.openapi_url, title=f"{request.app.title} - ReDoc")
    # ReDoc styles itself with injected <style> elements (style-src only: scripts stay strict) and parses in a blob: worker.
    return with_policy(
        page,
        style_src=f"'self' 'unsafe-inline' {CDN} https://fonts.googleapis.com",
        extra="; font-src https://fonts.gstatic.com; worker-src blob:",
    )
