"""Which heads matter, in the page: switching heads off in the overview, and the corpus view of the head table."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

from tests.browser.conftest import DEEP_MODEL, HF_MODEL, serious_violations, submit, wait_for_figure

EXAMPLE = "This is an example."


def words(answer: dict) -> list[str]:
    return [t["text"] for t in answer["target_tokens"] if not t["special"]]


def kept(before: list[str], after: list[str]) -> tuple[list[bool], list[bool]]:
    """Which tokens of each list a longest common subsequence keeps (written apart from the page's)."""
    table = [[0] * (len(after) + 1) for _ in range(len(before) + 1)]
    for i in reversed(range(len(before))):
        for j in reversed(range(len(after))):
            table[i][j] = table[i + 1][j + 1] + 1 if before[i] == after[j] else max(table[i + 1][j], table[i][j + 1])
    keep_before, keep_after = [False] * len(before), [False] * len(after)
    i = j = 0
    while i < len(before) and j < len(after):
        if before[i] == after[j]:
            keep_before[i] = keep_after[j] = True
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return keep_before, keep_after


def ablated_in_url(page) -> list[str]:
    return parse_qs(urlparse(page.url).query).get("off", [""])[0].split(",")


def test_switching_heads_off_in_the_overview_redraws_the_translation_and_what_changed(page):
    page.goto(f"/?model={DEEP_MODEL}&view=grid&kind=encoder")
    with page.expect_response("**/api/v1/attention") as first:
        submit(page, EXAMPLE)
    every_head = first.value.json()
    assert page.locator("#ablation").is_hidden()
    switch = '#grid button.head-switch[data-switch="encoder.0.0"]'
    assert page.get_attribute(switch, "aria-pressed") == "false"

    asked = []
    page.on("request", lambda r: "/api/v1/attention" in r.url and asked.append(json.loads(r.post_data)))
    with page.expect_response(lambda r: "/api/v1/attention" in r.url and "ablate" in (r.request.post_data or "")) as second:
        page.click(switch)
    wait_for_figure(page)
    off = second.value.json()
    assert off["ablated"] == [{"kind": "encoder", "layer": 0, "head": 0}]
    page.wait_for_function("() => !document.getElementById('ablation').hidden")
    assert page.text_content("#translation") == off["translation"]
    assert ablated_in_url(page) == ["encoder.0.0"]
    assert page.get_attribute(switch, "aria-pressed") == "true"
    assert page.locator("#grid .cell.off").count() == 1

    # every head on (left) beside this answer, the tokens the switch brought in and took away marked
    before, after = words(every_head), words(off)
    assert before != after  # this head changes what the tiny model says
    keep_before, keep_after = kept(before, after)
    assert page.locator("#ablation-before .token").all_inner_texts() == before
    assert page.locator("#ablation-after .token").all_inner_texts() == after
    assert page.locator("#ablation-after ins.changed").count() == keep_after.count(False)
    assert page.locator("#ablation-before del.removed").count() == keep_before.count(False)
    assert page.text_content("#ablation-before-score") == f"log-probability {every_head['score']:.2f}"
    assert page.text_content("#ablation-after-score") == f"log-probability {off['score']:.2f}"
    new, gone = keep_after.count(False), keep_before.count(False)
    summary = page.text_content("#ablation-summary")
    assert summary.startswith(f"1 head off: {new} of its {len(after)} tokens new (marked), {gone} of the {len(before)} with")

    # a second head: one request, the answer with every head on is kept
    asked.clear()
    page.click('#grid button.head-switch[data-switch="encoder.1.1"]')
    page.wait_for_function("() => document.querySelectorAll('#ablation-heads button').length === 2")
    both = [{"kind": "encoder", "layer": 0, "head": 0}, {"kind": "encoder", "layer": 1, "head": 1}]
    assert [body.get("ablate") for body in asked] == [both]
    assert ablated_in_url(page) == ["encoder.0.0", "encoder.1.1"]

    # a shared link restores the set
    page.goto(page.url)
    wait_for_figure(page)
    page.wait_for_function("() => document.querySelectorAll('#ablation-heads button').length === 2")
    assert page.get_attribute(switch, "aria-pressed") == "true"

    # one back on from its chip, then every head: the first answer is shown again without asking
    page.click("#ablation-heads button >> nth=0")
    page.wait_for_function("() => document.querySelectorAll('#ablation-heads button').length === 1")
    assert ablated_in_url(page) == ["encoder.1.1"]
    asked.clear()
    page.click("#ablation-clear")
    page.wait_for_function("() => document.getElementById('ablation').hidden")
    assert asked == []
    assert page.text_content("#translation") == every_head["translation"]
    assert "off=" not in page.url
    assert page.watch.errors == []
    assert serious_violations(page) == []


def test_the_token_changes_are_a_longest_common_subsequence(page):
    page.goto("/")
    changes = page.evaluate(
        """async () => {
            const a = await import('/static/js/ablation.js');
            return a.tokenChanges(['これ', 'は', '例', 'で', 'す'], ['これ', 'が', '例', 'だ']);
        }"""
    )
    assert [t["removed"] for t in changes["before"]] == [False, True, False, True, True]
    assert [t["changed"] for t in changes["after"]] == [False, True, False, True]
    assert changes["changed"] == 2


def test_a_hugging_face_model_switches_its_heads_off_too(page):
    page.goto(f"/?model={HF_MODEL}&view=grid")
    submit(page, EXAMPLE)
    assert page.locator("#grid-note").is_hidden()
    assert page.locator("#grid button.head-switch").count() == 2  # Marian's one cross layer of two heads
    with page.expect_response(lambda r: "/api/v1/attention" in r.url and "ablate" in (r.request.post_data or "")) as answer:
        page.click('#grid button.head-switch[data-switch="cross.0.1"]')
    assert answer.value.json()["ablated"] == [{"kind": "cross", "layer": 0, "head": 1}]
    page.wait_for_function("() => document.querySelectorAll('#ablation-heads button').length === 1")
    assert page.watch.errors == []


def test_the_corpus_view_draws_the_head_table_and_opens_a_head(page):
    page.goto("/?view=stats")
    with page.expect_response("**/api/v1/models/tiny/heads") as answer:
        submit(page, EXAMPLE)
    table = answer.value.json()
    page.wait_for_selector("#corpus-figure .heatmaplayer")
    figure = page.evaluate(
        "() => { const f = document.getElementById('corpus-figure'); return { z: f.data[0].z, title: f.layout.title.text }; }"
    )
    cross = {(row["layer"], row["head"]): row for row in table["heads"] if row["kind"] == "cross"}
    assert figure["z"] == [[cross[(layer, head)]["bleu_drop"] for head in range(4)] for layer in range(2)]
    assert "BLEU drop" in figure["title"]
    summary = page.text_content("#corpus-summary")
    assert summary.startswith(f"BLEU {table['bleu']:.2f} with every head on (")
    # the pruning curve: BLEU after each removal, one point per head and the start
    curve = page.evaluate("() => document.getElementById('pruning-figure').data[0]")
    assert curve["x"] == list(range(len(table["heads"]) + 1))
    assert curve["y"] == [step["bleu"] for step in table["pruning"]["steps"]]

    page.select_option("#corpus-metric", "confidence")
    page.wait_for_function("() => document.getElementById('corpus-figure').layout.title.text.includes('confidence')")
    assert page.evaluate("() => document.getElementById('corpus-figure').data[0].z[1][2]") == cross[(1, 2)]["confidence"]
    assert "metric=confidence" in page.url

    # the table: a line per head of the kind, each figure a button that opens its head
    page.click("#corpus-details summary")
    assert page.locator("#corpus-table tbody tr").count() == 8
    page.click('#corpus-table button.open-head[data-layer="1"][data-head="3"] >> nth=0')
    page.wait_for_function("() => document.getElementById('head-figure').layout?.title.text.endsWith('layer 1, head 3')")

    # a click on the figure opens a head too
    page.click("#tab-stats")
    page.wait_for_selector("#corpus-figure .heatmaplayer")
    box = page.locator("#corpus-figure .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 8, box["y"] + box["height"] / 4)  # layer 0, head 0
    page.wait_for_function("() => document.getElementById('head-figure').layout?.title.text.endsWith('layer 0, head 0')")
    assert page.watch.errors == []
    page.click("#tab-stats")
    page.wait_for_selector("#corpus-figure .heatmaplayer")
    assert serious_violations(page) == []


def test_a_model_without_a_head_table_says_how_to_make_one(page):
    page.goto(f"/?model={DEEP_MODEL}&view=stats")
    submit(page, EXAMPLE)
    page.wait_for_function("() => document.getElementById('corpus-summary').textContent.includes('attnscope heads')")
    assert page.locator("#corpus-body").is_hidden()
    assert page.watch.errors == []
