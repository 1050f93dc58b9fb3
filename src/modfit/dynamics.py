"""Per-row training dynamics: every training row's latest loss at each evaluation point.

The loop already computes each row's loss in the forward pass of its batch (`TrainState.batch_rows`,
`batch_row_losses`), so recording costs no extra pass: a row's value at a point is the loss it had when
it was last in a batch (NaN before its first batch). Memory is one float32 per row and point. Whether
a row is fitted is derived, not stored: a loss below ln 2 means the true label has probability above
one half, which is exactly "predicted correctly" with two labels and "confidently correct" with more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from modfit.train import EvalPoint, TrainState


@dataclass(frozen=True)
class RowDynamics:
    """`losses[p, r]`: row r's latest loss at point p (NaN: not yet seen). `train_loss` and `dev_acc`
    are the history's, one per point, so a detector needs nothing else."""

    steps: tuple[int, ...]
    epochs: tuple[float, ...]
    losses: torch.Tensor
    train_loss: tuple[float, ...]
    dev_acc: tuple[float, ...]

    @property
    def num_points(self) -> int:
        return len(self.steps)

    def high_loss_share(self, num_labels: int) -> list[float]:
        """Per point, the share of seen rows with a loss above ln(num_labels): worse than a uniform guess,
        i.e. rows the model currently treats as mislabelled (NaN before any row was seen)."""
        threshold = math.log(max(2, num_labels))
        shares = []
        for row in self.losses:
            seen = ~row.isnan()
            count = int(seen.sum())
            shares.append(float((row[seen] > threshold).sum()) / count if count else math.nan)
        return shares


class RecordRowDynamics:
    """A callback: it keeps every row's latest loss and snapshots them whenever the history gains a
    point. `result()` returns the record."""

    def __init__(self, num_rows: int) -> None:
        self.num_rows = num_rows
        self.latest = torch.full((num_rows,), math.nan, dtype=torch.float32)
        self.columns: list[torch.Tensor] = []
        self.points: list[EvalPoint] = []

    def on_step(self, state: TrainState) -> None:
        if state.step > 0 and state.batch_rows:
            index = torch.as_tensor(state.batch_rows, dtype=torch.long)
            self.latest[index] = torch.as_tensor(state.batch_row_losses, dtype=torch.float32)

    def on_evaluate(self, state: TrainState, point: EvalPoint) -> None:
        self.points.append(point)
        self.columns.append(self.latest.clone())

    def result(self) -> RowDynamics:
        losses = torch.stack(self.columns) if self.columns else torch.empty(0, self.num_rows)
        return RowDynamics(
            steps=tuple(p.step for p in self.points),
            epochs=tuple(p.epoch for p in self.points),
            losses=losses,
            train_loss=tuple(p.train_loss for p in self.points),
            dev_acc=tuple(p.dev_acc for p in self.points),
        )
