"""`select: auto` — stop at the end of moderate-fitting and keep that checkpoint (docs/defences/auto.md,
"Finding the moderate-fitting point").

Why stop *and* restore: the rule (`modfit.transition`) confirms a transition a few points after it
happened (it needs to see the fall or the plateau), so training stops at confirmation — the rest of
the schedule would only teach the trigger and costs time — and the trainable weights go back to the
transition point, as `KeepBestDev` restores the best dev point. Memory stays bounded: weights are kept
(on the CPU) for the current reference point and the last `max(patience, dev_patience) + 2` points only; a transition
older than those falls back to the nearest kept point before it.
"""

from __future__ import annotations

import torch

from modfit.dynamics import RecordRowDynamics, RowDynamics
from modfit.train import EvalPoint, TrainState, trainable_weights
from modfit.transition import Signals, Transition, TransitionRule, find_transition, reference_point


def signals_of(dynamics: RowDynamics, num_labels: int, dev_size: int = 0) -> Signals:
    share = dynamics.high_loss_share(num_labels)
    return Signals(dynamics.dev_acc, dynamics.train_loss, share, dev_size)


class AutoSelect:
    """A callback: records the row dynamics, checks the rule at every new point, stops
    training once a transition is confirmed and restores its weights at the end. `best` is the kept
    point (the last one when no transition was seen); `dynamics()` the record. `dev_size`: the clean
    dev rows behind each dev accuracy, for the rule's noise margin."""

    def __init__(
        self, num_rows: int, num_labels: int, rule: TransitionRule | None = None, dev_size: int = 0
    ) -> None:
        self.recorder = RecordRowDynamics(num_rows)
        self.num_labels = num_labels
        self.dev_size = dev_size
        self.rule = rule or TransitionRule()
        self.transition: Transition | None = None
        self.kept: dict[int, dict[str, torch.Tensor]] = {}

    @property
    def points(self) -> list[EvalPoint]:
        return self.recorder.points

    @property
    def best(self) -> EvalPoint | None:
        if not self.points:
            return None
        return self.points[self.transition.index] if self.transition else self.points[-1]

    def dynamics(self) -> RowDynamics:
        return self.recorder.result()

    def signals(self) -> Signals:
        return signals_of(self.dynamics(), self.num_labels, self.dev_size)

    def on_step(self, state: TrainState) -> None:
        self.recorder.on_step(state)

    def on_evaluate(self, state: TrainState, point: EvalPoint) -> None:
        self.recorder.on_evaluate(state, point)
        if self.transition is not None:
            return
        index = len(self.points) - 1
        self.kept[index] = trainable_weights(state.model)
        signals = self.signals()  # once per point: it restacks every recorded loss
        found = find_transition(signals, self.rule)
        if found is not None:
            self.transition = found
            state.stop = True
            return
        self._forget(index, signals)

    def _forget(self, index: int, signals: Signals) -> None:
        """Keep the reference point's weights and the last `max(patience, dev_patience) + 2` points'."""
        reference = reference_point(signals, index, self.rule)
        keep_from = index - max(self.rule.patience, self.rule.dev_patience) - 2
        for old in [i for i in self.kept if i < keep_from and i != reference]:
            del self.kept[old]

    def on_end(self, state: TrainState) -> None:
        if self.transition is None:
            return
        chosen = max((i for i in self.kept if i <= self.transition.index), default=None)
        if chosen is not None:
            state.model.load_state_dict(self.kept[chosen], strict=False)
        self.kept.clear()

    def metrics(self) -> dict[str, object]:
        """What the run reports about the rule's choice."""
        point = self.best
        return {
            "auto_reason": self.transition.reason if self.transition else "none",
            "auto_step": point.step if point else None,
            "auto_epoch": point.epoch if point else None,
            "auto_stopped_at": self.points[self.transition.confirmed_at].step if self.transition else None,
        }
