"""Pure functions from predictions to the numbers modfit reports (DESIGN.md §1)."""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    if not labels:
        return float("nan")
    return sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(labels)


def attack_success_rate(predictions_on_triggered: Sequence[int], target: int) -> float:
    """Share of triggered non-target rows predicted as the target."""
    if not predictions_on_triggered:
        return float("nan")
    return sum(p == target for p in predictions_on_triggered) / len(predictions_on_triggered)


def asr_floor(predictions_on_clean: Sequence[int], labels: Sequence[int], target: int) -> float:
    """Share of the same non-target rows, without the trigger, predicted as the target."""
    non_target = [p for p, y in zip(predictions_on_clean, labels, strict=True) if y != target]
    return attack_success_rate(non_target, target)
