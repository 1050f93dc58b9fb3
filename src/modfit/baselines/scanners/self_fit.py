"""`self`: a scanner that needs no trusted row, from the paper's own observation. In the moderate-fitting
stage a model has learnt the task but not yet the trigger, so it disputes the labels of dirty poisoned
rows. The training rows are cut into `self_folds` seeded folds (label-stratified by their given
labels); for each fold the victim trains on the other folds for a short, moderate dose (`self_epochs`
at `self_lr`) and predicts the held-out fold, so every row's probabilities come from a model that
never trained on it (cross-fitting). The dose is chosen on one tuning cell (benchmarks/safe_budget/).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from modfit.baselines.base import Context
from modfit.baselines.scanners.base import Scan, ScannerSettings, scanner
from modfit.baselines.scanners.finetune import class_probabilities, fine_tune, test_accuracy
from modfit.config import TrainConfig
from modfit.data import Example


def cross_folds(labels: list[int], folds: int, seed: int) -> list[int]:
    """Each row's fold: every label's rows shuffled (seeded) and dealt round the folds in turn."""
    fold_of = [0] * len(labels)
    rng = random.Random(seed)
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        for turn, i in enumerate(members):
            fold_of[i] = turn % folds
    return fold_of


FoldFit = Callable[[list[Example], list[Example], int], tuple[torch.Tensor, float]]


def cross_fit(rows: list[Example], fold_of: list[int], fit_fold: FoldFit) -> Scan:
    """`fit_fold(train, held, fold)` trains on `train` and returns its probabilities on `held` and its
    test accuracy; each fold's rows are held out of exactly the model that predicts them."""
    probs: torch.Tensor | None = None
    accuracies = []
    for fold in sorted(set(fold_of)):
        held_out = [i for i, f in enumerate(fold_of) if f == fold]
        train = [e for e, f in zip(rows, fold_of, strict=True) if f != fold]
        fold_probs, fold_accuracy = fit_fold(train, [rows[i] for i in held_out], fold)
        probs = probs if probs is not None else torch.zeros(len(rows), fold_probs.shape[1])
        probs[torch.as_tensor(held_out)] = fold_probs
        accuracies.append(fold_accuracy)
    assert probs is not None
    return Scan(probs, sum(accuracies) / len(accuracies))


@scanner("self", trusted=False)
def self_scanner(context: Context, settings: ScannerSettings, trusted: list[Example]) -> Scan:
    rows = context.data.train
    folds = settings.self_folds
    config = TrainConfig(epochs=settings.self_epochs, lr=settings.self_lr, batch_size=settings.batch_size)

    def fit_fold(train: list[Example], held: list[Example], fold: int) -> tuple[torch.Tensor, float]:
        label = f"safe self-scanner, fold {fold + 1} of {folds}"
        tuned = fine_tune(context, train, config, label)
        return class_probabilities(context, tuned, held, settings.scoring_batch_size), test_accuracy(
            context, tuned
        )

    return cross_fit(rows, cross_folds([e.label for e in rows], folds, context.experiment.seed), fit_fold)
