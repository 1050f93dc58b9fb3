"""Clean accuracy on dev and test, attack success rate and its floor, from one model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from modfit.encoding import Encoded
from modfit.inference import predict
from modfit.metrics import accuracy, asr_floor, attack_success_rate


@dataclass(frozen=True)
class EvalSet:
    """What evaluation sees: clean dev and test, and the triggered test rows with their sources.

    `sources[i]` indexes the clean test row that triggered row i came from; the ASR floor is measured
    on those clean rows. `sources=None` means every non-target test row (a user-supplied poison test).
    """

    dev: Encoded
    test: Encoded
    poison: Encoded | None
    sources: list[int] | None
    target: int


@dataclass(frozen=True)
class Scores:
    dev_acc: float
    cacc: float
    asr: float
    asr_floor: float


def evaluate(model: torch.nn.Module, data: EvalSet, precision: str = "fp32") -> Scores:
    """Scores of `model` on `data`; `precision` is the run's (`modfit.precision`), for its autocast."""
    test_predictions = predict(model, data.test, precision)
    cacc = accuracy(test_predictions, data.test.labels)
    dev_acc = accuracy(predict(model, data.dev, precision), data.dev.labels)
    if data.poison is None:
        return Scores(dev_acc, cacc, float("nan"), float("nan"))
    sources = data.sources if data.sources is not None else range(len(data.test))
    floor = asr_floor(
        [test_predictions[i] for i in sources], [data.test.labels[i] for i in sources], data.target
    )
    return Scores(
        dev_acc=dev_acc,
        cacc=cacc,
        asr=attack_success_rate(predict(model, data.poison, precision), data.target),
        asr_floor=floor,
    )
