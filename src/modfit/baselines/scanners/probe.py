"""`probe`: a logistic regression (scikit-learn, installed with cleanlab) on the frozen victim encoder's
pooled sentence features, fitted on the trusted rows. Nothing of the encoder trains, so a hundred rows
fit a few hundred weights per label instead of a whole encoder: a candidate for small budgets
(benchmarks/safe_budget/)."""

from __future__ import annotations

import torch

from modfit.baselines.base import Context
from modfit.baselines.scanners.base import Scan, ScannerSettings, clean_test, device, scanner
from modfit.baselines.scoring import features
from modfit.data import Example
from modfit.errors import ModfitError
from modfit.training_run import victim


def fit_probe(rows: torch.Tensor, labels: list[int], seed: int):
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise ModfitError("safe scanner probe needs scikit-learn: pip install scikit-learn") from None
    return LogisticRegression(max_iter=2000, random_state=seed).fit(rows.numpy(), labels)


def all_labels(probe, rows: torch.Tensor, num_labels: int) -> torch.Tensor:
    """The probe's probabilities with a column per label, zero for a label no trusted row carried."""
    out = torch.zeros(len(rows), num_labels, dtype=torch.float64)
    out[:, torch.as_tensor(probe.classes_)] = torch.as_tensor(probe.predict_proba(rows.numpy()))
    return out.float()


@scanner("probe")
def probe(context: Context, settings: ScannerSettings, trusted: list[Example]) -> Scan:
    experiment, num_labels = context.experiment, context.data.splits.num_labels
    model, tokenizer, encoder = victim(experiment, context.data.splits, context.encoder)
    model.to(device())

    def embed(rows: list[Example]) -> torch.Tensor:
        encoded = encoder(rows, tokenizer, experiment.model.max_length)
        return features(model, encoded, settings.scoring_batch_size).double()

    fitted = fit_probe(embed(trusted), [e.label for e in trusted], experiment.seed)
    test = clean_test(context)
    test_accuracy = (
        float(fitted.score(embed(test).numpy(), [e.label for e in test])) if test else float("nan")
    )
    return Scan(all_labels(fitted, embed(context.data.train), num_labels), test_accuracy)
