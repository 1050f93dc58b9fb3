"""When a run is evaluated, and on how many rows: evaluation whose cost is a bounded share.

A training row costs about three forward passes (forward and backward), an evaluation row one. The
intermediate points of a run (step 0 and every `every` steps) together may cost at most `eval_share`
of the training compute: `eval_share × 3 × steps × batch_size` evaluation rows. They are scored on a
seeded subset of `subset` rows of dev and of test (the triggered rows follow the chosen test rows),
never smaller than `MIN_SUBSET`; where even that is too dear, a plain run has fewer points, while a
run whose stopping rule needs its points (`select: auto`, the scanning runs) keeps them and spends
more than the share. The final point
is scored on the full sets, and so is the point a selection rule keeps. Step 0 is always evaluated:
the untrained model is the reference of the dynamics and of the stopping rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modfit.config import TrainConfig

TRAIN_ROW_COST = 3
MIN_SUBSET = 200


@dataclass(frozen=True)
class EvalSizes:
    """Rows of the full evaluation sets: clean dev, clean test, triggered test."""

    dev: int
    test: int
    poison: int

    def cost(self, subset: int | None) -> float:
        """Evaluation rows scored at one point on a `subset` (None: the full sets)."""
        if subset is None:
            return self.dev + self.test + self.poison
        kept = min(subset, self.test) / self.test if self.test else 0.0
        return min(subset, self.dev) + min(subset, self.test) + self.poison * kept


@dataclass(frozen=True)
class EvalPlan:
    """Evaluate every `every` steps; intermediate points on a `subset` of rows (None: the full sets)."""

    every: int
    subset: int | None


def plan_evaluation(
    total_steps: int, config: TrainConfig, sizes: EvalSizes, points: int, keep_points: bool = False
) -> EvalPlan:
    """The interval and intermediate subset of a run aiming at `points` intermediate evaluations
    (every `total_steps // points` steps, as without a budget).

    An explicit `eval_size` (every point on that subset) or `eval_share: 0` keeps every point on the
    sets given. An explicit `eval_every`, or `keep_points`, fixes the points; the subset then shrinks
    to fit, not below `MIN_SUBSET`. Otherwise a budget too small for `points` points at `MIN_SUBSET`
    rows buys fewer points."""
    every = config.eval_every or max(1, total_steps // points)
    if config.eval_size is not None or config.eval_share == 0:
        return EvalPlan(every, None)
    budget = config.eval_share * TRAIN_ROW_COST * total_steps * config.batch_size
    subset = _largest_subset(budget / math.ceil(total_steps / every), sizes)
    if subset < MIN_SUBSET:
        subset = MIN_SUBSET
        if not (config.eval_every or keep_points):
            affordable = max(1, math.floor(budget / sizes.cost(MIN_SUBSET)))
            every = max(every, math.ceil(total_steps / affordable))
    return EvalPlan(every, None if subset >= max(sizes.dev, sizes.test) else subset)


def _largest_subset(rows: float, sizes: EvalSizes) -> int:
    """The largest subset whose point costs at most `rows` (at least 1)."""
    per_row = 2 + (sizes.poison / sizes.test if sizes.test else 0.0)
    return max(1, math.floor(rows / per_row))
