"""The page under the Content-Security-Policy the server really sends, and markup typed as tokens staying
text in every view: header chips, head view, overview grid, three panels, statistics, steps, how it's computed,
hovers, axis labels and every export."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import httpx

from app.middleware import CONTENT_SECURITY_POLICY
from tests.browser.conftest import as_lists, axis_labels, submit

# Whole tags survive as single target tokens (the target is split on spaces), so each reaches the page intact.
HOSTILE_SOURCE = '"><script>window.pwned=1</script> <img src=x onerror=window.pwned=2>'
HOSTILE_TARGET = (
    '<img/src=x/onerror=window.pwned=3> <svg/onload=window.pwned=4> "><b>bold</b> <a/href=javascript:window.pwned=5>x</a>'
)
TAGS = ["<img/src=x/onerror=window.pwned=3>", "<svg/onload=window.pwned=4>", '"><b>bold</b>']
VIEWS = ["head", "grid", "panels", "stats", "steps", "lines"]

INERT = """() => ({
    pwned: window.pwned ?? null,
    active: document.querySelectorAll(
        '#result img, #result script, #result iframe, #result b, #result a[href^="javascript"], [onerror], [onload]'
    ).length,
})"""


def watch_csp(page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    page.expose_function("reportViolation", lambda text: violations.append(text))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.reportViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`))"
    )
    return violations


def test_the_page_is_served_with_the_strict_policy(base_url):
    response = httpx.get(base_url + "/")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    for asset in ["/static/js/main.js", "/static/css/app.css", "/vendor/plotly.min.js"]:
        assert httpx.get(base_url + asset).headers["x-content-type-options"] == "nosniff"


def test_injected_tokens_stay_inert_in_every_view_under_the_real_policy(page, tmp_path):
    violations = watch_csp(page)
    page.goto("/")
    with page.expect_response("**/api/v1/attention") as answer:
        submit(page, HOSTILE_SOURCE, HOSTILE_TARGET)
    chips = page.locator("#target-tokens .token").all_inner_texts()
    for tag in TAGS:
        assert any(tag in chip for chip in chips), chips

    for view in VIEWS:
        page.click(f"#tab-{view}")
        page.wait_for_timeout(200)
        assert page.evaluate(INERT) == {"pwned": None, "active": 0}, view

    page.click("#tab-explain")  # its token labels: table headers, strip labels, the row picker, the bar chart
    page.wait_for_function("() => !document.getElementById('explain-check').hidden")
    assert page.evaluate(INERT) == {"pwned": None, "active": 0}
    explained = page.text_content("#view-explain")
    for tag in TAGS:
        assert tag in explained

    page.click("#tab-head")
    labels = " ".join(axis_labels(page, "y"))
    for tag in TAGS:
        assert tag in labels, labels

    # A hover label over the middle of the map shows a hostile token as text.
    box = page.locator("#head-figure .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 5)
    page.wait_for_selector("#head-figure .hoverlayer .hovertext")
    hover = page.locator("#head-figure .hoverlayer").text_content()
    assert "<" in hover and ">" in hover
    assert page.evaluate(INERT) == {"pwned": None, "active": 0}

    files = {}
    for fmt in ["png", "svg", "json", "csv"]:
        with page.expect_download() as download:
            page.click(f'[data-export="{fmt}"]')
        files[fmt] = tmp_path / f"figure.{fmt}"
        download.value.save_as(files[fmt])
    svg = ET.parse(files["svg"]).getroot()  # well-formed: every token was escaped
    elements = {element.tag.rsplit("}", 1)[-1] for element in svg.iter()}
    assert not elements & {"script", "img", "foreignObject", "a", "b"}, elements
    assert not any(name.startswith("on") for element in svg.iter() for name in element.attrib)
    texts = " ".join(element.text or "" for element in svg.iter())
    assert "<img/src=x/onerror=window.pwned=3>" in texts
    assert json.loads(files["json"].read_text()) == as_lists(answer.value.json())
    assert "<svg/onload=window.pwned=4>" in files["csv"].read_text(encoding="utf-8")
    assert files["png"].read_bytes()[:4] == b"\x89PNG"

    assert page.evaluate(INERT) == {"pwned": None, "active": 0}
    assert violations == []
    assert page.watch.dialogs == [] and page.watch.errors == []
