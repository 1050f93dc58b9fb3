"""The defence-procedure interface: a baseline defence is a procedure of training stages and scoring.

A preset defence (`modfit.defences`) only changes settings; a baseline needs steps — train, score the
training rows, drop the suspicious ones, retrain; or train, then guard the model's inputs. `run()`
hands an experiment whose defence has a registered procedure to it. The procedure trains only through
`Context.train` (the one training loop, via `train_once`) and returns a normal `RunResult` whose
`defence` adds the procedure's own numbers to `metrics()`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from modfit.config import Experiment
from modfit.data import Example
from modfit.defences import DEFENCES, base_defence
from modfit.encoding import Encoder
from modfit.prepare import PoisonedData, prepare_data
from modfit.result import RunResult
from modfit.training_run import train_once

Options = TypeVar("Options")


@dataclass(frozen=True)
class Context:
    """What a procedure works with. `data.train` still carries the hidden `poisoned` marks: only the
    training loop and the after-the-fact detection scores may touch it; scoring sees texts and labels."""

    experiment: Experiment
    data: PoisonedData
    progress: bool
    extra_callbacks: tuple[object, ...]
    encoder: Encoder

    def train(
        self,
        rows: list[Example] | None = None,
        final: bool = True,
        callbacks: Sequence[object] = (),
        eval_points: int | None = None,
    ) -> RunResult:
        """One training stage on `rows` (default: the whole training set). The caller's callbacks
        (e.g. a grid's representation recorder) watch only the final stage; `callbacks` are the
        procedure's own (e.g. a row-dynamics recorder) for this stage, and `eval_points` its
        evaluation density (`train_once`)."""
        data = self.data if rows is None else dataclasses.replace(self.data, train=rows)
        watchers = (*(self.extra_callbacks if final else ()), *callbacks)
        return train_once(
            self.experiment, self.progress, watchers, data, self.encoder, eval_points=eval_points
        )


def procedure(
    name: str, options: type[Options], image: dict[str, Any] | None = None
) -> Callable[[Callable], Callable]:
    """Register `function(context, options) -> RunResult` as the procedure of defence `name`, with its
    options record: the baseline's `Defence` (`modfit.defences`). Its training stages use the user's
    settings; text-only unless `image` gives its settings for images (`{}`: none changed)."""
    return DEFENCES.register(name, options, image=image)


def parse_options(experiment: Experiment) -> Any:
    """The experiment's `defence_options` as its defence's typed options (unknown keys are errors; a
    preset takes none)."""
    return DEFENCES.parse(base_defence(experiment.defence), experiment.defence_options)


def run_procedure(
    experiment: Experiment,
    progress: bool,
    extra_callbacks: Sequence[object],
    data: PoisonedData | None,
    encoder: Encoder,
) -> RunResult:
    """Run the experiment's defence procedure; the result's `seconds` cover every stage."""
    started = time.perf_counter()
    options = parse_options(experiment)
    context = Context(experiment, data or prepare_data(experiment), progress, tuple(extra_callbacks), encoder)
    result = DEFENCES.get(base_defence(experiment.defence)).procedure(context, options)
    return dataclasses.replace(result, seconds=time.perf_counter() - started)
