from __future__ import annotations

from pathlib import Path

import pytest


def test_the_page_renders_with_the_models(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script src="/static/js/main.js" type="module">' in response.text
    assert "/vendor/plotly.min.js" not in response.text  # loaded by main.js once the first map is painted


def test_static_files_are_served_from_the_static_folder(client):
    assert client.get("/static/no-such-file.js").status_code == 404
    assert client.get("/static/../app/settings.py").status_code == 404


def test_a_front_end_module_is_served_as_javascript(client):
    static = Path(__file__).resolve().parents[2] / "static"
    module = next(iter(sorted(static.rglob("*.js"))), None)
    if module is None:
        pytest.skip("no front-end modules in static/ yet")
    response = client.get(f"/static/{module.relative_to(static).as_posix()}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == module.read_bytes()
