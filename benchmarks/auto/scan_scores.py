"""Which per-row score separates poisoned rows in a real scanning run? (analysis for issue 5)

Trains one `scan` run with the undefended settings on SST-2 (target 1, seed 0, 200-row evaluation
subsets) and compares, by AUROC against the hidden marks (read only here, for measurement), the
shipped score — a row's mean loss from the plateau's start to the end — with the same mean
standardised within each label, and with the mean over every point after the first (a row not yet
seen in a batch counts as loss 0 there), each with both signs.

    python benchmarks/auto/scan_scores.py ATTACK [RATE] [TRAIN_SIZE]
"""

from __future__ import annotations

import sys

import torch

from modfit import resolve
from modfit.experiment import prepare_data
from modfit.metrics import auroc
from modfit.scan import scan


def main() -> None:
    attack, rate = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    experiment = resolve({"dataset": "sst2", "attack": {"name": attack, "rate": rate, "target": 1},
                          "train_size": size, "train": {"eval_size": 200}, "seed": 0})  # fmt: skip
    data = prepare_data(experiment)
    result = scan(experiment, data=data, progress=False)
    truth = [e.poisoned for e in data.train]
    labels = torch.tensor([e.label for e in data.train])
    shipped = torch.tensor(result.scores)
    within = shipped.clone()
    for label in labels.unique():
        rows = labels == label
        within[rows] = (shipped[rows] - shipped[rows].mean()) / shipped[rows].std().clamp_min(1e-8)
    losses = result.dynamics.losses.nan_to_num(0.0)
    whole = losses[1:].mean(0)
    print(f"sst2 {attack} {rate} {size} rows; transition {result.transition}")
    for name, score in [("mean loss over the stage (shipped)", shipped), ("same, within label", within),
                        ("mean loss over the whole run", whole)]:  # fmt: skip
        print(f"{name:40} AUROC {auroc(score.tolist(), truth):.3f}   low-loss sign {auroc((-score).tolist(), truth):.3f}")
    print(f"scoring run: CACC {result.run.final.cacc:.3f} ASR {result.run.final.asr:.3f}")


if __name__ == "__main__":
    main()
