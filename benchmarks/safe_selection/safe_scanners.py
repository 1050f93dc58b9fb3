"""Which scanner and cleanlab cut should `safe` use? Step 1 of benchmarks/safe_selection/results.md.

On the selection cell only (SST-2, BadNet, 10 % dirty, target 1, 3,000 rows, seed 0): every scanner
candidate is fitted on the clean dev split, scores the training rows, and each cleanlab cut flags
rows; the hidden marks are read here, for this one cell, to apply the written rule.

    python benchmarks/safe_selection/safe_scanners.py [DATASET] [ATTACK] [MODE] [RATE]
"""

from __future__ import annotations

import sys
import time

import torch

from modfit import resolve
from modfit.baselines.base import Context
from modfit.baselines.safe import FILTERS, SafeOptions, label_verdict, trusted_rows
from modfit.baselines.scanners.finetune import class_probabilities, fine_tune
from modfit.baselines.scoring import features
from modfit.config import TrainConfig
from modfit.encoding import encode
from modfit.evaluate import predict
from modfit.experiment import prepare_data
from modfit.metrics import accuracy, detection_scores
from modfit.model import load_classifier


def frozen_logistic(context: Context) -> tuple[torch.Tensor, float]:
    """S1: logistic regression on the frozen encoder's mean-pooled features, fitted on dev."""
    from sklearn.linear_model import LogisticRegression

    experiment, splits = context.experiment, context.data.splits
    model, tokenizer = load_classifier(experiment.model, splits.num_labels, experiment.seed)

    def embed(rows):
        return features(model, encode(rows, tokenizer, experiment.model.max_length)).numpy()

    classifier = LogisticRegression(max_iter=2000).fit(embed(splits.dev), [e.label for e in splits.dev])
    test_acc = classifier.score(embed(splits.test), [e.label for e in splits.test])
    return torch.tensor(classifier.predict_proba(embed(context.data.train))), test_acc


def main() -> None:
    dataset, attack = sys.argv[1:3] + ["sst2", "badnet"][len(sys.argv[1:3]) :]
    mode = sys.argv[3] if len(sys.argv) > 3 else "dirty"
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    experiment = resolve({"dataset": dataset, "attack": {"name": attack, "mode": mode, "rate": rate, "target": 1},
                          "train_size": 3000, "seed": 0, "defence": "safe"})  # fmt: skip
    data = prepare_data(experiment)
    context = Context(experiment, data, False, (), encode)
    labels = [e.label for e in data.train]
    truth = [e.poisoned for e in data.train]
    candidates: dict[str, tuple[torch.Tensor, float, float]] = {}
    started = time.perf_counter()
    probs, test_acc = frozen_logistic(context)
    candidates["S1 frozen+LR"] = (probs, test_acc, time.perf_counter() - started)
    for name, epochs in (("S2 finetune 3ep", 3.0), ("S3 finetune 6ep", 6.0)):
        started = time.perf_counter()
        options = SafeOptions(scanner_epochs=epochs)
        config = TrainConfig(epochs=epochs, lr=options.scanner_lr, batch_size=options.scanner_batch_size)
        scanner = fine_tune(context, trusted_rows(context, options), config, "scanner")
        probs = class_probabilities(context, scanner, data.train, 128)
        test = encode(data.splits.test, scanner.tokenizer, experiment.model.max_length)
        test_acc = accuracy(predict(scanner.model, test), test.labels)
        candidates[name] = (probs, test_acc, time.perf_counter() - started)
    print(f"{dataset} {attack} {mode} {rate}: {sum(truth)} poisoned of {len(truth)}")
    print("| scanner | test acc | seconds | filter_by | flagged | flagged % | precision | recall | AUROC | "
          "relabel right on poisoned |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (probs, test_acc, seconds) in candidates.items():
        for filter_by in ("prune_by_noise_rate", "confident_learning", "both"):
            verdict = label_verdict(probs, labels, filter_by)
            d = detection_scores(verdict.flagged, verdict.scores, truth)
            caught = [i for i, f in enumerate(verdict.flagged) if f and truth[i]]
            right = sum(verdict.suggested[i] != labels[i] for i in caught)
            flags = sum(verdict.flagged)
            print(f"| {name} | {test_acc:.3f} | {seconds:.0f} | {filter_by} | {flags} | {100 * flags / len(labels):.1f} | "
                  f"{d['precision']:.3f} | {d['recall']:.3f} | {d['auroc']:.3f} | {right}/{len(caught)} |")  # fmt: skip
    assert set(FILTERS) >= {"prune_by_noise_rate", "confident_learning", "both"}


if __name__ == "__main__":
    main()
