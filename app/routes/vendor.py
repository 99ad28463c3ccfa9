"""Third-party browser bundles, served from the Python packages that ship them, so no page needs a CDN.

Plotly's bundle is the package's own `package_data`; Swagger UI comes from `fastapi-offline`, which
packages the bundle FastAPI's /docs page otherwise loads from jsdelivr.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
import plotly
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(prefix="/vendor", include_in_schema=False)

DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
BUNDLES: dict[str, tuple[Path, str]] = {
    "plotly.min.js": (Path(plotly.__file__).parent / "package_data" / "plotly.min.js", "text/javascript"),
    "swagger-ui-bundle.js": (DOCS_ASSETS / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (DOCS_ASSETS / "swagger-ui.css", "text/css"),
    "favicon.png": (DOCS_ASSETS / "favicon.png", "image/png"),
}


@router.get("/{name}")
def bundle(name: str) -> FileResponse:
    if name not in BUNDLES:
        raise HTTPException(404, f"Not Found: no vendored file named {name!r}; there are {', '.join(BUNDLES)}")
    path, media_type = BUNDLES[name]
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
