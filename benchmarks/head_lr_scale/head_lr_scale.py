"""Does a faster classification head help the undefended baseline learn SST-2? Judged on clean dev only.

Runs issue 2's acceptance setting (SST-2, 3,000 training rows, BadNet 10 % dirty-label, target 1,
defence `none`: 3 epochs, lr 2e-5, batch 32) with the head's learning rate at 1×, 10× and 50× the
encoder's, on seeds that are not the acceptance seed. A scale would become the default only if it
raised mean clean dev accuracy by at least one point; CACC and ASR are reported, never used to choose.
Each run is `modfit train`, two at a time with one thread each; a run whose metrics.json exists is
reused. Writes a markdown table to stdout.

    python benchmarks/head_lr_scale/head_lr_scale.py --out-dir runs/head_lr_scale [--scales 1 10 50] [--seeds 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

COMMAND = (
    "modfit train --dataset sst2 --attack badnet --poison-rate 0.1 --defence none --train-size 3000 --quiet"
)


def train(out: Path, seed: int, scale: float) -> dict:
    metrics = out / "metrics.json"
    if not metrics.exists():
        argv = [*COMMAND.split(), "--seed", str(seed), "--head-lr-scale", str(scale), "--out", str(out), "--overwrite"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        subprocess.run(argv, check=True, env=env)
    return json.loads(metrics.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0, 50.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    cells = [(scale, seed) for scale in args.scales for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = pool.map(lambda c: train(args.out_dir / f"scale{c[0]:g}_seed{c[1]}", c[1], c[0]), cells)
        results = dict(zip(cells, runs, strict=True))
    print(f"`{COMMAND} --seed S --head-lr-scale X --out DIR`\n")
    print("| head lr scale | seed | dev acc | CACC | ASR | ASR floor |")
    print("|---:|---:|---:|---:|---:|---:|")
    for (scale, seed), m in results.items():
        print(
            f"| {scale:g} | {seed} | {m['dev_acc']:.4f} | {m['cacc']:.4f} | {m['asr']:.4f} | {m['asr_floor']:.4f} |"
        )
    print()
    for scale in args.scales:
        devs = [results[scale, seed]["dev_acc"] for seed in args.seeds]
        print(f"- scale {scale:g}: mean dev acc {sum(devs) / len(devs):.4f}")


if __name__ == "__main__":
    sys.exit(main())
