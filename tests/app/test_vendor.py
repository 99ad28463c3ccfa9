from __future__ import annotations

from pathlib import Path

import fastapi_offline
import plotly
import pytest


@pytest.mark.parametrize(
    ("name", "media_type", "path"),
    [
        ("plotly.min.js", "text/javascript", Path(plotly.__file__).parent / "package_data" / "plotly.min.js"),
        ("swagger-ui-bundle.js", "text/javascript", Path(fastapi_offline.__file__).parent / "static" / "swagger-ui-bundle.js"),
        ("swagger-ui.css", "text/css", Path(fastapi_offline.__file__).parent / "static" / "swagger-ui.css"),
        ("favicon.png", "image/png", Path(fastapi_offline.__file__).parent / "static" / "favicon.png"),
    ],
)
def test_bundles_are_served_from_the_installed_packages(client, name, media_type, path):
    response = client.get(f"/vendor/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert response.content == path.read_bytes()


@pytest.mark.parametrize("name", ["nope.js", "redoc.standalone.js", "..plotly.min.js"])
def test_anything_else_is_a_404_that_lists_what_there_is(client, name):
    response = client.get(f"/vendor/{name}")
    assert response.status_code == 404
    assert "plotly.min.js" in response.json()["detail"]


def test_no_path_reaches_past_the_listed_files(client):
    assert client.get("/vendor/..%2F..%2Fapp%2Fsettings.py").status_code == 404
    assert client.get("/vendor/../app/settings.py").status_code == 404


def test_text_bundles_come_gzipped_once_and_a_known_etag_gets_a_304(client):
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    response = client.get("/vendor/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip" and response.headers["vary"] == "Accept-Encoding"
    assert response.content == path.read_bytes()  # httpx undoes the gzip
    assert int(response.headers["content-length"]) < path.stat().st_size / 3
    again = client.get("/vendor/plotly.min.js", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/vendor/plotly.min.js", headers={"if-none-match": '"other"'}).status_code == 200
