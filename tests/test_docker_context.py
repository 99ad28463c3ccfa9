"""The image holds every package the project installs: each is COPY'd by the Dockerfile and let into the build
context by .dockerignore (which lets in only what it names), so a new package cannot be left out of the image."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_installed_package_reaches_the_image():
    found = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]["find"]
    packages = {pattern.rstrip("*") for pattern in found["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M))
    let_in = set(re.findall(r"^!(\w+)/$", (ROOT / ".dockerignore").read_text(encoding="utf-8"), re.M))
    assert packages <= copied, f"the Dockerfile does not COPY {sorted(packages - copied)}"
    assert packages <= let_in, f".dockerignore keeps out {sorted(packages - let_in)}"
