"""Training-time filtering, shared by BKI, CUBE and STRIP's filter mode: train on everything, score
every training row, drop the flagged ones, retrain on the rest."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modfit.baselines.base import Context
from modfit.errors import ModfitError
from modfit.metrics import detection_scores
from modfit.result import Outcome, RunResult


@dataclass(frozen=True)
class RowVerdict:
    """A filter's judgement of the training rows: a suspicion score each (higher = more suspicious,
    for AUROC), the rows it drops, and what it found (keywords, thresholds) for the metrics."""

    scores: list[float]
    flagged: list[bool]
    details: dict[str, Any] = field(default_factory=dict)


# (model trained on all rows, texts, labels) -> verdict. Texts and labels only: no `poisoned` mark.
RowScorer = Callable[[RunResult, list[str], list[int]], RowVerdict]


def filter_and_retrain(
    context: Context, score: RowScorer, callbacks: Sequence[object] = (), eval_points: int | None = None
) -> RunResult:
    """`callbacks` watch the first (scoring) stage, e.g. a recorder the scorer reads, evaluated at
    `eval_points` points when the interval is automatic."""
    rows = context.data.train
    first = context.train(final=False, callbacks=callbacks, eval_points=eval_points)
    verdict = score(first, [e.text for e in rows], [e.label for e in rows])
    if len(verdict.flagged) != len(rows):
        raise ValueError(f"{len(verdict.flagged)} flags for {len(rows)} training rows")
    kept = [e for e, flagged in zip(rows, verdict.flagged, strict=True) if not flagged]
    if not kept:
        raise ModfitError(
            f"{context.experiment.defence} flagged every training row; nothing left to train on"
        )
    final = context.train(kept)
    truth = [e.poisoned for e in rows]  # read only now, after the verdict: the defence never saw them
    removed = tuple(i for i, flagged in enumerate(verdict.flagged) if flagged)
    metrics = {
        "removed_rows": len(removed),
        "removed_poisoned": sum(truth[i] for i in removed),
        **detection_scores(verdict.flagged, verdict.scores, truth),
        "scoring_cacc": first.final.cacc,
        "scoring_asr": first.final.asr,
        **verdict.details,
    }
    return dataclasses.replace(final, defence=Outcome(metrics, removed, dict(verdict.details)))
