"""Every relative link in README.md and docs/*.md reaches a file that exists (and a heading, when it names one)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKDOWN_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCED_BLOCK = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")


def prose(markdown: str) -> str:
    """The text outside code, where links and headings live."""
    return CODE_SPAN.sub("", FENCED_BLOCK.sub("", markdown))


def anchors(path: Path) -> set[str]:
    """The fragment ids GitHub gives the file's headings: lowercased, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    ids = set()
    for heading in HEADING.findall(FENCED_BLOCK.sub("", path.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else f"{slug}-{count}")
    return ids


def relative_links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    targets = INLINE_LINK.findall(text) + REFERENCE_DEFINITION.findall(text)
    return [target for target in targets if not URL_SCHEME.match(target)]


def broken_links(path: Path) -> list[str]:
    broken = []
    for link in relative_links(path):
        file_part, _, fragment = link.partition("#")
        target = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not target.exists():
            broken.append(f"{link}: no file {target}")
        elif fragment and target.suffix == ".md" and unquote(fragment) not in anchors(target):
            broken.append(f"{link}: no heading #{fragment} in {target.name}")
    return broken


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_readme_links_every_docs_page() -> None:
    linked = {(REPO / link.partition("#")[0]).resolve() for link in relative_links(REPO / "README.md")}
    assert [p.name for p in MARKDOWN_FILES[1:] if p.resolve() not in linked] == []


def test_broken_links_are_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# The page\n\n## Views and `keys`\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "# Title\n\n"
        "[ok](docs/page.md) [ok anchor](docs/page.md#views-and-keys) [ok here](#title) [web](https://example.org/x.md)\n"
        "![missing image](docs/gone.png) [missing page](docs/api.md) [missing anchor](docs/page.md#errors)\n"
        "`[in code](docs/nothing.md)`\n\n```md\n[in a block](docs/nothing-either.md)\n```\n\n"
        "[missing reference]: docs/reference.md\n",
        encoding="utf-8",
    )
    reported = [problem.split(":")[0] for problem in broken_links(tmp_path / "README.md")]
    assert reported == ["docs/gone.png", "docs/api.md", "docs/page.md#errors", "docs/reference.md"]
