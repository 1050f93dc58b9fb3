"""Whether `safe` should refit its scanner on the training rows it trusts (`rounds` 2), chosen on clean
data alone.

`safe`'s scanner is fitted on the clean dev split (872 SST-2 rows) and reaches about 0.82 accuracy; the
poisoned rows it misses are the rows it misjudges. A second round refits it on dev plus the training rows
the first round trusts (unflagged, p(given label) ≥ 0.9) and judges only the rest. The rule, fixed
before the runs:

- **Data:** clean SST-2 only: the dev split, cut into the two label-balanced halves of
  `scanner_schedule.py` (seed 0), and the clean 3,000-row training sample that the attack-none cell of
  `benchmarks/safe_clean_baseline/safe_clean_baseline.yaml` trains on (seed 0). No poison, no test row, no ASR.
- **Folds:** the scanner's dev is one half; the other half is held out. Round one: the packaged MiniLM
  fully fine-tuned on the half at the scanner schedule (lr 1e-4, 6 epochs, batch 32, seed 0), scoring
  the 3,000 rows; cleanlab's `prune_by_noise_rate` verdict. Round two: refitted on the half plus the
  trusted rows (lr 1e-4, 2 epochs: the packaged baseline's epochs), judging the untrusted rows. Both
  ways round.
- **Measures:** each round's accuracy on the held-out half (mean of the two folds); and the clean rows
  its verdict flags (every flagged row here is a false alarm, an honest row `safe` would relabel).
- **Choice:** `rounds` 2 becomes `SafeOptions`' default if its held-out accuracy beats round one's by
  more than 1 point (the tie margin of `scanner_schedule.py`) and it flags no more clean rows; otherwise
  `rounds` stays 1. Every attack and HSOL are held out (nothing here reads a poisoned row).

Result (2026-12-03, `benchmarks/scanner_refit/results.md`): +0.3 points, so `rounds` stayed 1 and the
option was taken out of `safe`; this script keeps the two-round procedure so that it can be measured
again (on another model, or a larger dev split).

A fold whose result is in OUT/scanner_refit.json is reused (the run resumes).

    python benchmarks/scanner_refit/scanner_refit.py --out runs/scanner_refit
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from modfit import resolve
from modfit.baselines.safe import label_verdict
from modfit.baselines.scoring import probabilities
from modfit.config import TrainConfig
from modfit.encoding import encode
from modfit.evaluate import predict
from modfit.experiment import prepare_data
from modfit.metrics import accuracy
from modfit.model import load_classifier
from modfit.train import fit

# the dev halves and the resumable results are scanner_schedule's, from the study folder beside this one
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scanner_schedule"))
from scanner_schedule import SEED, halves, resumable_results  # noqa: E402

LR, FIRST_EPOCHS, REFIT_EPOCHS, TRUST, TIE = 1e-4, 6.0, 2.0, 0.9, 0.01


def fitted(experiment, num_labels: int, rows: list, epochs: float):
    model, tokenizer = load_classifier(experiment.model, num_labels, SEED)
    fit(model, encode(rows, tokenizer, experiment.model.max_length), TrainConfig(lr=LR, epochs=epochs), SEED)
    return model, tokenizer


def held_accuracy(experiment, model, tokenizer, held: list) -> float:
    encoded = encode(held, tokenizer, experiment.model.max_length)
    return accuracy(predict(model, encoded), encoded.labels)


def verdict_on(experiment, model, tokenizer, rows: list):
    probs = probabilities(model, encode(rows, tokenizer, experiment.model.max_length), 128)
    return label_verdict(probs, [e.label for e in rows], "prune_by_noise_rate")


def fold(experiment, num_labels: int, dev: list, held: list, train: list) -> dict:
    started = time.perf_counter()
    model, tokenizer = fitted(experiment, num_labels, dev, FIRST_EPOCHS)
    first = verdict_on(experiment, model, tokenizer, train)
    first_accuracy = held_accuracy(experiment, model, tokenizer, held)
    trusted = [not f and 1.0 - s >= TRUST for f, s in zip(first.flagged, first.scores, strict=True)]
    rest = [e for e, t in zip(train, trusted, strict=True) if not t]
    model, tokenizer = fitted(
        experiment, num_labels, dev + [e for e, t in zip(train, trusted, strict=True) if t], REFIT_EPOCHS
    )
    second = verdict_on(experiment, model, tokenizer, rest)
    return {
        "round1_accuracy": first_accuracy,
        "round1_flagged": sum(first.flagged),
        "trusted": sum(trusted),
        "round2_accuracy": held_accuracy(experiment, model, tokenizer, held),
        "round2_flagged": sum(second.flagged),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    store, results = resumable_results(__doc__.splitlines()[0], "scanner_refit.json")
    experiment = resolve({"dataset": "sst2", "attack": {"name": "none"}, "seed": SEED, "train_size": 3000})
    data = prepare_data(experiment)
    a, b = halves(data.splits.dev, SEED)
    for key, dev, held in (("A→B", a, b), ("B→A", b, a)):
        if key not in results:
            results[key] = fold(experiment, data.splits.num_labels, dev, held, data.train)
            store.write_text(json.dumps(results, indent=1))
        print(key, results[key], flush=True)
    mean = {m: sum(r[m] for r in results.values()) / 2 for m in next(iter(results.values()))}
    print(
        "\n| fold | round-1 accuracy | round-1 flagged | trusted | round-2 accuracy | round-2 flagged | seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key, r in [*results.items(), ("mean", mean)]:
        print(f"| {key} | {r['round1_accuracy']:.4f} | {r['round1_flagged']:g} | {r['trusted']:g} "
              f"| {r['round2_accuracy']:.4f} | {r['round2_flagged']:g} | {r['seconds']:.0f} |")  # fmt: skip
    better = mean["round2_accuracy"] > mean["round1_accuracy"] + TIE
    fewer = mean["round2_flagged"] <= mean["round1_flagged"]
    print(f"\nchosen: rounds {2 if better and fewer else 1}")


if __name__ == "__main__":
    main()
