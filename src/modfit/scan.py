"""`modfit scan`: train once while recording every row's loss, find the end of moderate-fitting in
hindsight, and rank the training rows by suspicion. Stages only; `modfit.cli` writes the files.

The ranking sees texts and losses only. The hidden `poisoned` marks are read by `detection`, which a
caller runs after the ranking exists, since a defence never sees them; a test checks that erasing them changes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from modfit.config import Experiment
from modfit.dynamics import RecordRowDynamics, RowDynamics
from modfit.encoding import Encoder
from modfit.errors import ModfitError
from modfit.metrics import detection_scores
from modfit.prepare import PoisonedData, prepare_data
from modfit.result import RunResult
from modfit.suspicion import Cut, rank_rows, ranking
from modfit.training_run import RULE_EVAL_POINTS, train_once
from modfit.transition import Transition


@dataclass(frozen=True)
class ScanResult:
    """Scores by row index, the rows in ranking order, the cut's flags, and what they came from."""

    scores: list[float]
    order: list[int]
    flagged: list[bool]
    transition: Transition | None
    dynamics: RowDynamics
    run: RunResult

    def summary(self) -> dict[str, Any]:
        t = self.transition
        point = self.run.history[t.index] if t and t.index < len(self.run.history) else None
        return {
            "rows": len(self.scores), "flagged": sum(self.flagged),
            "transition_reason": t.reason if t else "none", "transition_step": point.step if point else None,
            "transition_epoch": point.epoch if point else None, "points": self.dynamics.num_points,
        }  # fmt: skip


def scan(
    experiment: Experiment,
    cut: Cut | None = None,
    data: PoisonedData | None = None,
    progress: bool = True,
    encoder: Encoder | None = None,
) -> ScanResult:
    """Train `experiment` once on `data.train`, recording row dynamics, and rank the rows. With an
    automatic evaluation interval the run is evaluated at `RULE_EVAL_POINTS` points, as `select: auto`
    is, so that the stopping rule can confirm the transition in hindsight."""
    data = data or prepare_data(experiment)
    if len(data.train) < 2:
        raise ModfitError("scan needs at least two training rows")
    recorder = RecordRowDynamics(len(data.train))
    run = train_once(experiment, progress, [recorder], data, encoder, eval_points=RULE_EVAL_POINTS)
    dynamics = recorder.result()
    scores, transition, flagged = rank_rows(dynamics, data.splits.num_labels, cut or Cut(), run.dev_size)
    return ScanResult(scores, ranking(scores), flagged, transition, dynamics, run)


def detection(result: ScanResult, truth: list[bool]) -> dict[str, float]:
    """Precision, recall and F1 of the cut and AUROC of the scores against the hidden marks; call it
    only after `scan` has ranked the rows."""
    removed = [i for i, f in enumerate(result.flagged) if f]
    return {
        "removed_rows": len(removed),
        "removed_poisoned": sum(truth[i] for i in removed),
        **detection_scores(result.flagged, result.scores, truth),
    }


def without_flagged(data: PoisonedData, flagged: list[bool]) -> PoisonedData:
    """The same data with the flagged training rows dropped."""
    kept = [e for e, f in zip(data.train, flagged, strict=True) if not f]
    if not kept:
        raise ModfitError("the cut flags every training row; nothing left to train on")
    return dataclasses.replace(data, train=kept)
