"""The line view: source and target tokens in two columns, a line per link as wide as its share of the row."""

from __future__ import annotations

import pytest

from tests.browser.conftest import CLASSIC_TARGET, POLITE_MODEL, TINY_READINGS, serious_violations, submit

LINES = """() => [...document.querySelectorAll('#lines-figure line')].map((l) => ({
    row: Number(l.dataset.row), col: Number(l.dataset.col), width: Number(l.getAttribute('stroke-width')),
    argmax: l.classList.contains('argmax'), lit: l.classList.contains('lit'),
}))"""
TOKENS = """(axis) => [...document.querySelectorAll(`#lines-figure .line-token[data-axis="${axis}"]`)]
    .map((t) => t.textContent)"""
# The shown cross map of the response, as the page computes it (selection.displayedMap), for the expected widths.
SHOWN = """async ([layer, head]) => {
    const { displayedMap } = await import('/static/js/selection.js');
    const response = await (await fetch('/api/v1/attention', {method: 'POST', headers: {'content-type': 'application/json'},
        body: JSON.stringify({source: 'This is an example.', target: 'これ は 例 で す 。'})})).json();
    const view = displayedMap(response, {showSpecial: false, renormalise: true}, 'cross', layer, head);
    return {matrix: view.matrix, rows: view.rowTokens.map((t) => t.text), cols: view.colTokens.map((t) => t.text)};
}"""


def open_lines(page) -> None:
    page.click("#tab-lines")
    page.wait_for_function("() => document.querySelectorAll('#lines-figure line').length > 0")


def test_the_line_view_draws_the_cross_map_as_lines_as_wide_as_their_share(page):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    open_lines(page)
    shown = page.evaluate(SHOWN, [1, "mean"])  # tiny opens on its last layer, mean of heads
    assert page.evaluate(TOKENS, "source") == shown["cols"] == ["this", "is", "an", "example", "."]
    # produced tokens with their readings, as the header shows them (the Readings box is on)
    assert page.evaluate(TOKENS, "target") == [f"{t} ({TINY_READINGS[t]})" if t in TINY_READINGS else t for t in shown["rows"]]
    lines = page.evaluate(LINES)
    for line in lines:
        share = shown["matrix"][line["row"]][line["col"]] / sum(shown["matrix"][line["row"]])
        assert line["width"] == pytest.approx(max(0.75, 8 * share), abs=0.01)
    # each target token's strongest link is the dark one
    argmax = {line["row"]: line["col"] for line in lines if line["argmax"]}
    assert argmax == {i: max(range(len(row)), key=row.__getitem__) for i, row in enumerate(shown["matrix"])}
    assert page.get_attribute("#lines-figure", "aria-label").startswith("Line view · cross-attention · layer 1, mean of heads")

    page.select_option("#head", "2")  # another head redraws it, without fetching
    page.wait_for_function("() => document.getElementById('lines-figure').getAttribute('aria-label').includes('head 2')")
    shown = page.evaluate(SHOWN, [1, 2])
    argmax = {line["row"]: line["col"] for line in page.evaluate(LINES) if line["argmax"]}
    assert argmax == {i: max(range(len(row)), key=row.__getitem__) for i, row in enumerate(shown["matrix"])}
    assert page.watch.errors == []


def test_pointing_at_a_token_lights_up_its_lines_here_and_from_the_header(page):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    open_lines(page)
    page.hover('#lines-figure .line-token[data-axis="source"][data-index="3"]')  # example
    lit = [line for line in page.evaluate(LINES) if line["lit"]]
    assert lit and all(line["col"] == 3 for line in lit)
    assert len(lit) == sum(1 for line in page.evaluate(LINES) if line["col"] == 3)
    page.hover('#target-tokens .token[data-index="2"]')  # 例, from the header's chips
    lit = [line for line in page.evaluate(LINES) if line["lit"]]
    assert lit and all(line["row"] == 2 for line in lit)
    page.mouse.move(1, 1)
    page.wait_for_function("() => !document.querySelector('#lines-figure svg').classList.contains('pointing')")
    assert page.watch.errors == []


def test_the_line_view_shows_the_best_alignment_the_card_measured_and_passes_axe(page):
    page.goto("/")
    page.wait_for_selector(f'#model option[value="{POLITE_MODEL}"]', state="attached")
    page.select_option("#model", POLITE_MODEL)
    submit(page, "This is an example.", CLASSIC_TARGET)
    open_lines(page)
    assert page.inner_text("#lines-note") == (
        "Best alignment of weights in the model card: layer 1, head 2, AER 0.450 against the gold alignments; "
        "best layer mean: layer 0 (AER 0.500)."
    )
    assert page.get_attribute("#lines-figure", "aria-label").startswith("Line view · cross-attention · layer 0, mean of heads")
    page.click("#figure-table summary")
    page.wait_for_selector("#figure-table tbody tr")  # the details element's toggle event fills it, after the click
    assert page.locator("#figure-table tbody tr").count() == len(page.evaluate(LINES))
    assert serious_violations(page) == []
    assert page.watch.errors == []


def test_the_line_view_draws_for_every_method_the_model_declares(page):
    page.goto("/")
    models = page.evaluate("() => JSON.parse(document.getElementById('models-data').textContent)")
    methods = [m["name"] for m in next(m for m in models if m["name"] == "tiny")["methods"]]
    assert methods == ["weights", "norms", "alti", "saliency"]
    for method in methods:
        page.select_option("#method", method)
        if method == "saliency":
            page.select_option("#saliency", "input_x_gradient")  # quick: one backward pass
        submit(page, "This is an example.", CLASSIC_TARGET)
        open_lines(page)
        label = page.get_attribute("#lines-figure", "aria-label")
        assert label.startswith("Line view · ") and f"method {method}" in label, label
        what = "source contributions" if method == "saliency" else "cross-attention"
        assert what in label
        lines = page.evaluate(LINES)
        assert sum(line["argmax"] for line in lines) == 6  # one strongest link per shown produced token
        page.click("#tab-head" if method != "saliency" else "#tab-contributions")
    assert page.watch.errors == []
