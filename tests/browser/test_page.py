"""The page in real Chromium against the real app: what a reader does, and what must never happen."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import torch

from app.shaping import _rounded, packed
from tests.browser.conftest import (
    CLASSIC_TARGET,
    POLITE_MODEL,
    STRICT_CSP,
    as_lists,
    axis_labels,
    head_title,
    open_page,
    submit,
    wait_for_figure,
)

XSS_INPUTS = ["<img src=x onerror=alert(1)>", '"><script>alert(1)</script>']


def test_page_loads_without_errors_or_requests_leaving_localhost(page):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#model').options.length > 0")
    submit(page, "This is an example.")
    assert page.watch.errors == []
    assert page.watch.foreign_requests == []
    assert any(url.endswith("/vendor/plotly.min.js") for url in requests)
    assert all(urlparse(url).hostname == "127.0.0.1" for url in requests if not url.startswith(("data:", "blob:")))


def test_typing_the_classic_example_draws_a_labelled_head_view(page):
    page.goto("/")
    with page.expect_response("**/api/v1/attention") as answer:
        submit(page, "This is an example.")
    produced = [t["text"] for t in answer.value.json()["target_tokens"] if not t["special"]]
    assert head_title(page).startswith("Cross-attention")
    assert axis_labels(page, "x") == ["this", "is", "an", "example", "."]
    assert [label.split(" ")[0] for label in axis_labels(page, "y")] == produced
    assert page.locator("#source-tokens .token").all_inner_texts() == ["this", "is", "an", "example", ".", "</s>"]


def test_readings_show_on_axes_in_hovers_and_in_the_header_and_toggle_off(page):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    assert axis_labels(page, "y") == ["これ kore", "は wa", "例 rei", "で de", "す su", "。"]
    assert page.locator("#target-tokens .token rt").all_inner_texts() == ["kore", "wa", "rei", "de", "su"]
    hovers = page.evaluate("() => document.getElementById('head-figure').data.at(-2).text[2][3]")
    assert "例 (rei)" in hovers and "example" in hovers
    page.uncheck("#show-readings")
    page.wait_for_function("() => !document.getElementById('head-figure').layout.yaxis.ticktext.join().includes('rei')")
    assert axis_labels(page, "y") == ["これ", "は", "例", "で", "す", "。"]


def test_switching_kind_layer_and_head_changes_the_figure_without_refetching(page):
    page.goto("/?layer=0&head=0")
    submit(page, "This is an example.", CLASSIC_TARGET)
    calls = []
    page.on("request", lambda r: "/api/" in r.url and calls.append(r.url))
    weights = "() => JSON.stringify(document.getElementById('head-figure').data.map((t) => t.z))"
    seen = {page.evaluate(weights)}
    for action, title in [
        (lambda: page.check('input[name="kind"][value="encoder"]', force=True), "Encoder self-attention · layer 0, head 0"),
        (lambda: page.select_option("#layer", "1"), "Encoder self-attention · layer 1, head 0"),
        (lambda: page.select_option("#head", "3"), "Encoder self-attention · layer 1, head 3"),
        (
            lambda: page.check('input[name="kind"][value="decoder"]', force=True),
            "Decoder masked self-attention · layer 1, head 3",
        ),
        (lambda: page.select_option("#head", "mean"), "Decoder masked self-attention · layer 1, mean of heads"),
    ]:
        action()
        page.wait_for_function("(title) => document.getElementById('head-figure').layout.title.text === title", arg=title)
        seen.add(page.evaluate(weights))
    assert len(seen) == 6
    assert axis_labels(page, "x") == ["これ kore", "は wa", "例 rei", "で de", "す su", "。"]  # decoder inputs, <s> hidden
    assert calls == []
    assert page.watch.errors == []


def test_keyboard_arrows_move_through_heads_and_layers(page):
    page.goto("/?layer=0&head=0")
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.locator("#head-figure").click(position={"x": 5, "y": 5})
    for key, title in [
        ("ArrowRight", "layer 0, head 1"),
        ("ArrowDown", "layer 1, head 1"),
        ("ArrowLeft", "layer 1, head 0"),
        ("ArrowLeft", "layer 1, max of heads"),  # the arrows reach the aggregates too
        ("ArrowLeft", "layer 1, mean of heads"),
        ("ArrowLeft", "layer 1, head 3"),
        ("ArrowUp", "layer 0, head 3"),
    ]:
        page.keyboard.press(key)
        page.wait_for_function("(t) => document.getElementById('head-figure').layout.title.text.endsWith(t)", arg=title)


def test_decoder_future_cells_are_drawn_as_masked_not_as_zero(page):
    page.goto("/?kind=decoder&special=1")  # with <s> shown, row i may see columns 0..i
    submit(page, "This is an example.", CLASSIC_TARGET)
    mask, weights = page.evaluate("() => document.getElementById('head-figure').data.slice(0, 2).map((t) => t.z)")
    for i, row in enumerate(weights):
        for j, w in enumerate(row):
            assert (w is None) == (j > i)
            assert (mask[i][j] == 1) == (j > i)


def test_overview_click_opens_that_head_and_marks_it_selected(page):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.click("#tab-grid")
    assert page.locator("#grid button.thumb").count() == 2 * (4 + 2)  # 2 layers × (4 heads, mean, max)
    page.click('#grid button.thumb[data-layer="1"][data-head="2"]')
    page.wait_for_function("() => document.getElementById('head-figure').layout.title.text.endsWith('layer 1, head 2')")
    assert page.locator("#view-head").is_visible()
    assert page.input_value("#layer") == "1" and page.input_value("#head") == "2"
    page.click("#tab-grid")
    selected = page.locator("#grid button.thumb.selected")
    assert selected.count() == 1 and selected.get_attribute("data-layer") == "1" and selected.get_attribute("data-head") == "2"


def test_head_statistics_click_selects_a_head(page):
    page.goto("/?view=stats")
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.wait_for_selector("#stats-figure .heatmaplayer")
    box = page.locator("#stats-figure .nsewdrag").first.bounding_box()
    # the entropy panel has 4 heads × 2 layers: the cell of layer 1, head 3 is bottom right
    page.mouse.click(box["x"] + box["width"] * 7 / 8, box["y"] + box["height"] * 3 / 4)
    page.wait_for_function("() => document.getElementById('head-figure').layout?.title.text.endsWith('layer 1, head 3')")


def test_aggregates_match_the_definitions(page):
    page.goto("/?kind=encoder")
    with page.expect_response("**/api/v1/attention") as answer:
        submit(page, "This is an example.", CLASSIC_TARGET)
    layers = as_lists(answer.value.json())["attention"]["encoder"]["weights"]
    matrices = page.evaluate(
        """async (weights) => {
            const m = await import('/static/js/matrices.js');
            const map = { weights };
            return { mean: m.selectMatrix(map, 1, 'mean'), max: m.selectMatrix(map, 1, 'max'),
                     rollout: m.selectMatrix(map, 1, 'rollout') };
        }""",
        layers,
    )
    np = pytest.importorskip("numpy")
    w = np.array(layers)
    assert np.allclose(matrices["mean"], w[1].mean(0))
    assert np.allclose(matrices["max"], w[1].max(0))
    flow = [0.5 * w[layer].mean(0) + 0.5 * np.eye(w.shape[-1]) for layer in range(2)]
    flow = [a / a.sum(-1, keepdims=True) for a in flow]
    assert np.allclose(matrices["rollout"], flow[1] @ flow[0])


def test_special_tokens_can_be_shown_and_rows_renormalised(page):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    assert "</s>" not in axis_labels(page, "x")
    page.check("#show-special")
    page.wait_for_function("() => document.getElementById('head-figure').layout.xaxis.ticktext.length === 6")
    assert axis_labels(page, "x")[-1] == "</s>"
    page.uncheck("#show-special")
    page.check("#renormalise")
    page.wait_for_function("() => document.getElementById('head-figure').layout.xaxis.ticktext.length === 5")
    rows = page.evaluate("() => document.getElementById('head-figure').data.at(-2).z")
    assert all(abs(sum(row) - 1) < 1e-6 for row in rows)


def test_hovering_a_token_outlines_its_row_and_column(page):
    page.goto("/?kind=encoder")
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.hover('#source-tokens .token[data-index="3"]')
    page.wait_for_function("() => document.getElementById('head-figure').layout.shapes.length === 2")
    shapes = page.evaluate("() => document.getElementById('head-figure').layout.shapes.map((s) => [s.x0, s.x1, s.y0, s.y1])")
    assert [2.5, 3.5] in [s[:2] for s in shapes] and [2.5, 3.5] in [s[2:] for s in shapes]
    page.mouse.move(5, 5)
    page.wait_for_function("() => document.getElementById('head-figure').layout.shapes.length === 0")
    page.locator("#head-figure .xtick text").nth(1).hover()
    page.wait_for_function("() => document.getElementById('head-figure').layout.shapes.length === 2")
    assert page.locator('#source-tokens .token.active[data-index="1"]').count() == 1


def test_decoding_steps_slider_walks_through_the_produced_tokens(page):
    page.goto("/?view=steps")
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.wait_for_function("() => document.querySelector('#step-summary').textContent.includes('これ (kore)')")
    page.click("#step-forward")
    page.click("#step-forward")
    page.wait_for_function("() => document.querySelector('#step-summary').textContent.includes('例 (rei)')")
    assert page.locator(".step-token.current").inner_text() == "例 (rei)"
    assert "step=2" in page.url


@pytest.mark.parametrize("hostile", XSS_INPUTS)
def test_markup_in_input_shows_as_text_and_runs_nothing(page, hostile):
    page.goto("/")
    submit(page, hostile, hostile)
    assert page.watch.dialogs == []
    assert page.locator("img[src='x'], #result script").count() == 0
    chips = page.locator("#source-tokens .token").all_inner_texts() + page.locator("#target-tokens .token").all_inner_texts()
    assert "<" in chips and ">" in chips
    for view in ["grid", "panels", "stats", "steps", "head"]:
        page.click(f"#tab-{view}")
        page.wait_for_timeout(100)
    labels = " ".join(axis_labels(page, "x") + axis_labels(page, "y"))
    assert "<" in labels and ">" in labels
    assert page.evaluate("() => document.querySelectorAll('#head-figure img, #head-figure script').length") == 0
    assert page.watch.dialogs == [] and page.watch.errors == []


def test_an_over_long_input_shows_the_apis_message_and_keeps_the_input(page):
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#model').options.length > 0")
    long_source = "word " * 300
    page.fill("#source", long_source)
    page.press("#source", "Enter")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "300 tokens" in error.inner_text()
    assert page.input_value("#source") == long_source
    page.fill("#source", "   ")
    page.press("#source", "Enter")
    page.wait_for_function("() => document.querySelector('#error').textContent.includes('Type a sentence')")


def test_a_shared_url_restores_the_view(page, browser, base_url):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.check('input[name="kind"][value="decoder"]', force=True)
    page.select_option("#layer", "1")
    page.select_option("#head", "2")
    page.check("#show-special")
    page.click("#tab-panels")
    shared = page.url
    assert parse_qs(urlparse(shared).query)["view"] == ["panels"]

    other = open_page(browser, base_url, width=1200, height=900)
    other.goto(shared)
    wait_for_figure(other)
    assert other.input_value("#source") == "This is an example."
    assert other.input_value("#target") == CLASSIC_TARGET
    assert other.is_checked('input[name="kind"][value="decoder"]')
    assert other.input_value("#layer") == "1" and other.input_value("#head") == "2"
    assert other.is_checked("#show-special")
    assert other.locator("#view-panels").is_visible() and other.get_attribute("#tab-panels", "aria-selected") == "true"
    other.wait_for_selector("#panels-figure .heatmaplayer")
    other.close()


@pytest.mark.parametrize("view", ["head", "grid", "panels", "stats", "steps"])
def test_png_export_downloads_an_image_of_the_current_figure(page, view, tmp_path):
    page.goto(f"/?view={view}")
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.wait_for_timeout(200)
    with page.expect_download() as download:
        page.click('[data-export="png"]')
    path = Path(tmp_path / "figure.png")
    download.value.save_as(path)
    assert download.value.suggested_filename.endswith(".png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_svg_json_and_csv_exports(page, tmp_path):
    page.goto("/?renorm=0&layer=0&head=0")  # the weights as the API sent them
    with page.expect_response("**/api/v1/attention") as answer:
        submit(page, "This is an example.", CLASSIC_TARGET)
    files = {}
    for fmt in ["svg", "json", "csv"]:
        with page.expect_download() as download:
            page.click(f'[data-export="{fmt}"]')
        files[fmt] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[fmt])
    assert files["svg"].read_text().lstrip().startswith("<svg")
    assert json.loads(files["json"].read_text()) == as_lists(answer.value.json())  # the page unpacked it
    lines = files["csv"].read_text(encoding="utf-8").splitlines()
    assert lines[0] == "query \\ key,this,is,an,example,."
    assert [line.split(",")[0] for line in lines[1:]] == ["これ", "は", "例", "で", "す", "。"]
    cross = as_lists(answer.value.json())["attention"]["cross"]["weights"][0][0]
    assert float(lines[3].split(",")[4]) == pytest.approx(cross[2][3], abs=1e-6)


def test_every_view_works_under_a_strict_content_security_policy(page):
    violations = []
    page.expose_function("reportViolation", lambda text: violations.append(text))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', "
        "(e) => window.reportViolation(`${e.violatedDirective} ${e.sourceFile}:${e.lineNumber}`))"
    )

    def with_csp(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route(lambda url: urlparse(url).path == "/", with_csp)
    page.goto("/?kind=decoder")
    submit(page, XSS_INPUTS[0], CLASSIC_TARGET)
    for view in ["grid", "panels", "stats", "steps", "lines", "head"]:
        page.click(f"#tab-{view}")
        page.wait_for_timeout(150)
    page.hover('#target-tokens .token[data-index="2"]')
    with page.expect_download():
        page.click('[data-export="png"]')
    assert violations == []
    assert page.watch.errors == [] and page.watch.dialogs == []


def test_exported_heatmaps_keep_their_cells_crisp(page):
    """A row of the exported PNG crossing the classic cross-attention map holds one colour per cell, not a blur."""
    page.goto("/?kind=cross&special=1")
    submit(page, "This is an example.", CLASSIC_TARGET)
    assert page.evaluate("getComputedStyle(document.querySelector('#head-figure .hm image')).imageRendering") == "pixelated"
    colours = page.evaluate(
        """async () => {
            const { figureImage } = await import('/static/js/exporting.js');
            const figure = document.getElementById('head-figure');
            const bitmap = await createImageBitmap(await figureImage([figure], 'png'));
            const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
            const context = canvas.getContext('2d');
            context.drawImage(bitmap, 0, 0);
            const { xaxis, yaxis } = figure._fullLayout;
            const y = Math.round(2 * (yaxis._offset + yaxis._length / figure.data[0].z.length / 2));
            const row = context.getImageData(2 * xaxis._offset + 4, y, 2 * xaxis._length - 8, 1).data;
            const seen = new Set();
            for (let k = 0; k < row.length; k += 4) seen.add(row.slice(k, k + 3).join(','));
            return seen.size;
        }"""
    )
    columns = len(page.evaluate("document.getElementById('head-figure').data[0].z[0]"))
    assert columns == 6  # this is an example . </s>
    assert colours <= columns


def test_controls_come_from_the_models_description_and_survive_a_reload(page):
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#model').options.length > 1")
    assert page.locator("#controls select").count() == 0  # tiny declares no controls
    page.select_option("#model", POLITE_MODEL)
    control = page.locator("#control-politeness")
    assert control.count() == 1 and page.inner_text('label[for="control-politeness"]') == "Politeness"
    values = page.eval_on_selector_all("#control-politeness option", "(options) => options.map((o) => o.value)")
    assert values == ["auto", "plain", "polite"]
    page.select_option("#control-politeness", "polite")
    with page.expect_request("**/api/v1/attention") as asked:
        submit(page, "This is an example.")
    assert json.loads(asked.value.post_data)["controls"] == {"politeness": "polite"}
    badge = page.locator(".control-badge")
    assert badge.is_visible() and badge.inner_text().startswith("Politeness: ")
    assert "asked; predicted" in badge.inner_text()
    assert parse_qs(urlparse(page.url).query)["c.politeness"] == ["polite"]
    page.select_option("#control-politeness", "auto")
    with page.expect_request("**/api/v1/attention") as asked:
        submit(page, "This is an example.", CLASSIC_TARGET)
    assert "controls" not in json.loads(asked.value.post_data)  # the default is the model's to apply
    assert "the target's; predicted " in badge.inner_text()
    page.select_option("#control-politeness", "polite")
    submit(page, "This is an example.")
    page.reload()
    wait_for_figure(page)
    assert page.input_value("#control-politeness") == "polite"
    page.select_option("#model", "tiny")
    assert page.locator("#controls select").count() == 0
    with page.expect_request("**/api/v1/attention") as asked:
        submit(page, "This is an example.")
    assert "controls" not in json.loads(asked.value.post_data)


def test_the_page_draws_the_same_from_packed_and_listed_maps(browser, base_url):
    """The page asks for packed maps; answered with nested lists instead, it draws exactly the same matrices."""
    weights = "() => JSON.stringify(document.getElementById('head-figure').data.map((t) => t.z))"
    asked, drawn = [], {}
    for encoding in ("base64", "lists"):
        page = open_page(browser, base_url)

        def answered_as(encoding):
            def rewrite(route):
                body = json.loads(route.request.post_data)
                asked.append(body.get("encoding"))
                route.continue_(post_data=json.dumps({**body, "encoding": encoding}))

            return rewrite

        page.route("**/api/v1/attention", answered_as(encoding))
        page.goto("/?layer=0&head=0")
        submit(page, "the cat and the dog .")
        drawn[encoding] = [page.evaluate(weights)]
        for control, value in [("kind", "encoder"), ("#head", "3"), ("kind", "decoder"), ("#layer", "1"), ("#head", "mean")]:
            before = page.evaluate(weights)
            if control == "kind":
                page.check(f'input[name="kind"][value="{value}"]', force=True)
            else:
                page.select_option(control, value)
            page.wait_for_function(f"(before) => ({weights})() !== before", arg=before)
            drawn[encoding].append(page.evaluate(weights))
        assert page.watch.errors == []
        page.close()
    assert asked == ["base64", "base64"]
    assert drawn["base64"] == drawn["lists"]


def test_the_page_unpacks_every_dtype_to_the_numbers_of_the_lists(page):
    """uint16 (weights to 4 decimals), uint32 (to 8, or norms above 6.5535) and float64 (norms too large for uint32)."""
    page.goto("/")
    weights = torch.tensor([[[[0.0, 0.25, 0.75], [0.33333, 0.66667, 1.0]]]])  # (1, 1, 2, 3)
    norms = torch.tensor([[[[0.0, 1.5, 42.94967296], [123456.12345678, 7.0, 1e-08]]]])
    unpack = "async (encoded) => (await import('/static/js/wire.js')).unpackWeights(encoded)"
    seen = set()
    for values, precision in [(weights, 4), (weights, 8), (norms, 2), (norms, 8)]:
        encoded = packed(values, precision).model_dump()
        seen.add(encoded["dtype"])
        assert page.evaluate(unpack, encoded) == _rounded(values, precision).tolist()
    assert seen == {"uint16", "uint32", "float64"}
