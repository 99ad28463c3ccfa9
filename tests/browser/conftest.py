"""The real app on a free port and headless Debian Chromium driven by Playwright.

`make test` installs /usr/bin/chromium (Playwright cannot download browsers here). The app serves
the tiny random model, with a readings table and a head table over a tiny corpus, a second one with
politeness control, a third with other layer and head counts and a tiny random Hugging Face Marian,
since these tests are about the page, not the weights.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from analysis.heads import Study, read_corpus, run_study
from analysis.scale import InProcess
from app.settings import Settings
from backends.discovery import head_importance_path
from model.checkpoint import save_checkpoint
from model.readings import readings_path
from tests.app.conftest import live_server
from tests.backends.conftest import write_tiny_hf_model
from tests.conftest import make_tiny_model, write_model_dir, write_tiny_corpus

CHROMIUM = Path("/usr/bin/chromium")
AXE = Axe()
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Every page of 127.0.0.1 (in one context) in one renderer process, kept alive between tests (shared_context):
    # V8 keeps Plotly's compiled 4.8 MB bundle there, so a page runs it in 0.05 s of script instead of 1 s.
    "--process-per-site",
]
TINY_READINGS = {"これ": "kore", "は": "wa", "例": "rei", "で": "de", "す": "su", "私": "watashi", "猫": "neko", "犬": "inu"}
CLASSIC_TARGET = "これ は 例 で す 。"
POLITE_MODEL = "tiny_polite"
DEEP_MODEL = "tiny_deep"
HF_MODEL = "tiny-marian"
TINY_EXAMPLES = ["This is an example.", "I like tea."]
# A measured figure as model.card_alignment stores it: here layer 0's mean of heads "aligns best", and head 2 of
# layer 1 best of all.
SCORES = [
    {"layer": 0, "head": "mean", "aer": 0.5},
    {"layer": 1, "head": 2, "aer": 0.45},
    {"layer": 1, "head": "mean", "aer": 0.7},
]
ALIGNMENT_AER = {
    "gold": {
        "reference": "alignments/gold.talp",
        "sentences": 100,
        "methods": {"weights": {"scores": SCORES, "best": SCORES[1], "best_mean": SCORES[0]}},
    }
}
# What the page must run under (issue 6): only its own scripts and styles, nothing inline.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def add_to_card(checkpoint: Path, **fields) -> None:
    card_path = checkpoint.with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card_path.write_text(json.dumps({**card, **fields}, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="session")
def base_url(tmp_path_factory) -> Iterator[str]:
    model_dir = tmp_path_factory.mktemp("models")
    checkpoint = write_model_dir(model_dir)
    add_to_card(checkpoint, examples=TINY_EXAMPLES, target_example=CLASSIC_TARGET)
    # A second model, trained (here: built) with politeness control, whose card measured its
    # alignment by layer; "tiny" stays the default.
    polite = write_model_dir(model_dir, POLITE_MODEL, seed=1, politeness_levels=("plain", "polite"))
    add_to_card(polite, alignment_aer=ALIGNMENT_AER)
    # A third with other counts per kind: 3 encoder layers, 1 decoder layer, 2 heads.
    deep = make_tiny_model(2, n_encoder_layers=3, n_decoder_layers=1, n_heads=2)
    save_checkpoint(model_dir / f"{DEEP_MODEL}.pt", deep.model, deep.src_vocab, deep.tgt_vocab)
    # A Hugging Face model beside them: a tiny random Marian with a subword tokenizer.
    write_tiny_hf_model(model_dir / HF_MODEL, "marian")
    blob = {"format": 1, "language": "ja", "readings": TINY_READINGS}
    readings_path(checkpoint).write_text(json.dumps(blob, ensure_ascii=False), encoding="utf-8")
    # "tiny" has a head table over a corpus, with its pruning curve, as `attnscope heads --prune` writes it
    corpus = read_corpus(write_tiny_corpus(tmp_path_factory.mktemp("corpus"), lines=10))
    with InProcess() as run:
        table = run_study(Study(str(checkpoint), "tiny", corpus, shard_size=10), run, prune=True)
    head_importance_path(checkpoint).write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
    with live_server(Settings(model_dir=model_dir, device="cpu", cache_size=0, default_model="tiny")) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class PageWatch:
    """What a page did that it must not: console errors, uncaught exceptions, dialogs, requests off 127.0.0.1."""

    def __init__(self, page: Page):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.foreign_requests: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", self._dialog)
        page.route("**/*", self._route)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route) -> None:
        url = urlparse(route.request.url)
        if url.scheme in ("data", "blob") or url.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.foreign_requests.append(route.request.url)
            route.abort()


DEFAULT_VIEWPORT = {"width": 1400, "height": 1000}
# One context per (browser, server), shared by the pages of every test, with one tab kept open on the app's origin:
# that tab keeps the renderer process every page of the site runs in (--process-per-site) alive between tests, so
# Plotly is compiled once per session rather than once per page. A context per test gave each test a new process.
# The page keeps no state beyond its tab (no cookies, no storage), so a new tab starts as a new context did.
_contexts: dict[tuple[int, str], BrowserContext] = {}


def shared_context(browser: Browser, base_url: str) -> BrowserContext:
    key = (id(browser), base_url)
    if key not in _contexts:
        context = browser.new_context(viewport=DEFAULT_VIEWPORT, accept_downloads=True, base_url=base_url)
        # Generous: the suite may share two cores with a training run, and the page loads 4.8 MB of Plotly.
        context.set_default_timeout(60_000)
        context.set_default_navigation_timeout(90_000)
        context.on("close", lambda _: _contexts.pop(key, None))  # a test that closes it gets a new one next time
        context.new_page().goto("/static/favicon.svg")  # the tab that keeps the process
        _contexts[key] = context
    return _contexts[key]


def open_page(browser: Browser, base_url: str, width: int = 1400, height: int = 1000) -> Page:
    """A fresh tab of the shared context with a viewport of its own; close it with `page.close()`."""
    page = shared_context(browser, base_url).new_page()
    if (width, height) != (DEFAULT_VIEWPORT["width"], DEFAULT_VIEWPORT["height"]):
        page.set_viewport_size({"width": width, "height": height})
    page.watch = PageWatch(page)
    return page


@pytest.fixture
def page(browser, base_url) -> Iterator[Page]:
    page = open_page(browser, base_url)
    yield page
    page.close()


def submit(page: Page, source: str, target: str = "") -> None:
    """Type a sentence (and target) and press Enter, then wait for the head view of the answer."""
    page.fill("#source", source)
    page.fill("#target", target)
    page.press("#source", "Enter")
    wait_for_figure(page)


def wait_for_figure(page: Page) -> None:
    page.wait_for_function("() => document.querySelector('#query').getAttribute('aria-busy') === 'false'")
    page.wait_for_function("() => !document.querySelector('#result').hidden")


def head_title(page: Page) -> str:
    return page.evaluate("() => document.getElementById('head-figure').layout.title.text")


def axis_labels(page: Page, axis: str, figure: str = "head-figure") -> list[str]:
    """The tick labels as the browser drew them (one string per label, lines and gaps joined by one space)."""
    labels = page.evaluate(
        """([figure, axis]) => [...document.querySelectorAll(`#${figure} .${axis}tick text`)].map((t) => {
            const lines = t.querySelectorAll('tspan.line');
            return lines.length ? [...lines].map((l) => l.textContent).join(' ') : t.textContent;
        })""",
        [figure, axis],
    )
    return [" ".join(label.split()) for label in labels]


def download(page, fmt, tmp_path):
    with page.expect_download() as answer:
        page.click(f'[data-export="{fmt}"]')
    path = tmp_path / answer.value.suggested_filename
    answer.value.save_as(path)
    page.wait_for_function(
        "(name) => document.getElementById('action-status').textContent === `Downloaded ${name}`", arg=path.name
    )
    return path


def serious_violations(page):
    results = AXE.run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    return [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in serious]


def as_lists(response: dict) -> dict:
    """An attention answer as `"encoding": "lists"` writes it: each packed map's `encoded` unpacked into `weights`,
    as static/js/wire.js does for the page (which asks for base64)."""
    for answer_map in response.get("attention", {}).values():
        encoded = answer_map.get("encoded")
        if encoded:
            raw = base64.b64decode(encoded["data"])
            code = {"uint16": "H", "uint32": "I", "float64": "d"}[encoded["dtype"]]
            flat = [n / encoded["scale"] for n in struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw)]
            for size in reversed(encoded["shape"][1:]):
                flat = [flat[i : i + size] for i in range(0, len(flat), size)]
            answer_map["weights"], answer_map["encoded"] = flat, None
    return response
