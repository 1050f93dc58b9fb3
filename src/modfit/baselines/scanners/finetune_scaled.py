"""`finetune_scaled`: `finetune` with its epochs scaled up for few trusted rows, so that it takes as
many optimiser steps as the chosen schedule takes on the 872 rows of SST-2's dev split, where that
schedule was chosen (benchmarks/scanner_schedule/results.md). A candidate of
benchmarks/safe_budget/scanner_choice.py: with 50 rows, six epochs are ten steps."""

from __future__ import annotations

from modfit.baselines.base import Context
from modfit.baselines.scanners.base import Scan, ScannerSettings, scanner
from modfit.baselines.scanners.finetune import fine_tuned_scan
from modfit.data import Example

REFERENCE_ROWS = 872  # SST-2's clean dev split, on which scanner_lr and scanner_epochs were chosen


def scaled_epochs(epochs: float, rows: int) -> float:
    return epochs * max(1.0, REFERENCE_ROWS / rows)


@scanner("finetune_scaled")
def finetune_scaled(context: Context, settings: ScannerSettings, trusted: list[Example]) -> Scan:
    return fine_tuned_scan(context, settings, trusted, scaled_epochs(settings.epochs, len(trusted)))
