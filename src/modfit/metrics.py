"""Pure functions from predictions to the numbers modfit reports (docs/getting-started.md, "The protocol in brief")."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

# An ASR floor this high: the model calls nearly every clean non-target input the target (the report's
# "(no task)").
NO_TASK_FLOOR = 0.9


def learned_nothing(cacc: float, asr_floor: float, majority_share: float) -> bool:
    """Whether a model learned no task: its clean accuracy is no better than always answering the test
    set's most common label, or (where triggered rows give a floor) it calls at least `NO_TASK_FLOOR` of
    the clean non-target inputs the target. Its ASR then measures no backdoor."""
    return cacc <= majority_share or (not math.isnan(asr_floor) and asr_floor >= NO_TASK_FLOOR)


def majority_share(labels: Sequence[int]) -> float:
    """The most common label's share: the accuracy of a model that always answers it."""
    return max(Counter(labels).values()) / len(labels) if labels else float("nan")


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


def auroc(scores: Sequence[float], truth: Sequence[bool]) -> float:
    """Area under the ROC curve of a suspicion score (higher = more suspicious): the chance that a
    random poisoned row scores above a random clean one, ties counting half (Mann-Whitney U).

    Written by hand (a rank sum) so that the core needs no scikit-learn.
    """
    if len(scores) != len(truth):
        raise ValueError(f"{len(scores)} scores for {len(truth)} rows")
    positives = sum(map(bool, truth))
    negatives = len(truth) - positives
    if not positives or not negatives:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):  # average ranks over ties
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    rank_sum = sum(r for r, t in zip(ranks, truth, strict=True) if t)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def detection_scores(
    flagged: Sequence[bool], scores: Sequence[float], truth: Sequence[bool]
) -> dict[str, float]:
    """Precision, recall and F1 of the flags and AUROC of the scores against the hidden poisoned marks,
    computed only after a defence has chosen its rows: a defence never sees which rows are poisoned.

    A defence that flags nothing has precision nan (no flag to be right or wrong about) and F1 0.
    """
    if not len(flagged) == len(scores) == len(truth):
        raise ValueError(f"{len(flagged)} flags and {len(scores)} scores for {len(truth)} rows")
    hits = sum(bool(f and t) for f, t in zip(flagged, truth, strict=True))
    flags, positives = sum(map(bool, flagged)), sum(map(bool, truth))
    return {
        "precision": hits / flags if flags else float("nan"),
        "recall": hits / positives if positives else float("nan"),
        "f1": 2 * hits / (flags + positives) if flags + positives else float("nan"),
        "auroc": auroc(scores, truth),
    }


def rejection_rate(rejected: Sequence[bool]) -> float:
    """Share of inputs a guard rejects: on clean rows the false rejection rate (FRR); one minus it on
    triggered rows is the false acceptance rate (FAR)."""
    if not rejected:
        return float("nan")
    return sum(map(bool, rejected)) / len(rejected)
