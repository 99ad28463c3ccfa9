"""Learning how attention computes: the page's maths (static/js/learn) against a Python reference, the Learn page
(/learn) and the main page's "How it's computed" view, in real Chromium against the real app."""

from __future__ import annotations

import math

import pytest
import torch

from model.transformer import sinusoidal_table
from tests.browser.conftest import CLASSIC_TARGET, as_lists, serious_violations, submit

MODULES = """const A = await import('/static/js/learn/attention.js');
    const E = await import('/static/js/learn/example.js');
    const X = await import('/static/js/learn/explain.js');"""


def js(page, body: str, arg=None):
    """Run `body` in the page with the learning modules imported as A (maths), E (example), X (explanations)."""
    if "/learn" not in page.url:
        page.goto("/learn")
    return page.evaluate(f"async (arg) => {{ {MODULES} {body} }}", arg)


def tensor(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def same(js_values, reference: torch.Tensor, tolerance: float = 1e-12) -> bool:
    values = tensor(js_values)
    return values.shape == reference.shape and torch.allclose(values, reference, atol=tolerance, rtol=0)


def reference_attention(Q, K, V, allowed=None):
    scores = Q @ K.T
    scaled = scores / math.sqrt(Q.shape[1])
    masked = scaled if allowed is None else scaled.masked_fill(~allowed, float("-inf"))
    weights = masked.softmax(-1)
    return scores, scaled, weights, weights @ V


def reference_efficient(Q, K, V):
    rho_q, rho_k = Q.softmax(-1), K.softmax(0)
    return rho_q, rho_k, rho_k.T @ V, rho_q @ (rho_k.T @ V), rho_q @ rho_k.T


# ---- the maths against a Python reference (float64 torch) -----------------------------------


def test_the_worked_example_step_by_step(page):
    out = js(page, "const e = E.defaultExample(); return { e, s: A.selfAttention(e.X, e.WQ, e.WK, e.WV) };")
    e, s = out["e"], out["s"]
    X, WQ, WK, WV = (tensor(e[name]) for name in ("X", "WQ", "WK", "WV"))
    assert X.shape == (3, 3) and WQ.shape == (3, 4)  # three tokens of size 3, Q/K/V of size 4
    Q, K, V = X @ WQ, X @ WK, X @ WV
    scores, scaled, weights, output = reference_attention(Q, K, V)
    steps = {"Q": Q, "K": K, "V": V, "scores": scores, "scaled": scaled, "weights": weights, "output": output}
    for name, reference in steps.items():
        assert same(s[name], reference), name
    assert s["dK"] == 4


def test_three_score_functions_and_two_heads(page):
    out = js(
        page,
        """const e = E.defaultExample(); const s = A.selfAttention(e.X, e.WQ, e.WK, e.WV);
        return { e, Q: s.Q, K: s.K, V: s.V, dot: A.dotScores(s.Q, s.K), scaled: A.scaledScores(s.Q, s.K),
                 additive: A.additiveScores(s.Q, s.K, e.W1, e.W2, e.v), heads: A.multiHead(s.Q, s.K, s.V, 2, e.WO) };""",
    )
    e = out["e"]
    Q, K, V = tensor(out["Q"]), tensor(out["K"]), tensor(out["V"])
    W1, W2, v = tensor(e["W1"]), tensor(e["W2"]), tensor(e["v"])
    assert same(out["dot"], Q @ K.T) and same(out["scaled"], Q @ K.T / 2)
    additive = torch.tanh((Q @ W1.T)[:, None, :] + (K @ W2.T)[None, :, :]) @ v  # vᵀ tanh(W₁q + W₂k), (n, m)
    assert same(out["additive"], additive)
    concat = []
    for h, head in enumerate(out["heads"]["heads"]):
        columns = slice(2 * h, 2 * h + 2)
        _, _, weights, output = reference_attention(Q[:, columns], K[:, columns], V[:, columns])
        assert same(head["weights"], weights) and same(head["output"], output)
        concat.append(output)
    assert same(out["heads"]["concat"], torch.cat(concat, 1))
    assert same(out["heads"]["output"], torch.cat(concat, 1) @ tensor(e["WO"]))


def test_padding_and_causal_masks_and_what_they_do_to_the_softmax(page):
    out = js(
        page,
        """const padding = A.paddingMask(E.BATCH_LENGTHS); const causal = A.causalMask(8); const scores = E.maskPanelScores(8);
        const keys = A.keyMaskRows(padding[2], 8); const both = A.bothMasks(keys, causal);
        return { padding, causal, scores, padded: A.softmaxRows(A.maskScores(scores, keys)),
                 both: A.softmaxRows(A.maskScores(scores, both)) };""",
    )
    lengths = torch.tensor([5, 8, 3])
    padding = torch.arange(8)[None, :] < lengths[:, None]
    causal = torch.ones(8, 8, dtype=torch.bool).tril()
    assert out["padding"] == padding.tolist() and out["causal"] == causal.tolist()
    scores = tensor(out["scores"])
    padded = scores.masked_fill(~padding[2], float("-inf")).softmax(-1)
    both = scores.masked_fill(~(padding[2] & causal), float("-inf")).softmax(-1)
    assert same(out["padded"], padded) and same(out["both"], both)
    assert all(w == 0 for row in out["padded"] for w in row[3:])  # padding gets exactly 0


def test_efficient_attention_and_its_identity_on_the_example_and_on_larger_random_matrices(page):
    generator = torch.Generator().manual_seed(17)
    random = [torch.randn(64, d, generator=generator, dtype=torch.float64).tolist() for d in (16, 16, 8)]  # Q, K, V
    out = js(
        page,
        """const e = E.defaultExample(); const s = A.selfAttention(e.X, e.WQ, e.WK, e.WV);
        const [q, k, v] = arg;
        return [[s.Q, s.K, s.V, A.efficientAttention(s.Q, s.K, s.V)], [q, k, v, A.efficientAttention(q, k, v)]];""",
        random,
    )
    for Q, K, V, e in out:
        Q, K, V = tensor(Q), tensor(K), tensor(V)
        rho_q, rho_k, context, output, implied = reference_efficient(Q, K, V)
        assert same(e["rhoQ"], rho_q) and same(e["rhoK"], rho_k) and same(e["context"], context)
        assert same(e["output"], output) and same(e["implied"], implied)
        assert torch.allclose(tensor(e["implied"]).sum(-1), torch.ones(Q.shape[0], dtype=torch.float64))  # rows sum to 1
        # ρ_q(Q)(ρ_k(K)ᵀV) and (ρ_q(Q)ρ_k(K)ᵀ)V: the same product grouped two ways
        assert (tensor(e["output"]) - tensor(e["impliedOutput"])).abs().max() <= 1e-9


def test_operation_counts_from_8_to_4096(page):
    counts = js(page, "return A.doublings(8, 4096).map((n) => A.operationCounts(n, 64));")
    assert [c["n"] for c in counts] == [2**k for k in range(3, 13)]
    for c in counts:
        n = c["n"]
        assert (c["quadratic"], c["linear"]) == (2 * n * n * 64, 2 * n * 64 * 64)
        assert (c["quadratic"] > c["linear"]) == (n > 64)


def test_position_similarity_of_the_models_sinusoidal_table(page):
    table = sinusoidal_table(64, 32).double()
    similarity = js(page, "return A.positionSimilarity(arg);", table.tolist())
    assert same(similarity, table @ table.T, 1e-9)


def test_the_views_recomputation_of_a_real_head_matches_the_model_and_the_map(page):
    """On the tiny model's own q, K, V (POST /api/v1/explain): the steps recomputed in the page equal the model's
    numbers, the row equals the map of POST /api/v1/attention within 1e-5, and efficient attention's identity holds to
    1e-9."""
    page.goto("/learn")
    body = {"source": "This is an example.", "target": CLASSIC_TARGET}
    maps = page.request.post("/api/v1/attention", data={**body, "precision": 8}).json()["attention"]
    for kind, layer, head, query in [("encoder", 1, 2, 3), ("decoder", 0, 1, 4), ("cross", 1, 3, 2)]:
        e = page.request.post("/api/v1/explain", data={**body, "kind": kind, "layer": layer, "head": head, "query": query}).json()
        row = maps[kind]["weights"][layer][head][query]
        out = js(page, "return { steps: X.explanationSteps(arg[0], arg[1]), efficiency: X.headEfficiency(arg[0]) };", [e, row])
        steps, efficiency = out["steps"], out["efficiency"]
        q, keys = tensor(e["queries"][query]), tensor(e["keys"])
        reference = (keys @ q / math.sqrt(e["d_k"])).masked_fill(~torch.tensor(e["allowed"]), float("-inf")).softmax(-1)
        assert same(steps["weights"], reference)
        assert torch.allclose(tensor(steps["weights"]), tensor(row), atol=1e-5)  # from q and K sent with 6 decimals
        # the model's row (its traced pass, in PyTorch) against the map's (the forced pass in ONNX Runtime,
        # model.onnx_graphs): the engines agree within 1e-5, and the page's check allows the map's 4 decimals
        assert steps["differences"]["map"] <= 1e-5
        assert same(steps["headOutput"], reference @ tensor(e["values"]))
        Q, K, V = tensor(e["queries"]), tensor(e["keys"]), tensor(e["values"])
        assert same(efficiency["implied"], reference_efficient(Q, K, V)[4])
        assert efficiency["identity"] <= 1e-9
        allowed = torch.ones(len(Q), len(K), dtype=torch.bool).tril() if kind == "decoder" else None
        _, _, whole_map, _ = reference_attention(Q, K, V, allowed)
        assert same(efficiency["softmax"], whole_map)
        assert torch.allclose(whole_map, tensor(maps[kind]["weights"][layer][head]), atol=1e-5)


# ---- the Learn page ---------------------------------------------------------------------------

TABLES = """(container) => Object.fromEntries([...document.querySelectorAll(`#${container} table`)].map((table) => [
    table.caption.textContent,
    [...table.tBodies[0].rows].map((row) => [...row.cells].filter((c) => c.tagName === 'TD').map((c) => {
        const input = c.querySelector('input');
        const text = input ? input.value : c.textContent;
        return text === '−∞' ? null : Number(text.replace('−', '-'));
    })),
]))"""


def tables(page, container: str) -> dict[str, list[list[float | None]]]:
    return page.evaluate(TABLES, container)


def shown(values, reference: torch.Tensor, digits: int) -> bool:
    return same(values, reference.double(), 0.5 * 10**-digits + 1e-9)


def check_the_page_against_the_reference(page, X):
    e = js(page, "return E.defaultExample();")
    WQ, WK, WV, WO = (tensor(e[name]) for name in ("WQ", "WK", "WV", "WO"))
    Q, K, V = X @ WQ, X @ WK, X @ WV
    scores, scaled, weights, output = reference_attention(Q, K, V)
    worked = tables(page, "worked-outputs")
    assert shown(worked["Q (3 × 4)"], Q, 2) and shown(worked["K (3 × 4)"], K, 2) and shown(worked["V (3 × 4)"], V, 2)
    assert shown(worked["Q Kᵀ (3 × 3)"], scores, 2) and shown(worked["Q Kᵀ / √4"], scaled, 2)
    assert shown(worked["weights α (each row sums to 1)"], weights, 3) and shown(worked["Z (3 × 4)"], output, 2)
    scoring = tables(page, "scores-outputs")
    additive = torch.tanh((Q @ tensor(e["W1"]).T)[:, None, :] + (K @ tensor(e["W2"]).T)[None, :, :]) @ tensor(e["v"])
    assert shown(scoring["Dot product: weights"], (Q @ K.T).softmax(-1), 3)
    assert shown(scoring["Additive (Bahdanau): scores"], additive, 2)
    heads = tables(page, "heads-outputs")
    halves = [reference_attention(Q[:, c], K[:, c], V[:, c])[3] for c in (slice(0, 2), slice(2, 4))]
    assert shown(heads["[head 1 | head 2] W_O (3 × 4)"], torch.cat(halves, 1) @ WO, 2)
    efficient = tables(page, "efficient-outputs")
    assert shown(efficient["efficient attention's output"], reference_efficient(Q, K, V)[3], 2)
    assert shown(efficient["softmax attention's output"], output, 2)


def test_the_learn_page_draws_every_panel_and_an_edit_updates_every_later_step(page):
    page.goto("/learn")
    page.wait_for_selector("#efficient-outputs svg.log-plot")
    for container in ("worked-outputs", "scores-outputs", "heads-outputs", "mask-outputs", "efficient-outputs"):
        assert page.locator(f"#{container} table").count() >= 3, container
    X = tensor(js(page, "return E.defaultExample().X;"))
    check_the_page_against_the_reference(page, X)

    page.fill('input[aria-label="X: the three tokens\' embeddings (3 × 3), row the, column e1"]', "-1.5")
    X[0, 0] = -1.5
    check_the_page_against_the_reference(page, X)
    assert page.locator("#efficient-outputs svg.log-plot polyline").count() == 2
    page.click("#reset-example")
    check_the_page_against_the_reference(page, tensor(js(page, "return E.defaultExample().X;")))
    assert page.watch.errors == []


def test_the_masks_panel_follows_the_lengths_and_the_causal_mask(page):
    page.goto("/learn")
    page.wait_for_selector("#mask-outputs table")
    after = lambda: tables(page, "mask-outputs")["scores after the mask"]  # noqa: E731
    assert all(row[3:] == [None] * 5 for row in after())  # sentence 3: 3 tokens of 8
    page.fill("#mask-length-2", "6")
    page.wait_for_function("() => document.getElementById('mask-sentence').options[2].textContent.includes('6 tokens')")
    assert all(row[6:] == [None, None] and None not in row[:6] for row in after())
    page.check("#mask-causal")
    page.wait_for_function("() => document.querySelector('#mask-outputs').textContent.includes('With both masks')")
    assert [[value is None for value in row] for row in after()] == [[j > min(i, 5) for j in range(8)] for i in range(8)]
    weights = tables(page, "mask-outputs")["weights"]
    assert all(math.isclose(sum(w for w in row if w is not None), 1, abs_tol=0.03) for row in weights)
    page.select_option("#mask-sentence", "1")  # the longest sentence: only the causal mask is left
    page.wait_for_function("() => document.getElementById('mask-sentence').value === '1'")
    assert [[value is None for value in row] for row in after()] == [[j > i for j in range(8)] for i in range(8)]
    assert page.watch.errors == []


def test_the_learn_page_needs_nothing_but_the_app_and_axe_finds_no_serious_violation(page):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto("/learn")
    page.wait_for_selector("#efficient-outputs svg.log-plot")
    assert page.watch.foreign_requests == [] and page.watch.errors == []
    assert not any("/api/" in url or "plotly" in url for url in requests)  # no model and no figure library
    assert serious_violations(page) == []


# ---- the "How it's computed" view of the main page -----------------------------------------


def click_row(page, row: int) -> None:
    """Click the middle of row `row` (of the rows shown) of the head view."""
    where = page.evaluate(
        """(row) => { const f = document.getElementById('head-figure'); const { xaxis, yaxis } = f._fullLayout;
        const box = f.getBoundingClientRect();
        return { x: box.left + xaxis._offset + xaxis._length / 2, y: box.top + yaxis._offset + yaxis.l2p(row) }; }""",
        row,
    )
    page.mouse.click(where["x"], where["y"])


def explained(page) -> None:
    page.wait_for_function(
        "() => !document.getElementById('view-explain').hidden && !document.getElementById('explain-check').hidden"
        " && !document.getElementById('explain-status').textContent.startsWith('Asking')"
    )


@pytest.mark.parametrize("kind", ["cross", "decoder", "encoder"])
def test_clicking_a_row_of_the_head_view_explains_that_row_with_the_maps_numbers(page, kind):
    page.goto("/")
    with page.expect_response("**/api/v1/attention") as answer:
        submit(page, "This is an example.", CLASSIC_TARGET)
    response = as_lists(answer.value.json())
    if kind != "cross":
        page.check(f'input[name="kind"][value="{kind}"]', force=True)
        title = "(k) => document.getElementById('head-figure').layout.title.text.startsWith(k)"
        page.wait_for_function(title, arg=kind.capitalize())
    page.wait_for_timeout(200)
    with page.expect_response("**/api/v1/explain") as asked:
        click_row(page, 2)  # the third row shown: 例 / an (special tokens hidden, none before it)
    explained(page)
    request = asked.value.request.post_data_json
    assert (request["kind"], request["query"], request["head"], request["target"]) == (kind, 2, 0, CLASSIC_TARGET)
    assert page.input_value("#head") == "0" and page.input_value("#explain-query") == "2"  # from the mean: head 0
    query_axis = response["attention"][kind]["query_axis"]
    token = response[query_axis][2]["text"]
    assert f"is row “{token}” of the head view" in page.inner_text("#explain-check")
    assert "view=explain" in page.url and "q=2" in page.url

    # the table of the row: the model's softmax and the head view's row side by side, equal to the map's 4 decimals
    map_row = response["attention"][kind]["weights"][int(request["layer"])][0][2]
    numbers = tables(page, "explain-steps")[f"Row “{token}”: its scores and weights per key"]
    assert [line[5] for line in numbers] == pytest.approx(map_row, abs=1e-12)
    assert [line[4] for line in numbers] == pytest.approx(map_row, abs=5.1e-5)
    masked = [line[2] is None for line in numbers]
    assert masked == ([j > 2 for j in range(len(numbers))] if kind == "decoder" else [False] * len(numbers))

    # every panel draws: seven steps, positional encoding, efficient attention; strips painted, the plot drawn
    titles = page.locator("#explain-steps h3").all_inner_texts()
    assert len(titles) == 9 and titles[-2:] == ["Positional encoding", "Efficient attention on this head"]
    painted = page.evaluate(
        """() => [...document.querySelectorAll('#explain-steps canvas')].map((c) => {
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            return data.some((v, k) => k % 4 !== 3 && v !== 255);
        })"""
    )
    assert len(painted) >= 14 and all(painted)
    assert page.locator("#explain-steps svg.log-plot polyline").count() == 2
    assert page.evaluate("() => document.getElementById('explain-figure').data[1].y") == pytest.approx(map_row)
    assert page.watch.errors == []


def test_another_row_or_head_asks_again_and_the_table_follows(page):
    page.goto("/?s=This+is+an+example.&t=" + CLASSIC_TARGET.replace(" ", "+") + "&view=explain&head=1&q=1")
    explained(page)
    assert "head 1" in page.inner_text("#explain-status") and "“は”" in page.inner_text("#explain-status")
    with page.expect_response("**/api/v1/explain") as asked:
        page.select_option("#explain-query", "4")
    assert asked.value.request.post_data_json["query"] == 4
    page.wait_for_function("() => document.getElementById('explain-status').textContent.includes('“す”')")
    assert page.eval_on_selector_all("#head option", "(o) => o.map((x) => x.value)") == ["0", "1", "2", "3"]  # no aggregates
    with page.expect_response("**/api/v1/explain") as asked:
        page.select_option("#head", "3")
    assert asked.value.request.post_data_json["head"] == 3
    page.wait_for_function("() => document.getElementById('explain-status').textContent.includes('head 3')")
    assert serious_violations(page) == []
    assert page.watch.errors == []
