"""Record the model's sentence representation of a few training rows at a few points of training.

The paper's visual analysis: poisoned rows separate from the clean rows of their label only once the
model starts fitting the trigger. `Representations` is a training-loop callback; it keeps a bounded,
seeded sample of clean and poisoned rows and, at the chosen checkpoints, stores what
`model.features(...)` returns for them. A model without a `features` method is skipped with a note.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modfit.errors import ModfitError

if TYPE_CHECKING:
    import numpy

    from modfit.data import Example
    from modfit.encoding import Encoded
    from modfit.train import TrainState


@dataclass(frozen=True)
class RepresentationOptions:
    """`sample` rows at most (half poisoned where there are enough), at `checkpoints` given as shares
    of the run's steps: 0 is the model before any update, 1 the end."""

    sample: int = 200
    checkpoints: tuple[float, ...] = (0.0, 0.5, 1.0)

    def validate(self) -> None:
        if not 2 <= self.sample <= 5000:
            raise ModfitError(f"representations sample {self.sample}: use 2 to 5000 rows")
        if not self.checkpoints or any(not 0.0 <= c <= 1.0 for c in self.checkpoints):
            raise ModfitError(
                f"representations checkpoints {list(self.checkpoints)}: use shares of training in [0, 1]"
            )


@dataclass(frozen=True)
class RepresentationSnapshot:
    """The representation of the sampled rows at one step: `vectors[i]` belongs to row i."""

    step: int
    vectors: numpy.ndarray  # rows × hidden size, float32
    labels: list[int]
    poisoned: list[bool]


def sample_rows(train: list[Example], size: int, seed: int) -> list[int]:
    """Indices of a seeded sample: up to half poisoned rows, the rest clean, in training order."""
    rng = random.Random(seed)
    poisoned = [i for i, e in enumerate(train) if e.poisoned]
    clean = [i for i, e in enumerate(train) if not e.poisoned]
    take_poisoned = min(len(poisoned), size // 2)
    take_clean = min(len(clean), size - take_poisoned)
    return sorted(rng.sample(poisoned, take_poisoned) + rng.sample(clean, take_clean))


class Representations:
    """Training-loop callback: snapshots of `model.features` for `rows` at the checkpoint steps."""

    def __init__(
        self,
        rows: Encoded,
        poisoned: list[bool],
        checkpoints: tuple[float, ...] = (0.0, 0.5, 1.0),
        batch_size: int = 64,
    ) -> None:
        self.rows = rows
        self.poisoned = list(poisoned)
        self.checkpoints = tuple(checkpoints)
        self.batch_size = batch_size
        self.snapshots: list[RepresentationSnapshot] = []
        self.note: str | None = None

    def _steps(self, total_steps: int) -> set[int]:
        return {round(share * total_steps) for share in self.checkpoints}

    def on_step(self, state: TrainState) -> None:
        if state.step in self._steps(state.total_steps):
            self._record(state)

    def on_end(self, state: TrainState) -> None:
        """An early stop ends the run before the last checkpoint: record the end instead."""
        if max(self.checkpoints) == 1.0:
            self._record(state)

    def _record(self, state: TrainState) -> None:
        if self.note is not None or any(s.step == state.step for s in self.snapshots):
            return
        features = getattr(state.model, "features", None)
        if not callable(features):
            self.note = f"{type(state.model).__name__} has no features method: no representation map"
            return
        self.snapshots.append(
            RepresentationSnapshot(
                step=state.step,
                vectors=self._features(state.model, features),
                labels=list(self.rows.labels),
                poisoned=self.poisoned,
            )
        )

    def _features(self, model: Any, features: Any) -> numpy.ndarray:
        from modfit.inference import batched

        return batched(model, self.rows, features, self.batch_size).numpy()
