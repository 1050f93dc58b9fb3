"""Small CIFAR-10 runs that chose the image defaults and presets (benchmarks/vision_settings/results.md).

Each candidate is a partial config over the base below (2,000 training images, 2 epochs, 500-image
evaluation subsets, patch 10 % dirty-label, target 0), run in its own process:

    OMP_NUM_THREADS=1 python benchmarks/vision_settings/vision_settings.py '{"defence": "none", "model": {"image_size": 64}}'
"""

from __future__ import annotations

import json
import sys
import time

from modfit.config import merge
from modfit.experiment import resolve, run

BASE = {
    "dataset": "cifar10",
    "attack": {"name": "patch", "target": 0, "rate": 0.1},
    "train_size": 2000,
    "train": {"epochs": 2, "eval_size": 500},
    "seed": 0,
}


def main(candidate: str) -> None:
    started = time.perf_counter()
    result = run(resolve(merge(BASE, json.loads(candidate))), progress=False)
    for p in result.history:
        print(
            f"{p.step:4d} {p.epoch:.2f} loss {p.train_loss:.3f} dev {p.dev_acc:.3f} cacc {p.cacc:.3f} "
            f"asr {p.asr:.3f} floor {p.asr_floor:.3f}",
            flush=True,
        )
    print(candidate, json.dumps(result.metrics()), f"{time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "{}")
