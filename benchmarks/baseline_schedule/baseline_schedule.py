"""The undefended baseline and the paper's presets, chosen on a *clean* training set by clean dev accuracy.

No poisoned row, no ASR: every run here trains on the clean SST-2 training split (6,920 rows, the
paper table's size; `--train-size` for another) with `--attack none`, and is judged by the final
model's accuracy on the full clean dev split (872 rows). The rules, fixed before the runs:

1. **Baseline** (`none`): full fine-tuning, batch 32, AdamW with linear decay, head at 1× lr, seed 0,
   over lr ∈ {2e-5, 5e-5, 1e-4} × epochs ∈ {2, 3, 4} (the BERT recipe's grid, with 1e-4 because the
   packaged MiniLM learns slowly at 2e-5). Highest final dev accuracy wins; every setting within 0.5
   points of the highest counts as tied, and among ties the fewest epochs, then the lowest lr.
2. **fewer-epochs**: on the chosen baseline run's dev curve, the first evaluated step whose dev accuracy
   is within 1 point of the run's final dev accuracy — where clean dev accuracy stops rising — as a
   share f of the baseline's steps; the preset trains f × the baseline's epochs (rounded to 0.05).
3. **lower-lr**: the baseline's epochs at f × its lr: under linear decay that covers the same area under
   the learning-rate curve (lr × steps / 2) as `fewer-epochs` does.
4. **Reparameterized presets** (`lora-reparam`, `adapter-reparam`, `prefix-reparam`): the paper's
   method settings unchanged, the baseline's epochs, lr ∈ {1e-3, 3e-3, 1e-2} by rule 1's score and
   tie-break (ties: the lowest lr). That chose the presets before issue 26; they are now the paper's
   authors' recipe (README, "Defences"), so a rerun of this sweep varies lr and epochs over that recipe.

All presets are in epochs, so their dose in steps is a fixed share of the baseline's and scales with the
training set exactly as the baseline's does. A run whose metrics.json exists is reused (the sweep
resumes); runs go one at a time, alone on the machine.

    python benchmarks/baseline_schedule/baseline_schedule.py baseline --out-dir runs/baseline_schedule
    python benchmarks/baseline_schedule/baseline_schedule.py reparam --epochs 2 --out-dir runs/baseline_schedule
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# --eval-size 872: every point on the full dev split (and 872 test rows), so the dev curve is comparable
COMMAND = "modfit train --dataset sst2 --attack none --seed 0 --eval-size 872 --quiet"
BASELINE_LRS = (2e-5, 5e-5, 1e-4)
BASELINE_EPOCHS = (2.0, 3.0, 4.0)
REPARAM_LRS = (1e-3, 3e-3, 1e-2)
REPARAM_PRESETS = ("lora-reparam", "adapter-reparam", "prefix-reparam")
TIE = 0.005  # dev accuracy within half a point of the best counts as tied
PLATEAU = 0.01  # fewer-epochs: the first point within one point of the final dev accuracy


@dataclass(frozen=True)
class Run:
    defence: str
    lr: float
    epochs: float

    @property
    def name(self) -> str:
        return f"{self.defence}_lr{self.lr:g}_ep{self.epochs:g}"


def train(run: Run, out_dir: Path, train_size: int | None, model: str | None) -> dict:
    out = out_dir / run.name
    if not (out / "metrics.json").exists():
        argv = [*COMMAND.split(), "--defence", run.defence, "--lr", str(run.lr), "--epochs", str(run.epochs),
                "--out", str(out), "--overwrite"]  # fmt: skip
        if train_size:
            argv += ["--train-size", str(train_size)]
        if model:
            argv += ["--model", model]
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        subprocess.run(argv, check=True, env=env)
    metrics = json.loads((out / "metrics.json").read_text())
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    return {**metrics, "history": history}


def choose(results: dict[Run, dict]) -> Run:
    """Rule 1: the best final dev accuracy; within TIE of it, the fewest epochs, then the lowest lr."""
    best = max(m["dev_acc"] for m in results.values())
    tied = [run for run, m in results.items() if m["dev_acc"] >= best - TIE]
    return min(tied, key=lambda run: (run.epochs, run.lr))


def plateau_share(history: list[dict]) -> tuple[float, dict]:
    """Rule 2: the first point within PLATEAU of the final dev accuracy, as a share of the run's steps."""
    final, total = history[-1]["dev_acc"], history[-1]["step"]
    point = next(p for p in history if p["dev_acc"] is not None and p["dev_acc"] >= final - PLATEAU)
    return point["step"] / total, point


def table(results: dict[Run, dict], chosen: Run) -> list[str]:
    lines = [
        "| defence | lr | epochs | steps | dev acc | test CACC | seconds | |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run, m in results.items():
        mark = "**chosen**" if run == chosen else ""
        lines.append(
            f"| {run.defence} | {run.lr:g} | {run.epochs:g} | {m['history'][-1]['step']} | {m['dev_acc']:.4f} "
            f"| {m['cacc']:.4f} | {m['seconds']:.0f} | {mark} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", choices=["baseline", "reparam"])
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--train-size", type=int, default=None, help="default: the full training split")
    parser.add_argument("--epochs", type=float, default=3.0, help="reparam: the chosen baseline's epochs")
    parser.add_argument("--model", default=None, help="a Hugging Face model (default: the packaged MiniLM)")
    args = parser.parse_args()
    if args.sweep == "baseline":
        runs = [Run("none", lr, epochs) for lr in BASELINE_LRS for epochs in BASELINE_EPOCHS]
        results = {run: train(run, args.out_dir, args.train_size, args.model) for run in runs}
        chosen = choose(results)
        print(f"`{COMMAND} --defence none --lr LR --epochs E --out DIR`\n")
        print("\n".join(table(results, chosen)))
        share, point = plateau_share(results[chosen]["history"])
        print(f"\n- chosen baseline: lr {chosen.lr:g}, {chosen.epochs:g} epochs")
        print("- dev curve of the chosen run (step: dev acc): "
              + ", ".join(f"{p['step']}: {p['dev_acc']:.3f}" for p in results[chosen]["history"]))  # fmt: skip
        print(
            f"- plateau: step {point['step']} (dev acc {point['dev_acc']:.4f}) = share {share:.3f} of the steps"
        )
        print(f"- fewer-epochs: {round(share * chosen.epochs / 0.05) * 0.05:.2f} epochs")
        print(f"- lower-lr: {share * chosen.lr:.2g}")
        return
    for defence in REPARAM_PRESETS:
        runs = [Run(defence, lr, args.epochs) for lr in REPARAM_LRS]
        results = {run: train(run, args.out_dir, args.train_size, args.model) for run in runs}
        chosen = choose(results)
        print(f"\n### {defence}\n")
        print("\n".join(table(results, chosen)))
        print(f"\n- chosen: lr {chosen.lr:g}")


if __name__ == "__main__":
    sys.exit(main())
