"""Small real-model sanity check of the moderate-fitting rule and the scan score (results in
benchmarks/auto_sanity/results.md): one SST-2 run with the packaged MiniLM that records every row's
loss; prints per point the training loss, clean dev accuracy, CACC, ASR and floor, the high-loss share
and the AUROC of the rows' current losses against the hidden marks (analysis only: the rule never sees
them), then the rule's transition and the scan ranking's AUROC.

    python benchmarks/auto_sanity/auto_sanity.py ATTACK RATE TRAIN_SIZE EVAL_EVERY MODE LR EPOCHS
    python benchmarks/auto_sanity/auto_sanity.py badnet 0.1 600 3 dirty 1e-4 3
"""

from __future__ import annotations

import sys
import time

import torch

from modfit.auto import signals_of
from modfit.dynamics import RecordRowDynamics
from modfit.experiment import prepare_data, resolve, train_once
from modfit.metrics import auroc
from modfit.suspicion import Cut, rank_rows, suspicion_scores
from modfit.transition import TransitionRule, reference_point


def main(attack: str, rate: str, size: str, every: str, mode: str, lr: str, epochs: str) -> None:
    torch.set_num_threads(1)
    experiment = resolve({
        "dataset": "sst2", "attack": {"name": attack, "rate": float(rate), "mode": mode},
        "train_size": int(size), "model": {"max_length": 40}, "seed": 0,
        "train": {"eval_size": 100, "eval_every": int(every), "lr": float(lr), "epochs": float(epochs)},
    })  # fmt: skip
    data = prepare_data(experiment)
    recorder = RecordRowDynamics(len(data.train))
    started = time.time()
    result = train_once(experiment, progress=False, extra_callbacks=[recorder], data=data)
    dynamics = recorder.result()
    share = dynamics.high_loss_share(2)
    truth = [e.poisoned for e in data.train]
    for i, p in enumerate(result.history):
        current = auroc(torch.nan_to_num(dynamics.losses[i], 0.0).tolist(), truth)
        print(f"step {p.step:4d} ep {p.epoch:.2f} loss {p.train_loss:.3f} dev {p.dev_acc:.3f} cacc {p.cacc:.3f} "
              f"asr {p.asr:.3f} floor {p.asr_floor:.3f} high {share[i]:.3f} auc_loss {current:.3f}")  # fmt: skip
    print("seconds", time.time() - started)
    scores, transition, flags = rank_rows(dynamics, 2, Cut())
    hits = sum(f and t for f, t in zip(flags, truth, strict=True))
    print("transition", transition, "scan auroc", auroc(scores, truth), "flagged", sum(flags), "hits", hits)
    if transition:
        start = reference_point(signals_of(dynamics, 2), transition.index, TransitionRule())
        print("ref", start, "stage-only auroc", auroc(suspicion_scores(dynamics, start, transition.index), truth),
              "all", auroc(suspicion_scores(dynamics, None, None), truth))  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:8])
