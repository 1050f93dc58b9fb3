"""`self`: a scanner that needs no trusted row, from the paper's own observation. In the moderate-fitting
stage a model has learnt the task but not yet the trigger, so it disputes the labels of dirty poisoned
rows. The training rows are cut into `self_folds` seeded folds (label-stratified by their given
labels); for each fold the victim trains on the other folds for a short, moderate dose (`self_epochs`
at `self_lr`) and predicts the held-out fold, so every row's probabilities come from a model that
never trained on it (cross-fitting). The dose is chosen on one tuning cell (benchmarks/safe_budget/).

`self_mask` (a purity in (0.5, 1]; 0: off) hides an insertion trigger from the fold models. Dirty-label
poison puts its trigger only on rows of the target label, so the trigger's words and word pairs are
*label-pure*: carried by many rows, nearly all of one label. Every word or adjacent word pair
(`trigger_features.text_features`) carried by at least `MASK_MIN_ROWS` training rows, at least a share
`self_mask` of them of one label, is cut out of every text the scanner sees (training, held-out and test
rows). A fold model then cannot learn the trigger, and the poisoned rows' remaining words contradict
their label. Clean label-pure words ("bitch" on HSOL) are cut too: the scanner loses its strongest cues,
the final model keeps them (it trains on the original texts). A paraphrase trigger has no pure word.

Trusted rows, where there are some, join every fold model's training rows, masked alike: 100 of them
lift the fold models by one to two points (benchmarks/safe_budget/, rule 5).
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable, Sequence

import torch

from modfit.baselines.base import Context
from modfit.baselines.scanners.base import Scan, ScannerSettings, clean_test, scanner
from modfit.baselines.scanners.finetune import class_probabilities, fine_tune, test_accuracy
from modfit.baselines.trigger_features import text_features
from modfit.config import TrainConfig
from modfit.data import Example

MASK_MIN_ROWS = 20  # rows that must carry a word (pair) before its label purity means anything


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


def pure_features(texts: Sequence[str], labels: Sequence[int], purity: float) -> frozenset[str]:
    """The words and word pairs carried by at least MASK_MIN_ROWS rows, at least `purity` of them of one
    label (the module's docstring)."""
    carried: Counter[str] = Counter()
    by_label: Counter[tuple[str, int]] = Counter()
    for text, label in zip(texts, labels, strict=True):
        for feature in text_features(text):
            carried[feature] += 1
            by_label[feature, label] += 1
    top: Counter[str] = Counter()
    for (feature, _), count in by_label.items():
        top[feature] = max(top[feature], count)
    return frozenset(f for f, n in carried.items() if n >= MASK_MIN_ROWS and top[f] >= purity * n)


def masked(text: str, features: frozenset[str]) -> str:
    """`text` without its tokens that are a masked word or belong to a masked adjacent pair."""
    tokens = text.split()
    lowered = [t.lower() for t in tokens]
    cut = {i for i, t in enumerate(lowered) if t in features}
    for i in range(len(tokens) - 1):
        if f"{lowered[i]} {lowered[i + 1]}" in features:
            cut |= {i, i + 1}
    return " ".join(t for i, t in enumerate(tokens) if i not in cut)


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


@scanner("self", needs_trusted=False)
def self_scanner(context: Context, settings: ScannerSettings, trusted: list[Example]) -> Scan:
    rows = context.data.train
    folds = settings.self_folds
    config = TrainConfig(epochs=settings.self_epochs, lr=settings.self_lr, batch_size=settings.batch_size)
    test = clean_test(context)
    if settings.self_mask > 0:
        mask = pure_features([e.text for e in rows], [e.label for e in rows], settings.self_mask)
        rows, test, trusted = (
            [dataclasses.replace(e, text=masked(e.text, mask)) for e in part]
            for part in (rows, test, trusted)
        )

    def fit_fold(train: list[Example], held: list[Example], fold: int) -> tuple[torch.Tensor, float]:
        label = f"safe self-scanner, fold {fold + 1} of {folds}"
        tuned = fine_tune(context, train + trusted, config, label)
        return class_probabilities(context, tuned, held, settings.scoring_batch_size), test_accuracy(
            context, tuned, test
        )

    return cross_fit(rows, cross_folds([e.label for e in rows], folds, context.experiment.seed), fit_fold)
