"""Optional behaviour of the training loop: evaluation, best-dev selection, progress."""

from __future__ import annotations

import math
import time

from tqdm.auto import tqdm

from modfit.evaluate import EvalSet, evaluate
from modfit.train import EvalPoint, TrainState, trainable_weights


class Evaluate:
    """Score the model every `every` steps, at step 0 and at the end; append to the history.

    Intermediate points are scored on `data`, the last step of the schedule on `final` (default
    `data`): the evaluation budget puts intermediate points on subsets (`modfit.schedule`).
    `full_steps` lists the steps scored on `final`."""

    def __init__(self, data: EvalSet, every: int, final: EvalSet | None = None) -> None:
        self.data = data
        self.final = final or data
        self.every = every
        self.started = time.perf_counter()
        self.losses_seen = 0
        self.full_steps: set[int] = set()

    def on_step(self, state: TrainState) -> None:
        if state.step == 0:
            self.started = time.perf_counter()
        if state.step == state.total_steps:
            self._record(state, self.final)
        elif state.step % self.every == 0:
            self._record(state, self.data)

    def on_stop(self, state: TrainState) -> None:
        if not state.history or state.history[-1].step != state.step:
            self._record(state, self.final)

    def _record(self, state: TrainState, data: EvalSet) -> None:
        recent = state.losses[self.losses_seen :]
        self.losses_seen = len(state.losses)
        scores = evaluate(state.model, data, state.precision)
        if data is self.final:
            self.full_steps.add(state.step)
        state.history.append(
            EvalPoint(
                step=state.step,
                epoch=round(state.epoch, 4),
                train_loss=sum(recent) / len(recent) if recent else math.nan,
                dev_acc=scores.dev_acc,
                cacc=scores.cacc,
                asr=scores.asr,
                asr_floor=scores.asr_floor,
                seconds=round(time.perf_counter() - self.started, 2),
            )
        )


class KeepBestDev:
    """Restore, at the end, the trainable weights of the point with the best clean dev accuracy.

    Only clean dev data chooses, never poisoned data: a defender has no poisoned data to choose with.
    """

    def __init__(self) -> None:
        self.best: EvalPoint | None = None
        self.weights: dict | None = None

    def on_evaluate(self, state: TrainState, point: EvalPoint) -> None:
        if self.best is None or point.dev_acc > self.best.dev_acc:
            self.best = point
            self.weights = trainable_weights(state.model)

    def on_end(self, state: TrainState) -> None:
        if self.weights is not None:
            state.model.load_state_dict(self.weights, strict=False)


class Progress:
    """A tqdm bar over steps showing the latest evaluation."""

    def __init__(self, description: str = "train") -> None:
        self.description = description
        self.bar: tqdm | None = None

    def on_step(self, state: TrainState) -> None:
        if self.bar is None:
            self.bar = tqdm(total=state.total_steps, desc=self.description, leave=False)
        self.bar.n = state.step
        self.bar.refresh()

    def on_evaluate(self, state: TrainState, point: EvalPoint) -> None:
        if self.bar is not None:
            self.bar.set_postfix(cacc=f"{point.cacc:.3f}", asr=f"{point.asr:.3f}")

    def on_end(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()
