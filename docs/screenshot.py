"""Save a screenshot (docs/screenshot-1366.png by default): the page with the classic example, drawn by the shipped model.

    python docs/screenshot.py [--view 'kind=cross&layer=2&head=mean'] [--target 'これ は 例 で す 。']
        [--out docs/screenshot-1366.png] [--width 1366 --height 768] [--wait SELECTOR] [--until SELECTOR]

The README's step-by-step view:

    python docs/screenshot.py --target 'これ は 例 で す 。' --view 'view=explain&layer=1&head=0&q=2' \
        --wait '#explain-steps canvas' --until '#explain-steps .learn-step:nth-child(3)' --out docs/screenshot-learn.png

Starts `attnscope serve` on a free port, opens the page in headless /usr/bin/chromium (Japanese needs
a CJK font such as Debian's fonts-noto-cjk) and captures the page down to the end of the figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from live_server import CHROMIUM_FLAGS, free_port, start_server  # noqa: E402

CLASSIC = "This is an example."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=REPO / "model" / "checkpoints")
    parser.add_argument("--view", default="", help="URL parameters of the view to capture (default: the page's first view)")
    parser.add_argument("--target", default="", help="a Japanese translation to force instead of the model's own")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot-1366.png")
    parser.add_argument("--width", type=int, default=1366)
    parser.add_argument("--height", type=int, default=768, help="the window's height in px")
    parser.add_argument("--wait", default="#head-figure .heatmaplayer", help="what must be drawn before the capture")
    parser.add_argument("--until", default=".actions", help="the element whose bottom ends the capture")
    args = parser.parse_args()

    port = free_port()
    server = start_server(args.model_dir, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": args.width, "height": args.height}, device_scale_factor=1)
            page.set_default_timeout(120_000)
            forced = f"&t={quote(args.target)}" if args.target else ""
            page.goto(f"http://127.0.0.1:{port}/?s={quote(CLASSIC)}{forced}&{args.view}")
            page.wait_for_function(
                "(drawn) => !document.querySelector('#result').hidden && document.querySelector(drawn)", arg=args.wait
            )
            page.wait_for_timeout(300)
            bottom = page.evaluate(
                "(until) => document.querySelector(until).getBoundingClientRect().bottom + window.scrollY + 16", args.until
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True, clip={"x": 0, "y": 0, "width": args.width, "height": bottom})
            translation = page.inner_text("#translation")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"{args.out}: {CLASSIC} -> {translation}")


if __name__ == "__main__":
    main()
