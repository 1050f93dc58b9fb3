"""Where moderate-fitting ends: a pure function of what a defender has at each evaluation point.

Inputs per point: clean dev accuracy (NaN without a dev split), the mean training loss, and the share of
training rows whose latest loss is above ln(num_labels) — worse than a uniform guess, i.e. rows the
model treats as mislabelled. Never the `poisoned` flags, never poisoned evaluation data: a defender has neither.

Why these signals. With dirty-label poisoning the poisoned rows carry the target label on texts whose
content says otherwise. While the model learns the task's main features (moderate-fitting) those rows
look mislabelled: their loss rises above ln(num_labels) while the clean rows are fitted, so the
high-loss share falls from about one half to about the poison rate plus the genuinely hard rows and
stays there. When the model starts learning the trigger (overfitting), the poisoned rows are fitted
all at once and the share falls again, sharply, while clean dev accuracy no longer improves — the
trigger teaches nothing about clean inputs. On clean data the same fall comes later and slower, from
memorising hard rows, again with flat dev accuracy: stopping there costs no clean accuracy.

The rule, checked at every point j of the prefix seen so far:

1. `plateau` — the *reference* point b is the earliest point within `tolerance` of the best dev
   accuracy so far (without dev: the first point after which the high-loss share stopped falling
   fast, by less than `settle` of its value per point).
2. `high-loss-fall` — fire when the high-loss share at j has fallen to `1 - drop` of its highest
   value over the last `patience` points since b — a sharp fall, not the slow decay of memorising
   hard rows — (and that value was at least `min_share`, so an empty share cannot "fall") while dev accuracy at j
   is no more than `tolerance` above every earlier point (a fall while dev accuracy still rises is the
   task being learned, not the trigger); the transition is the
   last point from b on that still held at least `1 - drop / 2` of it: the last checkpoint before the
   rows that looked mislabelled started to be fitted.
3. `dev-plateau` — otherwise, classic early stopping: fire when dev accuracy has not improved by
   more than `min_delta` for `dev_patience` points, once it has risen above the untrained model's by
   more than the noise of a dev accuracy (a slow start is not a plateau); the transition is the best dev
   point. The noise is two standard errors of an accuracy near the untrained model's on `dev_size`
   rows, at least `tolerance`: a reparameterized run that starts at chance moves dev accuracy by a
   few points just by predicting more of one class, and a smaller margin reads the flat stretch
   after that as the end of learning. `dev_patience` is 5, not 3, for the same noise: a dev accuracy
   on a few hundred rows moves by a few points by chance, and a still-rising curve can hide under it
   for three points (benchmarks/sst2_defences/results.md has the runs).

Both fire online on the prefix (`find_transition` on points 0..j), so training can stop there.
The mean training loss travels with the signals but no rule reads it yet: it is the mean of the few
batches between two points, noisy, and it falls throughout training, mixing the clean rows' fitting
with the poisoned rows' (benchmarks/auto_sanity/results.md); the share isolates the rows that look
mislabelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TransitionRule:
    patience: int = 3
    dev_patience: int = 5
    min_delta: float = 0.005
    tolerance: float = 0.01
    drop: float = 0.4
    min_share: float = 0.02
    settle: float = 0.15


@dataclass(frozen=True)
class Signals:
    """One value per evaluation point; point 0 is the model before training (its share is NaN).
    `dev_size`: the rows behind each dev accuracy (0: unknown, the margin is then `tolerance`)."""

    dev_acc: Sequence[float]
    train_loss: Sequence[float]
    high_loss_share: Sequence[float]
    dev_size: int = 0


@dataclass(frozen=True)
class Transition:
    index: int  # the point where moderate-fitting ends: the checkpoint to keep
    confirmed_at: int  # the first point at which the rule could tell
    reason: str  # "high-loss-fall" or "dev-plateau"


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(value)


def reference_point(signals: Signals, end: int, rule: TransitionRule) -> int | None:
    """The start of the plateau within points 0..end (None: the share has not settled yet)."""
    has_dev = any(_finite(d) for d in signals.dev_acc)
    if has_dev:
        dev = [d if _finite(d) else -math.inf for d in signals.dev_acc[: end + 1]]
        best = max(dev)
        return next(i for i, d in enumerate(dev) if d >= best - rule.tolerance)
    share = signals.high_loss_share
    for i in range(1, end + 1):
        if _finite(share[i - 1]) and _finite(share[i]) and share[i] >= share[i - 1] * (1 - rule.settle):
            return i - 1 if share[i] > share[i - 1] else i
    return None


def _dev_flat(signals: Signals, j: int, rule: TransitionRule) -> bool:
    """Dev accuracy at j is no more than `tolerance` above every earlier point (true without dev): a
    fall of the high-loss share while dev accuracy still rises is the task being learned."""
    earlier = [d for d in signals.dev_acc[:j] if _finite(d)]
    now = signals.dev_acc[j]
    return not earlier or not _finite(now) or now <= max(earlier) + rule.tolerance


def learning_margin(start: float, dev_size: int, rule: TransitionRule) -> float:
    """How far above the untrained model's dev accuracy `start` a point must be to count as learned:
    two standard errors of an accuracy near `start` on `dev_size` rows, at least `tolerance`."""
    if dev_size <= 0:
        return rule.tolerance
    return max(rule.tolerance, 2 * math.sqrt(start * (1 - start) / dev_size))


def _learned(signals: Signals, best: int, rule: TransitionRule) -> bool:
    """The best point is above the untrained model's dev accuracy by more than the noise: a plateau
    before learning has started (a slow start) is not the end of anything."""
    start = signals.dev_acc[0]
    if not _finite(start):
        return True
    return signals.dev_acc[best] > start + learning_margin(start, signals.dev_size, rule)


def _best_dev(dev: Sequence[float], end: int, min_delta: float) -> int:
    best = 0
    for i in range(1, end + 1):
        if _finite(dev[i]) and (not _finite(dev[best]) or dev[i] > dev[best] + min_delta):
            best = i
    return best


def find_transition(signals: Signals, rule: TransitionRule | None = None) -> Transition | None:
    """The first transition the rule confirms, scanning the points in order; None if none is seen."""
    rule = rule or TransitionRule()
    count = len(signals.high_loss_share)
    if not len(signals.dev_acc) == len(signals.train_loss) == count:
        raise ValueError("signals: every curve needs one value per evaluation point")
    has_dev = any(_finite(d) for d in signals.dev_acc)
    share = signals.high_loss_share
    for j in range(1, count):
        reference = reference_point(signals, j - 1, rule)
        if reference is not None and _finite(share[j]) and _dev_flat(signals, j, rule):
            window = [share[i] for i in range(max(reference, j - rule.patience), j) if _finite(share[i])]
            start = max(window, default=math.nan)
            if _finite(start) and start >= rule.min_share and share[j] <= (1 - rule.drop) * start:
                keep = max(
                    i
                    for i in range(reference, j)
                    if _finite(share[i]) and share[i] >= (1 - rule.drop / 2) * start
                )
                return Transition(keep, j, "high-loss-fall")
        if has_dev:
            best = _best_dev(signals.dev_acc, j, rule.min_delta)
            if j - best >= rule.dev_patience and _learned(signals, best, rule):
                return Transition(best, j, "dev-plateau")
    return None
