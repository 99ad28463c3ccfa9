"""The pruning curve of a head table as a standalone SVG, for the README (the page draws it with Plotly).

python -m analysis.pruning_figure model/checkpoints/en-ja.heads.json docs/en-ja-pruning.svg
"""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 36, 44  # px of margin around the plot area
KIND_COLOURS = {"encoder": "#3b4cca", "decoder": "#2f9e44", "cross": "#d9480f"}


def pruning_svg(table: dict) -> str:
    steps = table["pruning"]["steps"]
    top = max(step["bleu"] for step in steps)
    ceiling = 10 * (int(top // 10) + 1)

    def x(removed: int) -> float:
        return LEFT + removed * (WIDTH - LEFT - RIGHT) / (len(steps) - 1)

    def y(bleu: float) -> float:
        return TOP + (1 - bleu / ceiling) * (HEIGHT - TOP - BOTTOM)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<text x="{LEFT}" y="20" font-size="14">{escape(title(table))}</text>',
    ]
    for bleu in range(0, ceiling + 1, 10):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(bleu):.1f}" y2="{y(bleu):.1f}" stroke="#e4e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(bleu) + 4:.1f}" text-anchor="end">{bleu}</text>')
    for k in range(0, len(steps), 6):
        parts.append(f'<text x="{x(k):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{k}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle">heads switched off</text>')
    parts.append(f'<text transform="translate(14 {(TOP + HEIGHT - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">BLEU</text>')
    points = " ".join(f"{x(step['removed']):.1f},{y(step['bleu']):.1f}" for step in steps)
    parts.append(f'<polyline points="{points}" fill="none" stroke="#52606d" stroke-width="1.5"/>')
    for step in steps[1:]:  # each point coloured by the kind of the head switched off at that step
        colour = KIND_COLOURS[step["head"]["kind"]]
        parts.append(f'<circle cx="{x(step["removed"]):.1f}" cy="{y(step["bleu"]):.1f}" r="3.5" fill="{colour}"/>')
    for i, (kind, colour) in enumerate(KIND_COLOURS.items()):
        parts.append(f'<circle cx="{WIDTH - RIGHT - 200 + 70 * i}" cy="{TOP + 6}" r="4" fill="{colour}"/>')
        parts.append(f'<text x="{WIDTH - RIGHT - 192 + 70 * i}" y="{TOP + 10}">{kind}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def title(table: dict) -> str:
    data = table["data"]
    return f"{table['model']}: {data['split']} BLEU as heads are switched off, least important first"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.pruning_figure", description=__doc__)
    parser.add_argument("table", help="a NAME.heads.json written by `attnscope heads --prune`")
    parser.add_argument("out", help="the SVG to write")
    args = parser.parse_args(argv)
    table = json.loads(Path(args.table).read_text(encoding="utf-8"))
    if not table.get("pruning"):
        parser.error(f"{args.table} has no pruning curve: run attnscope heads with --prune")
    Path(args.out).write_text(pruning_svg(table), encoding="utf-8")


if __name__ == "__main__":
    main()
