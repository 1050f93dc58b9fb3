"""Clean accuracy on dev and test, attack success rate and its floor, from one model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from modfit.encoding import Encoded
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


@torch.no_grad()
def predict(model: torch.nn.Module, data: Encoded, batch_size: int = 128) -> list[int]:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    predictions: list[int] = []
    for start in range(0, len(data), batch_size):
        inputs, _ = data.batch(range(start, min(start + batch_size, len(data))), device)
        predictions += model(**inputs).argmax(-1).tolist()
    model.train(was_training)
    return predictions


def evaluate(model: torch.nn.Module, data: EvalSet) -> Scores:
    test_predictions = predict(model, data.test)
    cacc = accuracy(test_predictions, data.test.labels)
    if data.poison is None:
        return Scores(accuracy(predict(model, data.dev), data.dev.labels), cacc, float("nan"), float("nan"))
    sources = data.sources if data.sources is not None else range(len(data.test))
    floor = asr_floor(
        [test_predictions[i] for i in sources], [data.test.labels[i] for i in sources], data.target
    )
    return Scores(
        dev_acc=accuracy(predict(model, data.dev), data.dev.labels),
        cacc=cacc,
        asr=attack_success_rate(predict(model, data.poison), data.target),
        asr_floor=floor,
    )
