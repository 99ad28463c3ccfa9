"""Third-party browser bundles, served from the Python packages that ship them, so no page needs a CDN.

Plotly's bundle is the package's own `package_data`; Swagger UI comes from `fastapi-offline`, which
packages the bundle FastAPI's /docs page otherwise loads from jsdelivr.

Text bundles go out gzipped at level 9, compressed once per process rather than on every request by
the app's GZipMiddleware at level 1 (Plotly: 4.8 MB → 1.4 MB instead of 1.7 MB, and no 4.8 MB to
compress per first visit). Every bundle has an ETag, so a browser whose day of caching is over asks
again and gets a 304.
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

import fastapi_offline
import plotly
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

router = APIRouter(prefix="/vendor", include_in_schema=False)

DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
BUNDLES: dict[str, tuple[Path, str]] = {
    "plotly.min.js": (Path(plotly.__file__).parent / "package_data" / "plotly.min.js", "text/javascript"),
    "swagger-ui-bundle.js": (DOCS_ASSETS / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (DOCS_ASSETS / "swagger-ui.css", "text/css"),
    "favicon.png": (DOCS_ASSETS / "favicon.png", "image/png"),
}
CACHE_CONTROL = "public, max-age=86400"


@cache
def compressed(path: Path) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)


def etag(path: Path) -> str:
    stat = path.stat()
    return f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'


@router.get("/{name}")
def bundle(name: str, request: Request) -> Response:
    if name not in BUNDLES:
        raise HTTPException(404, f"Not Found: no vendored file named {name!r}; there are {', '.join(BUNDLES)}")
    path, media_type = BUNDLES[name]
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag(path), "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    if media_type.startswith("text/") and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(compressed(path), media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
    return FileResponse(path, media_type=media_type, headers=headers)
