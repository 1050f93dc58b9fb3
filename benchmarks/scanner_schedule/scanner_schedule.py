"""The schedule of `safe`'s scanner, chosen by cross-validated accuracy on the clean dev split alone.

`safe` fits its scanner on the clean dev split; until now at the BERT recipe (lr 2e-5, 6 epochs), which
learns slowly on the packaged MiniLM (benchmarks/baseline_schedule/results.md). Its errors on clean
training rows are the honest rows `safe` relabels, so a more accurate scanner costs less clean accuracy
and catches more poison. The rule, fixed before the runs:

- **Data:** the clean SST-2 dev split (872 rows) and nothing else: no training row, no poison, no test
  row, no ASR. It is shuffled with seed 0 and cut into two halves, each label split evenly.
- **Score:** 2-fold cross-validation: the scanner is fitted on one half (full fine-tuning of the packaged
  MiniLM, batch 32, AdamW with linear decay, seed 0) and its accuracy measured on the other, both ways;
  the score is the mean of the two.
- **Candidates:** scanner lr ∈ {2e-5, 5e-5, 1e-4} × epochs ∈ {3, 6, 10}.
- **Choice:** the best score; every candidate within 1 point of it counts as tied (each half is 436
  rows, so the score's standard error is about 1.3 points), and among ties the fewest epochs, then the
  lowest lr. The choice becomes `SafeOptions`' default for every dataset (HSOL and every attack are
  held out from nothing, since nothing here reads a poisoned row).

A candidate whose result is in OUT/scanner_schedule.json is reused (the sweep resumes).

    python benchmarks/scanner_schedule/scanner_schedule.py --out runs/scanner_schedule
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from modfit import resolve
from modfit.config import TrainConfig
from modfit.encoding import encode
from modfit.evaluate import predict
from modfit.experiment import prepare_data
from modfit.metrics import accuracy
from modfit.model import load_classifier
from modfit.train import fit

LRS = (2e-5, 5e-5, 1e-4)
EPOCHS = (3.0, 6.0, 10.0)
TIE = 0.01
SEED = 0


def halves(rows: list, seed: int) -> tuple[list, list]:
    """Two halves of `rows`, each label split evenly, in a seeded order."""
    first, second = [], []
    for label in sorted({e.label for e in rows}):
        members = [e for e in rows if e.label == label]
        random.Random(seed).shuffle(members)
        first += members[: len(members) // 2]
        second += members[len(members) // 2 :]
    return first, second


def fold_accuracy(experiment, num_labels: int, train: list, held: list, lr: float, epochs: float) -> float:
    model, tokenizer = load_classifier(experiment.model, num_labels, SEED)
    fit(model, encode(train, tokenizer, experiment.model.max_length), TrainConfig(lr=lr, epochs=epochs), SEED)
    held_encoded = encode(held, tokenizer, experiment.model.max_length)
    return accuracy(predict(model, held_encoded), held_encoded.labels)


def resumable_results(description: str, filename: str) -> tuple[Path, dict]:
    """`--out`'s JSON file of finished results (empty when new), for a sweep that resumes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / filename
    return store, json.loads(store.read_text()) if store.exists() else {}


def report(results: dict) -> str:
    """The rule: the highest mean of the two folds; ties within TIE to the fewest epochs, then the
    lowest lr. Prints the table; returns the chosen key (the image scanner's script shares it)."""
    scores = {key: sum(r["folds"]) / 2 for key, r in results.items()}
    best = max(scores.values())
    tied = [key for key, score in scores.items() if score >= best - TIE]
    chosen = min(tied, key=lambda key: (results[key]["epochs"], results[key]["lr"]))
    print("\n| lr | epochs | fold A→B | fold B→A | mean | seconds | |\n|---:|---:|---:|---:|---:|---:|---|")
    for key, r in results.items():
        mark = "**chosen**" if key == chosen else ("tied" if key in tied else "")
        print(f"| {r['lr']:g} | {r['epochs']:g} | {r['folds'][0]:.4f} | {r['folds'][1]:.4f} | {scores[key]:.4f} "
              f"| {r['seconds']:.0f} | {mark} |")  # fmt: skip
    return chosen


def main() -> None:
    store, results = resumable_results(__doc__.splitlines()[0], "scanner_schedule.json")
    experiment = resolve({"dataset": "sst2", "attack": {"name": "none"}, "seed": SEED})
    splits = prepare_data(experiment).splits
    a, b = halves(splits.dev, SEED)
    for lr in LRS:
        for epochs in EPOCHS:
            key = f"lr{lr:g}_ep{epochs:g}"
            if key not in results:
                started = time.perf_counter()
                folds = [
                    fold_accuracy(experiment, splits.num_labels, a, b, lr, epochs),
                    fold_accuracy(experiment, splits.num_labels, b, a, lr, epochs),
                ]
                results[key] = {
                    "lr": lr,
                    "epochs": epochs,
                    "folds": folds,
                    "seconds": time.perf_counter() - started,
                }
                store.write_text(json.dumps(results, indent=1))
            r = results[key]
            print(f"lr {lr:g}, {epochs:g} epochs: folds {r['folds'][0]:.4f} {r['folds'][1]:.4f}", flush=True)
    chosen = report(results)
    print(f"\nchosen: scanner_lr {results[chosen]['lr']:g}, scanner_epochs {results[chosen]['epochs']:g}")

if __name__ == "__main__":
    main()
