"""Measure the settings behind the default pooling and the `fewer-epochs` / `lower-lr` presets.

Runs full fine-tuning of the packaged MiniLM on SST-2 with BadNet 10 % dirty-label (target 1),
evaluating densely, so the learning dynamics show when clean accuracy rises and when the backdoor
is learned. Writes benchmarks/defence_settings/results.md.

    python benchmarks/defence_settings/defence_settings.py [--train-size 3000] [--eval-size 400] [--eval-every 10]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from modfit import resolve, run
from modfit.experiment import prepare_data

RUNS = {
    "mean pooling, lr 2e-5": {"model": {"pooling": "mean"}},
    "cls pooling, lr 2e-5 (first epoch)": {"model": {"pooling": "cls"}, "train": {"epochs": 1}},
    "mean pooling, lr 2e-6": {"model": {"pooling": "mean"}, "train": {"lr": 2e-6}},
}


def history_table(history) -> str:
    lines = ["| step | epoch | train loss | dev acc | CACC | ASR | ASR floor |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for p in history:
        lines.append(
            f"| {p.step} | {p.epoch:.2f} | {p.train_loss:.3f} | {p.dev_acc:.3f} | {p.cacc:.3f} | {p.asr:.3f} | {p.asr_floor:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--eval-size", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=12)
    parser.add_argument("--out", default="benchmarks/defence_settings/results.md")
    args = parser.parse_args()
    base = {
        "dataset": "sst2",
        "attack": {"name": "badnet", "rate": 0.1, "target": 1},
        "train_size": args.train_size,
        "train": {"epochs": 3, "eval_size": args.eval_size, "eval_every": args.eval_every},
        "seed": 0,
    }
    data = prepare_data(resolve(base))
    sections = [
        "# Pooling and defence-preset settings, measured",
        f"Date: {datetime.date.today()}. Command: `python {' '.join(sys.argv)}`.",
        f"SST-2, BadNet 10 % dirty-label, target 1, seed 0, {args.train_size} training rows, full fine-tuning of "
        f"the packaged MiniLM, batch 32, 3 epochs unless named; CACC/ASR on a seeded {args.eval_size}-row subset of dev/test.",
    ]
    for name, settings in RUNS.items():
        experiment = resolve({**base, **settings, "train": {**base["train"], **settings.get("train", {})}})
        result = run(experiment, data=data)
        m = result.metrics()
        print(f"{name}: CACC {m['cacc']:.3f} ASR {m['asr']:.3f} floor {m['asr_floor']:.3f} {m['seconds']:.0f}s", flush=True)
        sections += [f"## {name}", f"{m['seconds']:.0f} s wall time.", history_table(result.history)]
        Path(args.out).write_text("\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
