"""Issue 19 in real Chromium: the page with a model that has only cross-attention (the RNN with
additive attention), and the compare view setting its map beside the transformer's."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from app.settings import Settings
from tests.app.conftest import live_server
from tests.browser.conftest import (
    CLASSIC_TARGET,
    as_lists,
    axis_labels,
    download,
    head_title,
    open_page,
    serious_violations,
    submit,
)
from tests.conftest import write_model_dir

RNN_MODEL = "tiny_rnn"
SENTENCE = "This is an example."


@pytest.fixture(scope="module")
def rnn_base_url(tmp_path_factory) -> Iterator[str]:
    """A tiny transformer ("tiny", the default) and a tiny RNN with additive attention."""
    model_dir = tmp_path_factory.mktemp("rnn-models")
    write_model_dir(model_dir)
    write_model_dir(model_dir, RNN_MODEL, seed=3, arch="rnn")
    with live_server(Settings(model_dir=model_dir, device="cpu", cache_size=0, default_model="tiny")) as base:
        yield base


@pytest.fixture
def page(browser, rnn_base_url):
    page = open_page(browser, rnn_base_url)
    yield page
    page.close()


def open_tab(page, view):
    page.click(f"#tab-{view}")
    page.wait_for_function("(v) => !document.getElementById(`view-${v}`).hidden", arg=view)


def drawn(page, figure):
    return page.evaluate("(id) => (document.getElementById(id).data ?? []).length", figure)


def options(page, select):
    return page.eval_on_selector_all(f"{select} option", "(o) => o.map((x) => x.value)")


def test_a_model_with_only_cross_attention_draws_every_view_that_applies_and_says_why_the_others_do_not(page):
    page.goto("/")
    page.wait_for_selector(f'#model option[value="{RNN_MODEL}"]', state="attached")
    page.select_option("#model", RNN_MODEL)
    assert "cross 1×1" in page.inner_text("#model-info")
    submit(page, SENTENCE, CLASSIC_TARGET)

    # Head view: its one cross map; no encoder or decoder kind, no rollout, one layer, one head.
    assert head_title(page) == "Cross-attention · layer 0, mean of heads"
    assert axis_labels(page, "x") == ["this", "is", "an", "example", "."]
    assert page.is_disabled('input[name="kind"][value="encoder"]') and page.is_disabled('input[name="kind"][value="decoder"]')
    assert page.is_checked('input[name="kind"][value="cross"]') and page.is_enabled('input[name="kind"][value="cross"]')
    assert options(page, "#layer") == ["0"] and options(page, "#head") == ["0", "mean", "max"]
    note = page.inner_text("#toolbar-note")
    assert f"{RNN_MODEL} has no encoder self-attention or decoder masked self-attention" in note
    assert "so neither that attention nor the three panels are offered" in note

    # Three panels: disabled, with the reason on the tab; a shared link asking for them opens the head view.
    assert page.is_disabled("#tab-panels")
    assert "has no encoder self-attention or decoder masked self-attention" in page.get_attribute("#tab-panels", "title")
    assert page.is_enabled("#tab-models")
    # How it's computed: its additive attention declares no step-by-step explanation, and a row click offers none
    assert page.is_disabled("#tab-explain") and "explains: false" in page.get_attribute("#tab-explain", "title")
    assert "click a row" not in page.inner_text("#legend")

    open_tab(page, "grid")  # one head, plus the layer's mean and max
    assert page.locator("#grid button.thumb").count() == 3
    open_tab(page, "stats")
    assert drawn(page, "stats-figure") > 0
    page.click("#figure-table summary")
    expect(page.locator("#figure-table tbody tr")).to_have_count(1)  # layer 0, head 0
    page.click("#figure-table summary")
    open_tab(page, "steps")
    assert drawn(page, "steps-figure") > 0
    assert page.inner_text("#step-position").strip() != ""

    page.goto(f"/?model={RNN_MODEL}&s=This+is+an+example.&view=panels")
    page.wait_for_function("() => !document.getElementById('view-head').hidden && document.getElementById('head-figure').data")
    assert "view=panels" not in page.url
    assert page.watch.errors == []


def cross_map(response, layer, head):
    """The cross map as the page shows it by default: special tokens hidden (the argmax does not
    depend on renormalising); `head` an index or "mean"."""
    heads = response["attention"]["cross"]["weights"][layer]
    rows = [i for i, t in enumerate(response["target_tokens"]) if not t["special"]]
    cols = [j for j, t in enumerate(response["source_tokens"]) if not t["special"]]
    if head == "mean":
        full = [[sum(h[i][j] for h in heads) / len(heads) for j in range(len(heads[0][0]))] for i in range(len(heads[0]))]
    else:
        full = heads[head]
    return [[full[i][j] for j in cols] for i in rows]


def agreement(first, second):
    argmax = lambda row: max(range(len(row)), key=lambda j: (row[j], -j))  # noqa: E731  first on a tie
    same = [argmax(a) == argmax(b) for a, b in zip(first, second, strict=True)]
    return sum(same), len(same)


def caption_figure(page):
    match = re.search(r"Argmax agreement: (\d+) of (\d+) produced tokens", page.inner_text("#models-caption"))
    assert match, page.inner_text("#models-caption")
    return int(match[1]), int(match[2])


def test_the_compare_view_sets_the_rnn_beside_the_transformer_on_the_same_axes_with_their_agreement(page, tmp_path):
    page.goto("/?layer=0")
    with page.expect_response("**/api/v1/attention") as answer:
        submit(page, SENTENCE, CLASSIC_TARGET)  # (a random model's free translation may be all one token)
    first = as_lists(answer.value.json())
    assert options(page, "#other-model") == [RNN_MODEL]  # every other model with cross-attention
    with page.expect_response("**/api/v1/attention") as other_answer:
        open_tab(page, "models")
    body = json.loads(other_answer.value.request.post_data)
    produced = [t["text"] for t in first["target_tokens"] if not t["special"]]
    assert body["model"] == RNN_MODEL and body["kinds"] == ["cross"] and body["target"] == " ".join(produced)
    second = as_lists(other_answer.value.json())
    assert list(second["attention"]) == ["cross"]
    assert options(page, "#other-model") == [RNN_MODEL]
    page.wait_for_function("() => document.getElementById('models-caption').textContent.startsWith('Argmax agreement')")

    # Both maps, one figure, the same tokens on both axes.
    figure = "models-figure"
    layout = page.evaluate("(id) => document.getElementById(id).layout", figure)
    assert layout["xaxis"]["ticktext"] == layout["xaxis2"]["ticktext"]
    assert layout["xaxis"]["ticktext"] == ["this", "is", "an", "example", "."]
    assert layout["yaxis"]["ticktext"] == layout["yaxis2"]["ticktext"] == CLASSIC_TARGET.split()
    assert drawn(page, figure) >= 2
    annotations = [a["text"] for a in layout["annotations"]]
    assert any(a.startswith("tiny<br>layer 0, mean of heads") for a in annotations)
    assert any(a.startswith(f"{RNN_MODEL}<br>layer 0, mean of heads") for a in annotations)

    # The agreement figure: the page's equals the one computed here from the two API answers.
    assert caption_figure(page) == agreement(cross_map(first, 0, "mean"), cross_map(second, 0, "mean"))
    asked = []
    page.on("request", lambda r: "/api/v1/" in r.url and asked.append(r.url))
    page.select_option("#head", "1")  # a head of the transformer, against the same RNN map
    page.wait_for_function(
        "() => document.getElementById('models-figure').layout.annotations.some((a) => a.text.endsWith('layer 0, head 1'))"
    )
    assert asked == []  # the RNN's answer is kept, not fetched again
    expected = agreement(cross_map(first, 0, 1), cross_map(second, 0, "mean"))
    assert caption_figure(page) == expected

    # The CSV: per produced token each model's argmax source token, and the share as its last line.
    lines = list(csv.reader(download(page, "csv", tmp_path).read_text(encoding="utf-8").splitlines()))
    assert lines[0][-1] == "same argmax" and len(lines) == 1 + expected[1] + 1
    assert sum(int(line[-1]) for line in lines[1:-1]) == expected[0]
    assert float(lines[-1][-1]) == pytest.approx(expected[0] / expected[1], abs=1e-6)

    page.click("#figure-table summary")
    assert serious_violations(page) == []
    assert page.watch.errors == []


AGREEMENT = """async () => {
    const { argmaxes, argmaxAgreement, agreementTable, forcedTarget, otherModels } = await import('/static/js/agreement.js');
    const token = (text, special = false) => ({ text, special });
    const view = (rows, cols, matrix) => ({
        kind: 'cross', layer: 0, head: 'mean', queryAxis: 'target_tokens', keyAxis: 'source_tokens',
        rows: rows.map((_, i) => i), cols: cols.map((_, j) => j),
        rowTokens: rows.map((t) => token(t)), colTokens: cols.map((t) => token(t)), matrix,
    });
    const a = view(['x', 'y', 'z'], ['p', 'q'], [[0.6, 0.4], [0.5, 0.5], [0.1, 0.9]]);
    const b = view(['x', 'y', 'z'], ['p', 'q'], [[0.7, 0.3], [0.2, 0.8], [0.3, 0.7]]);
    const agreement = argmaxAgreement(a, b);
    return {
        ties: argmaxes([[0.5, 0.5], [0.2, 0.3, 0.3]]),
        agreement: [agreement.agreeing, agreement.total, agreement.share],
        otherSource: argmaxAgreement(a, view(['x', 'y', 'z'], ['p', 'r'], b.matrix)).reason,
        otherTarget: argmaxAgreement(a, view(['x', 'y', 'w'], ['p', 'q'], b.matrix)).reason,
        table: agreementTable(a, b, agreement, 'A', 'B').rows,
        target: forcedTarget({ target_tokens: [token('これ'), token('は'), token('</s>', true)] }),
        others: otherModels([
            { name: 'A', kinds: { cross: {} } }, { name: 'B', kinds: { cross: {} } }, { name: 'C', kinds: { encoder: {} } },
        ], 'A').map((m) => m.name),
    };
}"""


def test_the_agreement_maths_counts_rows_with_the_same_argmax_and_refuses_maps_of_other_tokens(page):
    page.goto("/")
    found = page.evaluate(AGREEMENT)
    assert found["ties"] == [0, 1]  # the first of equal weights
    assert found["agreement"] == [2, 3, pytest.approx(2 / 3)]  # rows x and z agree, y does not (a tie in a, q in b)
    assert found["otherSource"] == "its source tokens differ" and found["otherTarget"] == "its produced tokens differ"
    assert found["table"] == [
        [0, "x", "p", "p", 1],
        [1, "y", "p", "q", 0],
        [2, "z", "q", "q", 1],
        ["", "agreement (share of produced tokens)", "", "", pytest.approx(2 / 3)],
    ]
    assert found["target"] == "これ は"
    assert found["others"] == ["B"]
