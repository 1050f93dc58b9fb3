"""A suspicion score per training row from its recorded dynamics, and the cut that flags rows.

Why the mean loss over the moderate-fitting stage: a dirty-label poisoned row carries a label its text
contradicts, so while the model learns the task's main features it is fitted last — its loss stays
above ln(num_labels) until the trigger is learned. Averaging over the points of the stage (from the
first point at which every row was seen, up to the transition) weighs the whole stage rather than one
noisy point. The stage starts at the transition rule's reference point — where clean dev accuracy
reached its plateau, i.e. the task is learned and mislabelled-looking rows stand out; before it every
row's loss is high. `scan` lets it run to the end of training rather than stop at the transition:
a row's recorded loss is the one from its latest batch, up to an epoch old, so the points after the
transition still carry the stage's signal, and once the trigger is learned the poisoned rows' losses
fall to the clean rows' level and add about the same small number to every row, so the ranking
keeps its order while cutting at an early transition would keep only a noisy part of the stage.
The default cut flags rows whose mean is above ln(num_labels): on average worse than a
uniform guess, i.e. the model kept treating them as mislabelled.

Only complete points count (every row seen at least once since training began), since a row's value
is the loss from its latest batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from modfit.auto import signals_of
from modfit.dynamics import RowDynamics
from modfit.errors import ModfitError
from modfit.transition import Transition, TransitionRule, find_transition, reference_point


def stage_points(dynamics: RowDynamics, start: int | None, end: int | None) -> list[int]:
    """The points from `start` to `end` (default: the whole run) at which every row had been seen
    at least once; the nearest such point when none is in the range."""
    first = 0 if start is None else start
    last = dynamics.num_points - 1 if end is None else end
    complete = [i for i in range(dynamics.num_points) if not dynamics.losses[i].isnan().any()]
    points = [i for i in complete if first <= i <= last]
    if points:
        return points
    later = [i for i in complete if i >= first]
    return later[:1] or complete[-1:] or [dynamics.num_points - 1]


def suspicion_scores(dynamics: RowDynamics, start: int | None, end: int | None) -> list[float]:
    """Each row's mean loss over the stage's points (higher: more suspicious); NaN-free."""
    if dynamics.num_points == 0:
        raise ModfitError("no evaluation point was recorded: nothing to score")
    stage = dynamics.losses[stage_points(dynamics, start, end)]
    return torch.nan_to_num(stage.nanmean(0), nan=0.0).tolist()


@dataclass(frozen=True)
class Cut:
    """Which rows to flag: the `top` most suspicious, a `fraction` of the rows, or (neither) every row
    whose score is above ln(num_labels)."""

    top: int | None = None
    fraction: float | None = None

    def validate(self) -> None:
        if self.top is not None and self.fraction is not None:
            raise ModfitError("give --drop-top or --drop-fraction, not both")
        if self.top is not None and self.top < 0:
            raise ModfitError(f"drop top {self.top}: use a row count >= 0")
        if self.fraction is not None and not 0 <= self.fraction < 1:
            raise ModfitError(f"drop fraction {self.fraction}: use a share in [0, 1)")

    def flags(self, scores: list[float], num_labels: int) -> list[bool]:
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        if self.top is None and self.fraction is None:
            return [s > math.log(max(2, num_labels)) for s in scores]
        count = self.top if self.top is not None else round(self.fraction * len(scores))
        chosen = set(order[: min(count, len(scores))])
        return [i in chosen for i in range(len(scores))]


def ranking(scores: list[float]) -> list[int]:
    """Row indices, most suspicious first (ties: lower index first, so the order is deterministic)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def rank_rows(
    dynamics: RowDynamics, num_labels: int, cut: Cut, dev_size: int
) -> tuple[list[float], Transition | None, list[bool]]:
    """Suspicion scores from the start of the moderate-fitting plateau found in hindsight to the end of
    the run (the module docstring says why not only to the transition), and the cut's flags."""
    signals = signals_of(dynamics, num_labels, dev_size)
    transition = find_transition(signals)
    end = transition.index if transition else dynamics.num_points - 1
    start = reference_point(signals, end, TransitionRule()) if end >= 0 else None
    scores = suspicion_scores(dynamics, start, None)
    return scores, transition, cut.flags(scores, num_labels)
