"""The low-rank reparameterization network of Zhu et al. (docs/defences/index.md, "Defences"): `theta = W2 · tanh(W1 · e)`.

One `Generator` produces a set of named tensors on every forward pass: `theta` is computed from the
learned vector `e` (size `in_dim`) through a `mid_dim` bottleneck and cut, in order, into the targets.
With `rows > 1` the input is a matrix, one `e` per row, and every target is cut out of the same
columns of each row: that is prefix tuning's per-virtual-token embedding → Linear → tanh → Linear
(Li & Liang's reparameterization with a `mid_dim` bottleneck; with `bias`, the biases of their MLP).

Nothing here knows which model the tensors go into: a tuning method names its targets after the
classifier's own (placeholder) parameters and `TunedClassifier` substitutes them, and says how the
authors' code draws each of its generators (`PaperInit`). Written by hand: no maintained library has
this network (peft's prefix encoder has no head).
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
    `init="paper"` is the authors' code (thunlp/Moderate-fitting), per method: LoRA and prefix draw
    e ~ U(0, 1) and W1, W2 as `torch.nn.Linear` does (LoRA's B generator starts at e = 0, prefix
    tokens' e ~ N(0, 1) as `nn.Embedding` does); adapters draw e, W1 and W2 ~ N(0, 0.01).
    `bias` gives the prefix generator biases after W1 and W2 (the authors' prefix network has them;
    their head, LoRA and adapter generators have none, and modfit refuses it there).
    """

    in_dim: int = 2
    mid_dim: int = 2
    init: str = "matched"
    scale: float = 1.0
    bias: bool = False

    def validate(self) -> None:
        require(self.in_dim >= 1, f"reparam in_dim {self.in_dim}: use at least 1")
        require(self.mid_dim >= 1, f"reparam mid_dim {self.mid_dim}: use at least 1 (the paper uses 1-4)")
        require(self.init in INITS, f"reparam init {self.init!r}: use {' or '.join(INITS)}")
        require(self.scale >= 0, f"reparam scale {self.scale}: use a scale >= 0")


@dataclass(frozen=True)
class PaperInit:
    """How the authors' code draws one generator: `e` from U(0, 1) (`uniform`), zeros (`zero`) or
    N(0, e_std) (`normal`); W1 and W2 as `nn.Linear` does (`weight_std=None`, biases too) or N(0, weight_std)."""

    e: str = "uniform"
    e_std: float = 1.0
    weight_std: float | None = None


LINEAR = PaperInit()  # LoRA's main generator, every head generator
LINEAR_FROM_ZERO = PaperInit(e="zero")  # LoRA's B generator: every B starts at exactly zero
EMBEDDING = PaperInit(e="normal")  # prefix tokens: nn.Embedding(tokens, in_dim) → Linear → tanh → Linear
SMALL_NORMAL = PaperInit(e="normal", e_std=0.01, weight_std=0.01)  # adapters: everything ~ N(0, 0.01)


def _linear_init_(weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """What `torch.nn.Linear.reset_parameters` does: U(±1/sqrt(fan_in)) for weight and bias."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(weight.shape[1])
        nn.init.uniform_(bias, -bound, bound)


class Generator(nn.Module):
    """Generates the named `targets` from `e` (rows × in_dim), `w1` (mid_dim × in_dim), `w2`
    (width × mid_dim), and with `bias` `b1` (mid_dim) and `b2` (width)."""

    def __init__(
        self,
        targets: Sequence[tuple[str, torch.Size]],
        in_dim: int,
        mid_dim: int,
        rows: int = 1,
        bias: bool = False,
    ):
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
        self.b1 = nn.Parameter(torch.zeros(mid_dim)) if bias else None
        self.b2 = nn.Parameter(torch.zeros(sum(self.widths))) if bias else None

    @property
    def num_generated(self) -> int:
        return sum(shape.numel() for shape in self.shapes)

    def hidden(self) -> torch.Tensor:
        """tanh(W1 · e + b1) for every row: rows × mid_dim."""
        return torch.tanh(nn.functional.linear(self.e, self.w1, self.b1))

    def forward(self) -> dict[str, torch.Tensor]:
        theta = nn.functional.linear(self.hidden(), self.w2, self.b2)  # rows × width
        pieces = theta.split(self.widths, dim=1)
        return {
            name: piece.reshape(shape)
            for name, piece, shape in zip(self.names, pieces, self.shapes, strict=True)
        }

    @torch.no_grad()
    def initialise(
        self,
        config: ReparamConfig,
        target_rms: Sequence[float],
        zero_input: bool = False,
        paper: PaperInit = LINEAR,
    ) -> None:
        """Draw e, W1, W2 (and biases) from the global generator (callers fork and seed it: `apply_tuning`).

        `paper` is how the authors draw this generator (`init="paper"`). Otherwise (`matched`):
        `target_rms[i]` is the root-mean-square of target i as the plain method initialises it;
        `zero_input` starts e at zero, so every target starts at exactly zero (LoRA's B generator).
        """
        if config.init == "paper":
            self._paper_initialise(paper)
            return
        if zero_input:
            self.e.zero_()
        else:
            self.e.uniform_(0.0, 1.0)
        _linear_init_(self.w1, None)
        if zero_input:
            _linear_init_(self.w2, None)
            self.w2.mul_(config.scale)
            return
        # theta_j = sum_k W2[j, k] t_k with t = tanh(W1 e): W2[j, k] ~ N(0, s² / mean ||t||²) gives
        # theta_j ~ N(0, s²), the plain tensor's scale s. Biases start at zero.
        norm = self.hidden().pow(2).sum(1).mean().clamp(min=1e-12).sqrt()
        stds = torch.cat(
            [
                torch.full((width,), rms * config.scale / float(norm))
                for width, rms in zip(self.widths, target_rms, strict=True)
            ]
        )
        self.w2.normal_().mul_(stds.unsqueeze(1))

    def _paper_initialise(self, paper: PaperInit) -> None:
        if paper.e == "uniform":
            self.e.uniform_(0.0, 1.0)
        elif paper.e == "zero":
            self.e.zero_()
        else:
            self.e.normal_(0.0, paper.e_std)
        for weight, bias in ((self.w1, self.b1), (self.w2, self.b2)):
            if paper.weight_std is None:
                _linear_init_(weight, bias)
            else:
                weight.normal_(0.0, paper.weight_std)
                if bias is not None:
                    bias.zero_()
