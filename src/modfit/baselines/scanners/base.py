"""The scanner interface of `safe`: whatever judges the training rows' labels without having learnt
from them.

A scanner returns out-of-sample class probabilities for every training row — from a model fitted on
trusted rows only, or cross-fitted on the other training rows — and its own clean test accuracy. What
`safe` does with the probabilities (confident learning, relabel or drop) does not depend on which
scanner made them. One file per scanner, registered here by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from modfit.baselines.base import Context
from modfit.data import Example, subsample
from modfit.registry import NoOptions, Registry


@dataclass(frozen=True)
class ScannerSettings:
    """The scanner's part of `SafeOptions`: the fine-tuned scanner's schedule, the self-scanner's dose."""

    epochs: float
    lr: float
    batch_size: int
    scoring_batch_size: int
    self_epochs: float
    self_lr: float
    self_folds: int
    self_mask: float


@dataclass(frozen=True)
class Scan:
    """Class probabilities (training rows × labels), each from a model that never trained on its row,
    and the scanner's accuracy on the clean test subsample (the mean over its models, if several)."""

    probabilities: torch.Tensor
    test_accuracy: float


ScanFunction = Callable[[Context, ScannerSettings, list[Example]], Scan]


@dataclass(frozen=True)
class ScannerEntry:
    """A registered scanner; `needs_trusted`: whether it learns from trusted rows alone (else it
    learns from the training rows themselves, and from trusted rows where it is given some)."""

    name: str
    options: type
    build: ScanFunction
    needs_trusted: bool = True


SCANNERS: Registry[ScannerEntry] = Registry("safe scanner", ScannerEntry)

# What `scanner=auto` picks for a budget of N trusted rows: the last entry whose row count N reaches.
# Rule 1 of benchmarks/safe_budget/ (held-out dev accuracy, ties within 1 point to the cheaper) chose
# fine-tuning from 250 rows and the probe below; rule 5 (its tuning cell, SST-2 BadNet 10 % with 100
# trusted rows) then chose the self-scanner, the trusted rows joining its fold models, over the probe
# below 250 (gap −0.1 at −0.4 CACC; the probe: +8.7 dropping, −5.8 CACC relabelling). The whole dev
# split (no budget given) always keeps `finetune`: the cells stored before keep their meaning.
AUTO: tuple[tuple[int, str], ...] = ((0, "self"), (250, "finetune"))
WHOLE_SPLIT = "finetune"


def scanner(name: str, needs_trusted: bool = True) -> Callable[[ScanFunction], ScanFunction]:
    """Register `function(context, settings, trusted_rows) -> Scan` as scanner `name`."""
    return SCANNERS.register(name, NoOptions, needs_trusted=needs_trusted)


def auto_scanner(budget: int | None) -> str:
    """The scanner `auto` gives a budget of `budget` trusted rows (AUTO), or the whole dev split (None)."""
    return WHOLE_SPLIT if budget is None else [name for least, name in AUTO if budget >= least][-1]


def clean_test(context: Context) -> list[Example]:
    """The clean test rows a scanner's own accuracy is measured on (the run's evaluation subsample)."""
    experiment = context.experiment
    return subsample(context.data.splits.test, experiment.train.eval_size, experiment.seed)


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
