"""Purify (beyond the paper): train once recording every row's loss, rank the rows by suspicion over
the moderate-fitting stage (`modfit.scan`), drop the most suspicious, retrain on the rest. The scanning
run is evaluated as densely as `select: auto` so that the same rule can confirm the transition.

The cut is `drop_top` rows, a `drop_fraction` of the rows, or by default every row whose mean loss
over the stage is above ln(num_labels) (docs/defences/auto.md, "Finding the moderate-fitting point").
"""

from __future__ import annotations

from dataclasses import dataclass

from modfit.baselines.base import Context, procedure
from modfit.baselines.filtering import RowVerdict, filter_and_retrain
from modfit.dynamics import RecordRowDynamics
from modfit.result import RunResult
from modfit.suspicion import Cut, rank_rows
from modfit.training_run import RULE_EVAL_POINTS


@dataclass(frozen=True)
class PurifyOptions:
    drop_top: int | None = None
    drop_fraction: float | None = None

    def validate(self) -> None:
        Cut(self.drop_top, self.drop_fraction).validate()


@procedure("purify", PurifyOptions)
def purify(context: Context, options: PurifyOptions) -> RunResult:
    recorder = RecordRowDynamics(len(context.data.train))
    num_labels = context.data.splits.num_labels

    def verdict(result: RunResult, texts: list[str], labels: list[int]) -> RowVerdict:
        scores, transition, flagged = rank_rows(
            recorder.result(), num_labels, Cut(options.drop_top, options.drop_fraction), result.dev_size
        )
        point = result.history[transition.index] if transition else None
        details = {"transition_reason": transition.reason if transition else "none",
                   "transition_step": point.step if point else None}  # fmt: skip
        return RowVerdict(scores, flagged, details)

    return filter_and_retrain(context, verdict, callbacks=[recorder], eval_points=RULE_EVAL_POINTS)
