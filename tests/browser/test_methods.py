"""The method selector: every method draws in every view it has, labelled, with no console errors.

One page walks through the methods (page loads are what these tests spend their time on)."""

from __future__ import annotations

from urllib.parse import urlparse

from tests.browser.conftest import CLASSIC_TARGET, HF_MODEL, STRICT_CSP, head_title, submit

TOKENS = 6  # これ は 例 で す 。 as shown (</s> hidden)
VIEWS = {
    "weights": ["head", "grid", "panels", "stats", "steps", "explain", "models", "lines"],
    "norms": ["head", "grid", "panels", "stats", "steps", "lines"],
    "alti": ["head", "grid", "panels", "steps", "contributions", "lines"],
    "saliency": ["contributions", "lines"],
}
WEIGHTS_TRACE = "document.getElementById('head-figure').data.filter((t) => t.xaxis === 'x').at(-1)"
ROW_SUMS = f"() => {WEIGHTS_TRACE}.z.map((r) => r.reduce((a, b) => a + (b ?? 0), 0))"


def method_options(page) -> list[str]:
    return page.eval_on_selector_all("#method option", "os => os.map((o) => o.value)")


def test_every_method_draws_in_each_of_its_views_without_errors(page):
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
    page.goto("/")
    assert method_options(page) == ["weights", "norms", "alti", "saliency"]  # the model's description, in its order
    assert page.is_hidden("#saliency-field")
    for method in VIEWS:
        page.select_option("#method", method)
        if method == "saliency":
            assert page.is_visible("#saliency-field")
            page.select_option("#saliency", "input_x_gradient")  # quick: one backward pass
        with page.expect_response("**/api/v1/attention") as answer:
            submit(page, "This is an example.", CLASSIC_TARGET)
        assert answer.value.json()["method"] == method
        tabs = page.eval_on_selector_all('[role="tab"]:not(:disabled)', "tabs => tabs.map((t) => t.dataset.view)")
        assert tabs == VIEWS[method], method
        for view in tabs:
            page.click(f"#tab-{view}")
            page.wait_for_function("(view) => !document.getElementById(`view-${view}`).hidden", arg=view)
            page.wait_for_timeout(100)
        if method != "saliency":
            page.click("#tab-head")
            page.wait_for_timeout(100)
            title = head_title(page)
            assert title.startswith("Cross-attention") and (method == "weights" or f" · {method} · layer" in title), title
            heads = page.eval_on_selector_all("#head option", "os => os.map((o) => o.value)")
            assert ("layer" in heads) == (method in ("norms", "alti")) and ("0" in heads) == (method != "alti")
        if method == "norms":  # not distributions: drawn raw, row-normalised on request
            assert page.is_visible("#normalise-rows-control") and page.is_disabled("#renormalise")
            assert "rows not normalised" in page.text_content("#legend-text")
            assert any(abs(total - 1) > 0.05 for total in page.evaluate(ROW_SUMS))
            page.check("#normalise-rows")
            page.wait_for_function(f"() => ({ROW_SUMS})().every((t) => Math.abs(t - 1) < 1e-6)")
            assert "rows=1" in page.url and "method=norms" in page.url
        if method in ("alti", "saliency"):
            page.click("#tab-contributions")
            page.wait_for_function("() => document.querySelectorAll('#source-shares .share-row').length > 0")
            assert page.locator("#source-shares .share-row").count() == TOKENS
            shares = page.eval_on_selector_all("#source-shares meter", "ms => ms.map((m) => m.value)")
            assert all(0 < share < 1 for share in shares)
            title = page.evaluate("() => document.getElementById('contributions-figure').layout.title.text")
            assert f"· {method} (" in title
            assert page.is_visible("#normalise-rows-control") == (method == "saliency")
    assert violations == []
    assert page.watch.errors == [] and page.watch.dialogs == []


def test_a_shared_link_restores_the_method_and_another_model_offers_its_own(page):
    page.goto(f"/?s=This+is+an+example.&t={CLASSIC_TARGET}&method=alti&view=contributions")
    page.wait_for_function("() => document.querySelectorAll('#source-shares .share-row').length > 0")
    assert page.input_value("#method") == "alti"
    assert page.get_attribute("#tab-contributions", "aria-selected") == "true"
    page.select_option("#model", HF_MODEL)
    assert method_options(page) == ["weights", "norms"]
    assert page.input_value("#method") == "weights"  # alti is not among them
    assert page.watch.errors == []
