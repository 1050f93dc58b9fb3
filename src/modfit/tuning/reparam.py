"""The low-rank reparameterization network of Zhu et al. (README, "Defences"): `theta = W2 · tanh(W1 · e)`, no biases.

One `Generator` produces a set of named tensors on every forward pass: `theta` is computed from the
learned vector `e` (size `in_dim`) through a `mid_dim` bottleneck and cut, in order, into the targets.
With `rows > 1` the input is a matrix, one `e` per row, and every target is cut out of the same
columns of each row: that is prefix tuning's per-virtual-token embedding → Linear → tanh → Linear
(Li & Liang's reparameterization with a `mid_dim` bottleneck).

Nothing here knows which model the tensors go into: a tuning method names its targets after the
classifier's own (placeholder) parameters and `TunedClassifier` substitutes them. Written by hand:
no maintained library has this network (peft's prefix encoder has biases and no head).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from modfit.errors import require

INITS = ("matched", "paper")


@dataclass(frozen=True)
class ReparamConfig:
    """Switches a tuning method to generated tensors: `reparam: {in_dim: 2, mid_dim: 2}`.

    `init="matched"` (default) draws each tensor's rows of W2 so that the generated tensor starts with
    the same scale as the method's directly trained tensor (zero where that starts at zero: LoRA's B,
    an adapter's up-projection), times `scale`: the generated model starts where the plain method
    starts, and under Adam a generated tensor then moves about lr · ||tanh(W1 e)||_1 per step.
    `init="paper"` is the reference code's: e ~ U(0, 1), W1 and W2 as `torch.nn.Linear` initialises
    them, which starts the generated head (and adapters) at several times their usual scale.
    """

    in_dim: int = 2
    mid_dim: int = 2
    init: str = "matched"
    scale: float = 1.0

    def validate(self) -> None:
        require(self.in_dim >= 1, f"reparam in_dim {self.in_dim}: use at least 1")
        require(self.mid_dim >= 1, f"reparam mid_dim {self.mid_dim}: use at least 1 (the paper uses 1-4)")
        require(self.init in INITS, f"reparam init {self.init!r}: use {' or '.join(INITS)}")
        require(self.scale >= 0, f"reparam scale {self.scale}: use a scale >= 0")


def _linear_init_(tensor: torch.Tensor) -> None:
    """What `torch.nn.Linear` does to its weight: uniform with bound 1/sqrt(fan_in)."""
    nn.init.kaiming_uniform_(tensor, a=math.sqrt(5))


class Generator(nn.Module):
    """Generates the named `targets` from `e` (rows × in_dim), `w1` (mid_dim × in_dim), `w2` (width × mid_dim)."""

    def __init__(self, targets: Sequence[tuple[str, torch.Size]], in_dim: int, mid_dim: int, rows: int = 1):
        super().__init__()
        self.names = [name for name, _ in targets]
        self.shapes = [torch.Size(shape) for _, shape in targets]
        self.rows = rows
        if rows > 1 and any(shape[0] != rows for shape in self.shapes):
            raise ValueError(f"every target of a {rows}-row generator needs {rows} rows")
        self.widths = [shape.numel() // rows for shape in self.shapes]
        self.e = nn.Parameter(torch.zeros(rows, in_dim))
        self.w1 = nn.Parameter(torch.zeros(mid_dim, in_dim))
        self.w2 = nn.Parameter(torch.zeros(sum(self.widths), mid_dim))

    @property
    def num_generated(self) -> int:
        return sum(shape.numel() for shape in self.shapes)

    def hidden(self) -> torch.Tensor:
        """tanh(W1 · e) for every row: rows × mid_dim."""
        return torch.tanh(self.e @ self.w1.T)

    def forward(self) -> dict[str, torch.Tensor]:
        theta = self.hidden() @ self.w2.T  # rows × width
        pieces = theta.split(self.widths, dim=1)
        return {
            name: piece.reshape(shape)
            for name, piece, shape in zip(self.names, pieces, self.shapes, strict=True)
        }

    @torch.no_grad()
    def initialise(
        self, config: ReparamConfig, target_rms: Sequence[float], zero_input: bool = False
    ) -> None:
        """Draw e, W1, W2 from the global generator (callers fork and seed it: `apply_tuning`).

        `target_rms[i]` is the root-mean-square of target i as the plain method initialises it.
        `zero_input` starts e at zero, so every target starts at exactly zero (LoRA's B generator).
        """
        if zero_input:
            self.e.zero_()
        else:
            self.e.uniform_(0.0, 1.0)
        _linear_init_(self.w1)
        if config.init == "paper" or zero_input:
            _linear_init_(self.w2)
            if config.init == "matched":
                self.w2.mul_(config.scale)
            return
        # theta_j = sum_k W2[j, k] t_k with t = tanh(W1 e): W2[j, k] ~ N(0, s² / mean ||t||²) gives
        # theta_j ~ N(0, s²), the plain tensor's scale s.
        norm = self.hidden().pow(2).sum(1).mean().clamp(min=1e-12).sqrt()
        stds = torch.cat(
            [
                torch.full((width,), rms * config.scale / float(norm))
                for width, rms in zip(self.widths, target_rms, strict=True)
            ]
        )
        self.w2.normal_().mul_(stds.unsqueeze(1))
