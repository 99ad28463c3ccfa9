"""How long a reader waits for the first heatmap, measured with the page's own timing marks.

    python bench/page_timing.py [--model-dir model/checkpoints] [--runs 7]

Starts `attnscope serve` with the shipped model on a free port and, in headless /usr/bin/chromium,
times, as median and worst of --runs (the three cases interleaved, run by run):
- Enter -> heatmap painted, for a 10-word and a 40-word source: from the page's `attnscope:submit`
  mark to the first frame painted after its `attnscope:head-view` mark (request, answer, drawing);
- a share link opened in a fresh page -> heatmap painted: from navigation start to the first frame
  painted with the head view's figure in it: the canvas one (views/sketch.js, the same figure with
  its labels and colour bar, painted before Plotly starts; main.js marks `attnscope:head-preview-painted`)
  or, where Plotly came first, the interactive one (target < 1.5 s); and to the frame after the
  interactive figure is drawn; in a new browser context (a first visit: empty cache, Plotly's 4.8 MB bundle
  fetched and compiled again) and in a new tab of a browser that has shown the page before (the
  bundle from the HTTP cache, as its Cache-Control allows).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import quote

from live_server import CHROMIUM_FLAGS, free_port, start_server
from live_server import summary as summary_ms
from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parents[1]
WORDS = "this is an example of a long sentence , and i like it very much .".split()


def source(words: int, run: int) -> str:
    """`words` words; the last one changes from run to run, so no answer comes from the server's cache."""
    return " ".join((WORDS * 3)[: words - 1] + [WORDS[run % len(WORDS)]])


SHARE_TARGET_MS = 1500

# Resolves with [mark time, painted time] once the head view's mark is set and a frame has been painted after it.
PAINTED = """() => new Promise((resolve) => {
    const check = () => {
        const drawn = performance.getEntriesByName('attnscope:head-view').at(-1);
        if (!drawn) return setTimeout(check, 5);
        requestAnimationFrame(() => setTimeout(() => resolve([drawn.startTime, performance.now()]), 0));
    };
    check();
})"""


def enter_to_paint(page: Page, source: str) -> float:
    page.fill("#source", source)
    page.evaluate("() => performance.clearMarks()")
    page.press("#source", "Enter")
    painted = page.evaluate(PAINTED)[1]
    return painted - page.evaluate("() => performance.getEntriesByName('attnscope:submit')[0].startTime")


def share_link_to_paint(context, url: str) -> tuple[float, float]:
    """Navigation start -> the first heatmap painted (canvas or interactive), and -> the interactive one painted."""
    # In a new tab of `context`; a context of its own when `context` is a Browser.
    fresh = not hasattr(context, "browser")
    if fresh:
        context = context.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url, wait_until="commit")
    interactive = page.evaluate(PAINTED)[1]  # performance.now() counts from navigation start
    canvas = page.evaluate("() => performance.getEntriesByName('attnscope:head-preview-painted')[0]?.startTime ?? null")
    page.close()
    if fresh:
        context.close()
    return min(interactive, canvas or interactive), interactive


def summary(name: str, values: list[float], target: float | None = None) -> str:
    return summary_ms(name, values, target, width=52, decimals=0)  # whole ms: these figures are hundreds of ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO / "model" / "checkpoints")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    port = free_port()
    server = start_server(args.model_dir, port)
    base = f"http://127.0.0.1:{port}"
    names = ("10 words", "40 words", "share", "share, interactive", "cached", "cached, interactive")
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            page.set_default_timeout(120_000)
            page.goto(base)
            page.wait_for_function("() => document.querySelector('#model').options.length > 0")
            for run in range(args.runs + 1):  # the first run warms up the server, Plotly and the JIT
                share = share_link_to_paint(browser, f"{base}/?s={quote(source(10, run + 7))}")
                words_10 = enter_to_paint(page, source(10, run))
                words_40 = enter_to_paint(page, source(40, run))
                cached = share_link_to_paint(page.context, f"{base}/?s={quote(source(10, run + 3))}")
                measured = {
                    "10 words": words_10,
                    "40 words": words_40,
                    "share": share[0],
                    "share, interactive": share[1],
                    "cached": cached[0],
                    "cached, interactive": cached[1],
                }
                if run > 0:
                    for name, value in measured.items():
                        times[name].append(value)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.runs} runs, Chromium headless at 1366×768, {os.cpu_count()} cores, load average {load}")
    print(summary("Enter -> heatmap painted, 10-word source", times["10 words"]))
    print(summary("Enter -> heatmap painted, 40-word source", times["40 words"]))
    print(summary("share link, first visit (new context) -> heatmap painted", times["share"], SHARE_TARGET_MS))
    print(summary("  the same, -> interactive (Plotly) figure painted", times["share, interactive"]))
    print(summary("share link, new tab, bundle cached -> heatmap painted", times["cached"], SHARE_TARGET_MS))
    print(summary("  the same, -> interactive (Plotly) figure painted", times["cached, interactive"]))


if __name__ == "__main__":
    main()
