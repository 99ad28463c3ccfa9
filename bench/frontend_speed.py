"""How fast the page draws, measured in headless Chromium with the Performance API.

    python bench/frontend_speed.py [--model-dir model/checkpoints] [--runs 7]

Starts `attnscope serve` with the shipped model on a free port, opens the page in /usr/bin/chromium
and prints, as median and worst of --runs:
- response -> rendered head view for a 40×40 cross-attention map (target <= 100 ms): from the page's
  mark when the API answer is parsed to its mark when Plotly has drawn the figure, and to the next
  painted frame;
- the overview grid (target <= 500 ms): click on the tab to the next painted frame, for cross-attention
  (its layers × heads, plus mean and max), and summed over all three kinds (every head of the model);
- switching layer/head in the head view (no request is made), click to next painted frame;
each as wall time and as the renderer process's CPU time (DevTools Performance.getMetrics), which
stays meaningful when other work competes for the cores.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import httpx
from live_server import CHROMIUM_FLAGS, free_port, start_server, summary
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
# 39 words + </s> = 40 source tokens; 39 target tokens + </s> = 40 produced: a 40×40 cross map.
SOURCE = " ".join(("this is an example of a long sentence , and i like it very much .".split() * 3)[:39])
TARGET = " ".join(("これ は 例 で す 。 私 は 猫 が 好き で す 。".split() * 3)[:39])

# The overview of cross-attention, then of the encoder's and the decoder's heads: every head of the model.
GRID_CLICKS = ["#tab-grid", "input[name=kind][value=encoder]", "input[name=kind][value=decoder]"]

# Runs in the page: clicks `selector`, resolves after the next painted frame.
TO_NEXT_FRAME = """async (selector) => {
    const start = performance.now();
    document.querySelector(selector).click();
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    return performance.now() - start;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO / "model" / "checkpoints")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    port = free_port()
    server = start_server(args.model_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        info = httpx.get(f"{base}/api/v1/models").json()
        model = next(m for m in info if m["default"])
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(f"{base}/?kind=cross&special=1")
            page.wait_for_function("() => document.querySelector('#model').options.length > 0")
            # The renderer's CPU time (all its threads) next to wall time: on a busy machine wall time
            # mostly measures the wait for a core, CPU time what the page itself costs.
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")

            def cpu_ms() -> float:
                return 1000 * next(
                    m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "ProcessTime"
                )

            drawn, painted, grid, every, switch = [], [], [], [], []
            head_cpu, grid_cpu, every_cpu, switch_cpu = [], [], [], []
            for run in range(args.runs + 1):  # the first run warms up Plotly and the JIT
                page.fill("#source", SOURCE)
                page.fill("#target", TARGET if run % 2 == 0 else TARGET.replace("猫", "犬"))
                page.evaluate("() => performance.clearMarks()")
                cpu_start = cpu_ms()
                page.press("#source", "Enter")
                page.wait_for_function(
                    """() => {
                        const response = performance.getEntriesByName('attnscope:response')[0];
                        const drawn = performance.getEntriesByName('attnscope:head-view')[0];
                        return response && drawn && drawn.startTime > response.startTime;
                    }"""
                )
                shape = page.evaluate(
                    "() => { const d = document.getElementById('head-figure').data.at(-2).z; return [d.length, d[0].length]; }"
                )
                assert shape == [40, 40], f"expected a 40×40 map, got {shape}"
                head_ms = page.evaluate(
                    """() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(() => {
                        const response = performance.getEntriesByName('attnscope:response')[0].startTime;
                        const drawn = performance.getEntriesByName('attnscope:head-view')[0].startTime;
                        resolve([drawn - response, performance.now() - response]);
                    }, 0)))"""
                )
                cpu_head = cpu_ms() - cpu_start
                grid_ms, grid_cpu_ms = [], []
                for selector in GRID_CLICKS:
                    cpu_start = cpu_ms()
                    grid_ms.append(page.evaluate(TO_NEXT_FRAME, selector))
                    grid_cpu_ms.append(cpu_ms() - cpu_start)
                page.evaluate(
                    """() => {
                        document.querySelector('input[name=kind][value=cross]').click();
                        document.querySelector('#tab-head').click();
                    }"""
                )
                page.wait_for_timeout(100)
                cpu_start = cpu_ms()
                switch_ms = page.evaluate(
                    """async () => {
                        const start = performance.now();
                        const select = document.querySelector('#layer');
                        select.value = String((Number(select.value) + 1) % select.options.length);
                        select.dispatchEvent(new Event('change'));
                        await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
                        return performance.now() - start;
                    }"""
                )
                cpu_switch = cpu_ms() - cpu_start
                if run == 0:
                    continue
                head_cpu.append(cpu_head)
                grid_cpu.append(grid_cpu_ms[0])
                every_cpu.append(sum(grid_cpu_ms))
                switch_cpu.append(cpu_switch)
                drawn.append(head_ms[0])
                painted.append(head_ms[1])
                grid.append(grid_ms[0])
                every.append(sum(grid_ms))
                switch.append(switch_ms)
            kinds = model["kinds"]
            heads = sum(k["layers"] * k["heads"] for k in kinds.values())
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    shape = ", ".join(f"{kind} {k['layers']}×{k['heads']}" for kind, k in kinds.items())
    print(
        f"model {model['name']}: {shape} (layers × heads, {heads} maps); {args.runs} runs, Chromium headless, "
        f"{os.cpu_count()} cores, load average {load}"
    )
    per_kind = kinds["cross"]["layers"] * (kinds["cross"]["heads"] + 2)
    print("wall time:")
    print(summary("  40×40 head view: response -> drawn", drawn, 100))
    print(summary("  40×40 head view: response -> next painted frame", painted, 100))
    print(summary(f"  overview grid of cross-attention ({per_kind} maps)", grid, 500))
    print(summary("  overview grids of all three kinds, one after another", every, 500))
    print(summary("  switch layer in the head view (no refetch)", switch))
    print("renderer CPU time (all threads):")
    # Enter -> frame includes the request and the parse of its 1.5 MB answer: the 100 ms target starts at the answer.
    print(summary("  40×40 head view: Enter -> next painted frame", head_cpu))
    print(summary(f"  overview grid of cross-attention ({per_kind} maps)", grid_cpu, 500))
    print(summary("  overview grids of all three kinds, one after another", every_cpu, 500))
    print(summary("  switch layer in the head view (no refetch)", switch_cpu))


if __name__ == "__main__":
    main()
