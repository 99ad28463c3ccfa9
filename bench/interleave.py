"""The order in which a bench that compares variants in one run takes them, turn by turn."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def in_turn(names: Iterable[T], turn: int) -> list[T]:
    """`names` as given on even turns, reversed on odd ones: neither variant always runs first, on caches the
    other has just filled, or always last, as the machine's load drifts."""
    ordered = list(names)
    return ordered if turn % 2 == 0 else ordered[::-1]
