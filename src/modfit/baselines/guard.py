"""Inference-time guards, shared by STRIP, RAP and ONION: the trained model stays as it is and each
input passes a guard first, which may edit it (ONION) or reject it (STRIP, RAP)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

from modfit.baselines.base import Context
from modfit.baselines.scoring import encode_texts
from modfit.evaluate import predict
from modfit.metrics import accuracy, asr_floor, attack_success_rate, rejection_rate
from modfit.prepare import eval_subset
from modfit.result import Outcome, RunResult

REJECTED = -1  # the guarded model's answer to a rejected input: never a label, never the target


@dataclass(frozen=True)
class Guarded:
    """Inputs after the guard: the texts that reach the model, and which inputs it rejected."""

    texts: list[str]
    rejected: list[bool]


class Guard(Protocol):
    def __call__(self, texts: list[str]) -> Guarded: ...


def guarded_predictions(result: RunResult, passed: Guarded, max_length: int) -> list[int]:
    predictions = predict(result.model, encode_texts(passed.texts, result.tokenizer, max_length))
    return [REJECTED if r else p for p, r in zip(predictions, passed.rejected, strict=True)]


def guard_outcome(
    context: Context, result: RunResult, guard: Guard, rejects: bool, details: dict
) -> RunResult:
    """The result with the guarded model's CACC, ASR and floor (a rejected input counts as wrong on
    clean rows and as a failed attack on triggered rows), the unguarded model's as `model_*`, and,
    for a guard that rejects, FRR on clean test rows and FAR on triggered ones."""
    experiment = context.experiment
    _, test, test_poison = eval_subset(context.data, experiment.train.eval_size, experiment.seed)
    max_length = experiment.model.max_length
    labels = [e.label for e in test]
    passed = guard([e.text for e in test])
    clean = guarded_predictions(result, passed, max_length)
    metrics = {"model_cacc": result.final.cacc, "model_asr": result.final.asr,
               "model_asr_floor": result.final.asr_floor, "cacc": accuracy(clean, labels)}  # fmt: skip
    if rejects:
        metrics["frr"] = rejection_rate(passed.rejected)
    if test_poison is not None:
        target = context.data.target
        passed_poison = guard([e.text for e in test_poison.examples])
        triggered = guarded_predictions(result, passed_poison, max_length)
        sources = test_poison.sources if test_poison.sources is not None else range(len(test))
        metrics["asr"] = attack_success_rate(triggered, target)
        metrics["asr_floor"] = asr_floor([clean[i] for i in sources], [labels[i] for i in sources], target)
        if rejects:
            metrics["far"] = 1.0 - rejection_rate(passed_poison.rejected)
    return dataclasses.replace(result, defence=Outcome({**metrics, **details}, details=dict(details)))
