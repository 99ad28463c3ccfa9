"""Issue 18, what a new user trips over in the first minutes: one test per numbered item, in real Chromium."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import (
    CLASSIC_TARGET,
    DEEP_MODEL,
    HF_MODEL,
    POLITE_MODEL,
    as_lists,
    download,
    head_title,
    open_page,
    serious_violations,
    submit,
    wait_for_figure,
)

VIEWS = ["head", "grid", "panels", "stats", "steps", "models", "explain", "lines"]
FIGURES = {
    "head": "head-figure",
    "grid": "grid",
    "panels": "panels-figure",
    "stats": "stats-figure",
    "steps": "steps-figure",
    "models": "models-figure",
    "explain": "explain-figure",
    "lines": "lines-figure",
}
NINE_WORDS = "this is an example . i like tea ! the cat"  # 11 source tokens, every one in the tiny vocabulary


def figure_box(page, figure="head-figure"):
    """The plot area of a Plotly figure (its drag layer), in page pixels."""
    return page.locator(f"#{figure} .nsewdrag").first.bounding_box()


def open_view(page, view):
    page.click(f"#tab-{view}")
    page.wait_for_function("(v) => !document.getElementById(`view-${v}`).hidden", arg=view)
    if view == "models":  # it asks the other model first
        page.wait_for_function("() => !document.getElementById('models-caption').textContent.startsWith('Asking')")
    if view == "explain":  # it asks the model for the head's numbers first
        page.wait_for_function("() => !document.getElementById('explain-status').textContent.startsWith('Asking')")
    page.wait_for_timeout(150)


# ---- 2: a target placeholder the model accepts as written ----------------------------------


def test_the_target_placeholder_is_read_as_vocabulary_words_and_unknown_target_words_are_listed(page):
    page.goto("/")
    placeholder = page.get_attribute("#target", "placeholder")
    with page.expect_response("**/api/v1/attention") as answer:
        submit(page, "This is an example.", placeholder)
    assert not any(t["unknown"] for t in answer.value.json()["target_tokens"])
    assert page.locator("#unknown-note").is_hidden()
    submit(page, "This is an example.", "これ は 象 です 。")
    note = page.locator("#unknown-note")
    assert note.is_visible() and "target 象" in note.inner_text()


# ---- 4: keyboard -----------------------------------------------------------------------------


def test_arrows_on_the_tab_list_move_between_tabs_and_leave_the_head_alone(page):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    title = head_title(page)
    page.focus("#tab-head")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-grid"
    assert page.get_attribute("#tab-grid", "aria-selected") == "true" and page.locator("#view-grid").is_visible()
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.id") == "tab-lines" and page.locator("#view-lines").is_visible()
    page.keyboard.press("ArrowRight")  # wraps round
    assert page.evaluate("document.activeElement.id") == "tab-head"
    assert head_title(page) == title
    assert page.get_attribute("#tab-grid", "tabindex") == "-1" and page.get_attribute("#tab-head", "tabindex") == "0"


def test_skip_link_statistics_and_overview_cells_work_from_the_keyboard(page):
    page.goto(f"/?kind=encoder&s=This+is+an+example.&t={CLASSIC_TARGET}")
    wait_for_figure(page)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "result"

    open_view(page, "stats")
    page.focus("#stats-figure")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.getElementById('stats-figure').layout.shapes[0].x0 === 0.5")
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.getElementById('view-head').hidden")
    assert head_title(page).endswith("layer 1, head 1")

    open_view(page, "grid")
    page.focus('#grid button.thumb[data-layer="0"][data-head="0"]')
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("[document.activeElement.dataset.layer, document.activeElement.dataset.head]")
    assert focused == ["1", "1"]
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.getElementById('view-head').hidden")
    assert head_title(page).endswith("layer 1, head 1")


# ---- 5: phone --------------------------------------------------------------------------------


def test_every_view_is_usable_on_a_phone(browser, base_url):
    page = open_page(browser, base_url, width=390, height=844)
    page.goto("/")
    submit(page, NINE_WORDS, CLASSIC_TARGET)
    for view in VIEWS:
        open_view(page, view)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{view} overflows the screen"
    open_view(page, "head")
    assert figure_box(page)["width"] >= 0.55 * 390
    labels = page.evaluate(
        "() => [...document.querySelectorAll('#head-figure .xtick text')].map((t) => t.getBoundingClientRect().toJSON())"
    )
    for left, right in zip(labels, labels[1:], strict=False):
        assert left["right"] <= right["left"] + 1 or left["bottom"] <= right["top"] + 1 or abs(left["x"] - right["x"]) >= 12
    open_view(page, "panels")
    domains = page.evaluate(
        "() => ['xaxis', 'xaxis2', 'xaxis3'].map((axis) => document.getElementById('panels-figure').layout[axis].domain)"
    )
    assert domains[0][0] == domains[1][0] == domains[2][0] == 0  # one above the other, each from the left edge
    open_view(page, "stats")
    titles = page.evaluate(
        "() => [...document.querySelectorAll('#stats-figure .annotation')].map((a) => a.getBoundingClientRect().toJSON())"
    )
    assert len(titles) == 2 and (titles[0]["bottom"] <= titles[1]["top"] or titles[1]["bottom"] <= titles[0]["top"])
    page.close()


# ---- 6: laptop -------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1920, 1080)])
def test_after_enter_the_head_view_is_whole_in_view_and_takes_the_width(browser, base_url, width, height):
    page = open_page(browser, base_url, width=width, height=height)
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.wait_for_timeout(100)
    box = figure_box(page)
    assert box["y"] >= 0 and box["y"] + box["height"] <= height, box
    assert page.locator(".toolbar").bounding_box()["height"] < 56  # one line
    assert page.locator("#translation").bounding_box()["y"] >= 0  # the translation still in view above
    assert box["width"] >= 0.4 * page.locator("#head-figure").bounding_box()["width"]
    page.close()


# ---- 7: controls that do nothing -------------------------------------------------------------


def test_controls_that_do_not_apply_are_disabled_and_say_why(page):
    page.goto("/?kind=encoder&head=rollout")
    submit(page, "This is an example.", CLASSIC_TARGET)
    assert page.locator("#toolbar-note").is_hidden()
    open_view(page, "panels")
    assert page.is_disabled('input[name="kind"][value="cross"]')
    assert "attention picker does not apply" in page.inner_text("#toolbar-note")
    open_view(page, "steps")
    assert page.is_disabled('input[name="kind"][value="encoder"]')
    assert page.is_checked('input[name="kind"][value="cross"]')
    heads = page.eval_on_selector_all("#head option", "(options) => options.map((o) => o.value)")
    assert "rollout" not in heads and page.input_value("#head") == "mean"
    assert "cross-attention" in page.inner_text("#toolbar-note")
    open_view(page, "head")
    page.check("#show-special")
    assert page.is_disabled("#renormalise") and "renormalised only when" in page.inner_text("#toolbar-note")


# ---- 8: exports ------------------------------------------------------------------------------


def test_every_export_is_of_the_figure_on_screen_and_named_for_it(page, tmp_path):
    page.goto("/?kind=cross&head=mean&layer=1")
    submit(page, "This is an example.", CLASSIC_TARGET)
    assert download(page, "csv", tmp_path).name == "attnscope-head-cross-L1-mean.csv"

    open_view(page, "grid")
    grid_csv = download(page, "csv", tmp_path)
    assert grid_csv.name == "attnscope-overview-cross.csv"
    lines = grid_csv.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "kind,layer,head,query position,query,key position,key,weight"
    assert len(lines) - 1 == 2 * (4 + 2) * 6 * 5  # layers × (heads, mean, max) × produced × source tokens shown
    png = download(page, "png", tmp_path)
    assert png.name == "attnscope-overview-cross.png" and png.read_bytes()[:4] == b"\x89PNG"
    svg = download(page, "svg", tmp_path).read_text()
    assert "Cross-attention: every layer and head" in svg and "its largest weight" in svg  # titled, with a colour bar

    open_view(page, "stats")
    stats_csv = download(page, "csv", tmp_path)
    assert stats_csv.name == "attnscope-statistics-cross.csv"
    assert stats_csv.read_text().splitlines()[0] == "layer,head,entropy (bits),distance (tokens)"

    open_view(page, "steps")
    steps_csv = download(page, "csv", tmp_path)
    assert steps_csv.name == "attnscope-steps-cross-L1-mean-step1.csv"
    assert steps_csv.read_text(encoding="utf-8").splitlines()[:2][1].startswith("1,これ,this,")

    open_view(page, "panels")
    assert download(page, "png", tmp_path).name == "attnscope-panels-L1-mean.png"
    assert page.evaluate("document.getElementById('panels-figure').layout.title.text").startswith("Every kind of attention")


# ---- 9: decoder defaults ---------------------------------------------------------------------


def test_hidden_special_tokens_renormalise_rows_and_the_mask_legend_follows_the_scale(page):
    page.goto("/?kind=decoder")
    submit(page, "This is an example.", CLASSIC_TARGET)
    rows = page.evaluate("() => document.getElementById('head-figure').data.at(-2).z")
    sums = [sum(w for w in row if w is not None) for row in rows]
    assert all(abs(total - 1) < 1e-6 for total in sums[1:])
    legend = page.inner_text("#legend")
    assert "renormalised" in legend and "only look at <s>" in legend
    for scale in ["Viridis", "Greys"]:
        page.select_option("#scale", scale)
        page.wait_for_timeout(100)
        mask = page.evaluate("() => document.getElementById('head-figure').data[0].colorscale[0][1]")
        swatch = page.evaluate("getComputedStyle(document.getElementById('mask-swatch')).backgroundColor")
        red, green, blue = (int(mask[k : k + 2], 16) for k in (1, 3, 5))
        assert swatch == f"rgb({red}, {green}, {blue})"


# ---- 10: errors ------------------------------------------------------------------------------


def test_invalid_fields_are_refused_in_the_page_and_a_failed_request_marks_the_old_result(page):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    requests = []
    page.on("request", lambda r: "/api/v1/attention" in r.url and requests.append(r))
    for beam in ["0", "9", "2.5"]:
        page.fill("#beam", beam)
        page.press("#source", "Enter")
        page.wait_for_function("() => document.getElementById('error').textContent.startsWith('Beam size must be')")
        assert page.get_attribute("#beam", "aria-invalid") == "true"
    assert requests == []
    assert page.locator("#stale-note").is_visible() and page.locator("#result.stale").count() == 1
    assert serious_violations(page) == []
    page.fill("#beam", "1")
    page.fill("#source", "word " * 300)
    page.press("#source", "Enter")
    page.wait_for_function("() => document.getElementById('error').textContent.includes('300 tokens')")
    assert page.locator("#stale-note").is_visible()
    page.fill("#source", "This is an example.")
    page.press("#source", "Enter")
    wait_for_figure(page)
    page.wait_for_function("() => document.getElementById('stale-note').hidden")
    assert page.locator("#result.stale").count() == 0 and page.locator("#error").is_hidden()


def test_the_apis_field_names_become_the_forms_labels(page):
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#model').options.length > 0")
    message = page.evaluate(
        "async () => (await import('/static/js/form.js')).labelled('beam_size 9 is over the limit: use 1 to 8')"
    )
    assert message == "Beam size 9 is over the limit: use 1 to 8"


# ---- 11: contrast and names ------------------------------------------------------------------


def test_axe_finds_no_serious_violation_in_any_view_and_every_figure_has_a_name_and_a_table(page):
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#model').options.length > 0")
    assert serious_violations(page) == []
    submit(page, "This is an example.", CLASSIC_TARGET)
    for view in VIEWS:
        open_view(page, view)
        page.click("#figure-table summary")
        assert serious_violations(page) == [], view
        figure = FIGURES[view]
        assert page.get_attribute(f"#{figure}", "aria-label").endswith("The table after the figure lists its values.")
        assert page.locator("#figure-table tbody tr").count() > 0
        page.click("#figure-table summary")


# ---- 12: compare two results -----------------------------------------------------------------


def test_a_pinned_result_is_compared_with_the_next_in_every_view_with_a_difference_and_a_link(page, browser, base_url, tmp_path):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.click("#pin")
    page.select_option("#model", POLITE_MODEL)
    submit(page, "This is an example.", CLASSIC_TARGET)
    page.wait_for_function("() => !document.getElementById('compare').hidden")
    assert "Pinned: “This is an example. → これ は 例 で す 。 (tiny, forced)”" in page.inner_text("#compare-note")
    pinned = page.evaluate("() => document.getElementById('compare-pinned').data.at(-2).z")
    current = page.evaluate("() => document.getElementById('head-figure').data.at(-2).z")
    difference = page.evaluate("() => document.getElementById('compare-difference').data.at(-2).z")
    for i, row in enumerate(difference):
        for j, d in enumerate(row):
            assert d == pytest.approx(current[i][j] - pinned[i][j], abs=1e-9)
    assert serious_violations(page) == []
    head_csv = download(page, "csv", tmp_path).read_text(encoding="utf-8")
    assert head_csv.count("\ndifference,") == len(difference) * len(difference[0])
    assert "This result minus the pinned one" in download(page, "svg", tmp_path).read_text()  # the export stacks both

    open_view(page, "grid")  # the difference of each map, under the overview, and in its exports
    assert page.locator("#grid-compare button.thumb").count() == page.locator("#grid button.thumb").count() == 2 * 6
    assert page.get_attribute("#grid-compare button.thumb", "aria-label").startswith("layer 0, head 0, difference")
    assert "This result minus the pinned one · Cross-attention" in download(page, "svg", tmp_path).read_text()

    open_view(page, "panels")  # a second figure of the three differences
    panels = page.evaluate("() => document.getElementById('panels-compare').layout.title.text")
    assert panels.startswith("This result minus the pinned one")
    lines = download(page, "csv", tmp_path).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("result,kind,layer,head") and any(line.startswith("difference,cross,0,mean") for line in lines)

    open_view(page, "stats")  # each head a hollow (pinned) and a filled (current) point
    moves = page.evaluate("() => document.getElementById('stats-compare').data.map((t) => [t.marker?.symbol, t.x])")
    entropy = page.evaluate("() => document.getElementById('stats-figure').data[0].z.flat()")
    assert moves[1][0] == "circle-open" and moves[2][0] == "circle" and moves[2][1] == pytest.approx(entropy)
    assert moves[1][1] != pytest.approx(entropy)

    open_view(page, "steps")  # the pinned row of the same step, as hollow bars
    assert page.evaluate("() => document.getElementById('steps-figure').data[1].y") == pytest.approx(pinned[0])
    assert "Hollow bars" in page.inner_text("#steps-compare-note")
    open_view(page, "head")
    pin = parse_qs(urlparse(page.url).query)["pin"][0]
    assert parse_qs(pin)["s"] == ["This is an example."] and parse_qs(pin)["model"] == ["tiny"]

    other = open_page(browser, base_url)
    other.goto(page.url)
    wait_for_figure(other)
    other.wait_for_function("() => document.getElementById('compare-difference').data?.length > 0")
    assert json.dumps(other.evaluate("() => document.getElementById('compare-pinned').data.at(-2).z")) == json.dumps(pinned)
    other.close()
    open_view(page, "steps")  # other tokens: no row to set beside, and the page says why
    submit(page, "I like tea.")
    page.wait_for_function("() => document.getElementById('steps-compare-note').textContent.includes('do not line up')")
    assert page.evaluate("() => document.getElementById('steps-figure').data.length") == 1
    open_view(page, "head")
    assert "No difference map: both token lists differ" in page.inner_text("#compare-note")
    page.click("#pin")
    assert page.locator("#compare").is_hidden() and "pin" not in parse_qs(urlparse(page.url).query)


# ---- 13: /docs -------------------------------------------------------------------------------


def test_the_docs_show_each_error_with_its_own_example(page):
    page.goto("/docs")
    operation = page.locator("#operations-attention-attention_api_v1_attention_post")
    operation.locator(".opblock-summary").click()
    responses = operation.locator(".responses-table")
    responses.wait_for()
    text = responses.inner_text()
    assert "unknown model" in text and "over the limit" in text and "the server is busy" in text


# ---- 1: the first view shows the model's alignment -------------------------------------------


def test_the_first_view_is_the_cross_layer_the_card_measured_to_align_best_else_the_last(page):
    page.goto("/")
    submit(page, "This is an example.", CLASSIC_TARGET)  # tiny: no figure in its card
    assert head_title(page) == "Cross-attention · layer 1, mean of heads"
    assert "the model card has no alignment figure" in page.inner_text("#view-note")
    page.select_option("#model", POLITE_MODEL)  # its card measured layer 0 best
    submit(page, "This is an example.", CLASSIC_TARGET)
    assert head_title(page) == "Cross-attention · layer 0, mean of heads"
    note = "aligns words best (lowest AER of the mean of heads against the gold alignments of 100 test sentences (0.500)"
    assert note in page.inner_text("#view-note")
    page.select_option("#head", "2")
    assert page.locator("#view-note").is_hidden()


# ---- 3: warnings when the model is out of its depth ------------------------------------------


def test_warnings_from_the_api_are_listed_on_the_page(page):
    page.goto("/")
    with page.expect_response("**/api/v1/attention") as answer:
        submit(page, "😀 😀 😀")
    codes = [w["code"] for w in answer.value.json()["warnings"]]
    assert "all_source_unknown" in codes
    items = page.locator("#warnings li")
    assert items.count() == len(codes) and items.first.inner_text() == answer.value.json()["warnings"][0]["message"]
    submit(page, "This is an example.", "this is a pen")
    assert page.locator('#warnings li[data-code="target_mostly_unknown"]').is_visible()
    assert serious_violations(page) == []
    submit(page, "This is an example.", CLASSIC_TARGET)
    assert page.locator("#warnings").is_hidden()


# ---- issue 15: the page knows models only through their description --------------------------


def test_languages_examples_selectors_and_units_follow_the_chosen_model(page):
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#model').options.length > 2")
    assert page.inner_text("#source-label") == "English sentence"
    assert page.get_attribute("#source", "lang") == "en" and page.get_attribute("#target", "lang") == "ja"
    assert page.get_attribute("#source", "placeholder") == "This is an example."
    assert page.get_attribute("#target", "placeholder") == CLASSIC_TARGET
    assert page.locator("#examples button.example").all_inner_texts() == ["This is an example.", "I like tea."]
    assert page.inner_text("#tagline") == "What tiny attends to when it translates English into Japanese"
    assert page.is_disabled("#granularity") and "nothing to merge" in page.inner_text("#granularity-why")
    page.click("#examples button.example >> nth=1")
    wait_for_figure(page)
    assert page.get_attribute("#translation", "lang") == "ja"

    page.select_option("#model", DEEP_MODEL)  # 3 encoder layers, 1 decoder layer, 2 heads; no examples in its card
    assert "encoder 3×2, decoder 1×2, cross 1×2" in page.inner_text("#model-info")
    assert page.locator("#examples").is_hidden() and page.get_attribute("#source", "placeholder") == ""
    submit(page, "This is an example.", CLASSIC_TARGET)
    assert head_title(page) == "Cross-attention · layer 0, mean of heads"  # its only cross layer
    options = lambda select: page.eval_on_selector_all(f"{select} option", "(o) => o.map((x) => x.value)")  # noqa: E731
    assert options("#layer") == ["0"] and options("#head") == ["0", "1", "mean", "max"]
    page.check('input[name="kind"][value="encoder"]', force=True)
    page.wait_for_function("() => document.getElementById('head-figure').layout.title.text.startsWith('Encoder')")
    assert options("#layer") == ["0", "1", "2"] and options("#head") == ["0", "1", "mean", "max", "rollout"]
    for view in VIEWS:  # every view draws for this model too
        open_view(page, view)
    assert page.watch.errors == []
    open_view(page, "head")  # how it's computed offers single heads only

    page.select_option("#model", "tiny")
    submit(page, "This is an example.", CLASSIC_TARGET)
    assert options("#layer") == ["0", "1"] and options("#head")[:6] == ["0", "1", "2", "3", "mean", "max"]


def test_switching_to_a_hugging_face_model_draws_every_view_with_its_words(page):
    page.goto("/")
    page.wait_for_selector(f'#model option[value="{HF_MODEL}"]', state="attached")
    page.select_option("#model", HF_MODEL)
    assert page.is_enabled("#granularity")  # a subword model: pieces can be merged into words
    with page.expect_response("**/api/v1/attention") as answer:
        submit(page, "This is an example.")
    kinds = as_lists(answer.value.json())["attention"]
    models = page.evaluate("() => JSON.parse(document.getElementById('models-data').textContent)")
    info = next(m for m in models if m["name"] == HF_MODEL)
    assert {kind: (len(m["weights"]), len(m["weights"][0])) for kind, m in kinds.items()} == {
        kind: (counts["layers"], counts["heads"]) for kind, counts in info["kinds"].items()
    }
    assert page.get_attribute("#source", "lang") == info["source_language"]["code"]
    assert info["explains"] and info["layer_norm"] == "post"  # a Marian: its heads are opened up step by step
    assert page.is_enabled("#tab-explain")
    for view in VIEWS:
        open_view(page, view)
        if view == "explain":  # its row from the model's own numbers, equal to the head view's
            assert "post-LN" in page.inner_text("#explain-steps")
            assert page.locator("#explain-scores td.differs").count() == 0
            assert page.locator("#explain-scores td.same").count() > 0
    with page.expect_request("**/api/v1/attention") as asked:
        page.select_option("#granularity", "word")  # a result on screen is fetched again in words
    wait_for_figure(page)
    assert json.loads(asked.value.post_data)["granularity"] == "word"
    assert parse_qs(urlparse(page.url).query)["units"] == ["word"]
    assert page.watch.errors == []


# ---- speed: a share link paints its first heatmap before Plotly has started ------------------

SKETCH = """async ([layer, head]) => {
    const { sketchFigure } = await import('/static/js/views/sketch.js');
    const { headFigure } = await import('/static/js/views/head.js');
    const { displayedMap } = await import('/static/js/selection.js');
    const response = await (await fetch('/api/v1/attention', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source: 'This is an example.', target: 'これ は 例 で す 。', model: 'tiny' }) })).json();
    const options = { showSpecial: false, renormalise: true, showReadings: true, scale: 'Viridis' };
    const figure = document.getElementById('head-figure');
    const view = displayedMap(response, options, 'cross', layer, head);
    const sketch = sketchFigure(headFigure(view, options, figure.layout.width, figure.layout.height));
    sketch.id = 'sketch';
    document.getElementById('sketch')?.remove();
    figure.before(sketch);
}"""

# Mean absolute difference per channel (of 255) between two PNG screenshots of the same size.
PNG_DIFFERENCE = """async (pngs) => {
    const pixels = async (png) => {
        const image = new Image();
        image.src = `data:image/png;base64,${png}`;
        await image.decode();
        const canvas = Object.assign(document.createElement('canvas'), { width: image.width, height: image.height });
        canvas.getContext('2d').drawImage(image, 0, 0);
        return canvas.getContext('2d').getImageData(0, 0, image.width, image.height).data;
    };
    const [a, b] = await Promise.all(pngs.map(pixels));
    if (a.length !== b.length) return 255;
    let total = 0;
    for (let k = 0; k < a.length; k++) total += Math.abs(a[k] - b[k]);
    return total / a.length;
}"""


def test_a_share_link_paints_the_head_view_on_a_canvas_like_plotlys_before_plotly_starts(page):
    page.goto("/?s=This%20is%20an%20example.&t=%E3%81%93%E3%82%8C%20%E3%81%AF%20%E4%BE%8B%20%E3%81%A7%20%E3%81%99%20%E3%80%82")
    page.wait_for_function("() => document.querySelector('#head-figure .main-svg')")
    marks = page.evaluate(
        "() => ['head-preview-painted', 'head-view'].map((m) => performance.getEntriesByName(`attnscope:${m}`)[0]?.startTime)"
    )
    assert marks[0] is not None and marks[0] < marks[1]
    assert page.locator("#head-figure canvas.preview").count() == 0  # replaced by the interactive figure
    assert head_title(page) == "Cross-attention · layer 1, mean of heads"
    plotly = base64.b64encode(page.locator("#head-figure .main-svg").first.screenshot()).decode()
    differences = []
    for selection in ([1, "mean"], [0, 0]):
        page.evaluate(SKETCH, selection)
        sketch = base64.b64encode(page.locator("#sketch").screenshot()).decode()
        differences.append(page.evaluate(PNG_DIFFERENCE, [plotly, sketch]))
    same, other = differences
    assert same < 2 and other > 4 * same, differences  # labels, cells and colour bar where Plotly puts them
