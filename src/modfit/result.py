"""The record of one run, and what a defence procedure or the stopping rule adds to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from modfit.config import Experiment
from modfit.metrics import learned_nothing
from modfit.schedule import EvalPlan
from modfit.train import EvalPoint

# What a defence did with a training row it judged (`RowDecision.action`).
ROW_ACTIONS = ("kept", "relabelled", "dropped")


@dataclass(frozen=True)
class RowDecision:
    """A defence's verdict on one training row, named as the user's file names it (`Example.row`):
    the text and label as trained on before the defence, the label its scanner gives, how suspicious
    the row looked (higher: more), whether it was flagged, and what was done (`ROW_ACTIONS`)."""

    row: int | None
    text: str
    label: int
    scanner_label: int
    suspicion: float
    flagged: bool
    action: str

    @property
    def corrected_label(self) -> int:
        return self.scanner_label if self.action == "relabelled" else self.label


@dataclass(frozen=True)
class Outcome:
    """What a defence procedure or the `select: auto` rule adds to its final run: numbers for
    `metrics()` (they override the final model's CACC/ASR where a guard changes them) and, for
    analyses, the training rows it removed; `rows`, a row-judging defence's verdict on every training
    row, for the user (the output layer writes them as `rows.csv`)."""

    metrics: dict[str, Any]
    removed: tuple[int, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    rows: tuple[RowDecision, ...] = ()


@dataclass(frozen=True)
class RunResult:
    experiment: Experiment
    history: list[EvalPoint]
    final: EvalPoint
    trainable_params: int
    seconds: float
    eval_subset: int | None
    model: torch.nn.Module
    tokenizer: Any
    generated_params: int = 0
    defence: Outcome | None = None  # what a defence procedure or the auto rule adds
    dev_size: int = 0  # clean dev rows behind each intermediate dev accuracy (what selection compared)
    precision: str = "fp32"  # the precision the run used (`train.precision` resolved on its device)
    eval_plan: EvalPlan | None = None  # the interval and intermediate subset of its evaluation
    majority_share: float = 0.0  # the clean test split's most common label's share: CACC of no task

    @property
    def learned_nothing(self) -> bool:
        """The final model learned no task (`modfit.metrics.learned_nothing`, the report's "(no task)"):
        `metrics()["no_task"]`, and `modfit.run` warns."""
        return self.metrics()["no_task"]

    def metrics(self) -> dict[str, Any]:
        f = self.final
        measured = {
            "cacc": f.cacc, "asr": f.asr, "asr_floor": f.asr_floor, "dev_acc": f.dev_acc,
            "step": f.step, "epoch": f.epoch, "trainable_params": self.trainable_params,
            "generated_params": self.generated_params, "seconds": round(self.seconds, 2),
            "eval_subset": self.eval_subset, "compute_precision": self.precision,
            "eval_every": self.eval_plan.every if self.eval_plan else None,
            "eval_intermediate_subset": self.eval_plan.subset if self.eval_plan else None,
            **(self.defence.metrics if self.defence else {}),
        }  # fmt: skip
        floor = measured["asr_floor"]
        no_task = learned_nothing(
            measured["cacc"], float("nan") if floor is None else floor, self.majority_share
        )
        return {**measured, "no_task": no_task}
