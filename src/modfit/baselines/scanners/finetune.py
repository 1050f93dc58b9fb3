"""`finetune`: the victim's encoder, fully fine-tuned on the trusted rows alone (never a training row),
at the schedule chosen on clean dev (benchmarks/scanner_schedule/results.md). The self-scanner trains
its fold models with the same helper."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from modfit.baselines.base import Context
from modfit.baselines.scanners.base import Scan, ScannerSettings, clean_test, device, scanner
from modfit.baselines.scoring import probabilities
from modfit.callbacks import Progress
from modfit.config import TrainConfig
from modfit.data import Example
from modfit.encoding import Encoder
from modfit.evaluate import predict
from modfit.metrics import accuracy
from modfit.train import fit
from modfit.training_run import victim


@dataclass(frozen=True)
class FineTuned:
    model: torch.nn.Module
    tokenizer: object  # or, for images, the preprocessing
    encoder: Encoder


def fine_tune(context: Context, rows: list[Example], config: TrainConfig, label: str) -> FineTuned:
    """A fresh victim (the run's seed; its own model and encoding for the dataset's kind, text or
    image: `victim`) trained on `rows` by the one training loop."""
    experiment = context.experiment
    model, tokenizer, encoder = victim(experiment, context.data.splits, context.encoder)
    model.to(device())
    progress = [Progress(label)] if context.progress else []
    fit(model, encoder(rows, tokenizer, experiment.model.max_length), config, experiment.seed, progress)
    return FineTuned(model, tokenizer, encoder)


def class_probabilities(
    context: Context, tuned: FineTuned, rows: list[Example], batch_size: int
) -> torch.Tensor:
    encoded = tuned.encoder(rows, tuned.tokenizer, context.experiment.model.max_length)
    return probabilities(tuned.model, encoded, batch_size)


def test_accuracy(context: Context, tuned: FineTuned, test: list[Example] | None = None) -> float:
    """Accuracy on the clean test subsample (`clean_test`), or on `test`, that subsample as the scanner
    sees it (the masked self-scanner's)."""
    test = clean_test(context) if test is None else test
    encoded = tuned.encoder(test, tuned.tokenizer, context.experiment.model.max_length)
    return accuracy(predict(tuned.model, encoded), [e.label for e in test])


def fine_tuned_scan(
    context: Context, settings: ScannerSettings, trusted: list[Example], epochs: float
) -> Scan:
    config = TrainConfig(epochs=epochs, lr=settings.lr, batch_size=settings.batch_size)
    tuned = fine_tune(context, trusted, config, f"safe scanner ({len(trusted)} trusted rows)")
    probs = class_probabilities(context, tuned, context.data.train, settings.scoring_batch_size)
    return Scan(probs, test_accuracy(context, tuned))


@scanner("finetune")
def finetune(context: Context, settings: ScannerSettings, trusted: list[Example]) -> Scan:
    return fine_tuned_scan(context, settings, trusted, settings.epochs)
