"""Per-head gates: a multiplier ξ_h on each attention head's output, applied before the output projection.

A gate of 0 switches a head off (ablation); gates of 1 that require grad give ∂L/∂ξ_h, the head importance of
Michel, Levy & Neubig 2019 ("Are Sixteen Heads Really Better than One?"). Gates travel as an argument of
encode/decode and as a field of the incremental-decoding state, never as module attributes, so concurrent
calls on one network (the service runs requests in threads) cannot see each other's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from backends.interface import HeadRef


@dataclass(frozen=True)
class HeadGates:
    """Per kind, gates (L, H) shared by the batch, or (B, L, H) one set per sentence; None: every head as it is."""

    encoder: Tensor | None = None
    decoder: Tensor | None = None
    cross: Tensor | None = None

    def of(self, kind: str, layer: int) -> Tensor | None:
        """The gates of one layer: (H,) or (B, H); None when that kind is not gated."""
        gates = getattr(self, kind)
        return None if gates is None else gates[..., layer, :]

    def select(self, rows: Tensor) -> HeadGates:
        """The gates of the batch rows `rows` (B',), as a decoding state's select() needs."""
        return HeadGates(*(g if g is None or g.dim() == 2 else g[rows] for g in (self.encoder, self.decoder, self.cross)))

    @classmethod
    def switching_off(
        cls, heads: Iterable[HeadRef], shapes: dict[str, tuple[int, int]], device: torch.device | str = "cpu"
    ) -> HeadGates | None:
        """Gates of 1 with 0 for each head in `heads`; `shapes`: kind -> (layers, heads) of the network.
        None when no head is switched off, so an unablated call runs exactly the ungated code."""
        gates: dict[str, Tensor] = {}
        for ref in heads:
            if ref.kind not in shapes:
                raise ValueError(f"the network has no {ref.kind} attention; it has {', '.join(shapes)}")
            layers, count = shapes[ref.kind]
            if not (0 <= ref.layer < layers and 0 <= ref.head < count):
                raise ValueError(f"{ref.kind} layer {ref.layer}, head {ref.head} is not in a {layers} × {count} network")
            if ref.kind not in gates:
                gates[ref.kind] = torch.ones(layers, count, device=device)
            gates[ref.kind][ref.layer, ref.head] = 0.0
        return cls(**gates) if gates else None


def layer_gates(gates: HeadGates | None, kind: str, layer: int) -> Tensor | None:
    """The gates of one layer of one kind, (H,) or (B, H); None when nothing is gated there."""
    return None if gates is None else gates.of(kind, layer)


def gate(out: Tensor, gates: Tensor | None) -> Tensor:
    """out: (B, H, T, d) per-head outputs, gates: (H,) or (B, H) -> each head's output times its gate."""
    return out if gates is None else out * gates[..., :, None, None]
