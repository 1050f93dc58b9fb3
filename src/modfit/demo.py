"""The main job: SST-2, BadNet, 10 % dirty-label, target 1, the packaged MiniLM, every defence preset.

Sized to finish in under 15 minutes on a 2-core CPU: a seeded subset of the training set and a
seeded evaluation subset, both printed with the result.
"""

from __future__ import annotations

from pathlib import Path

from modfit.experiment import prepare_data, resolve, run
from modfit.output import write_atomic, write_run
from modfit.report.dynamics import plot_dynamics

DEMO_DEFENCES = ("none", "fewer-epochs", "lower-lr", "lora-reparam")
DEMO_SETTINGS = {
    "dataset": "sst2",
    "attack": {"name": "badnet", "mode": "dirty", "rate": 0.1, "target": 1},
    "train_size": 1600,
    "train": {"eval_size": 200},
    "seed": 0,
}


def results_table(rows: list[tuple[str, dict]]) -> str:
    lines = [
        "| defence | CACC | ASR | ASR floor | trainable params | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in rows:
        lines.append(
            f"| {name} | {m['cacc']:.3f} | {m['asr']:.3f} | {m['asr_floor']:.3f} | "
            f"{m['trainable_params']:,} | {m['seconds']:.0f} |"
        )
    return "\n".join(lines)


def run_demo(out: str | Path, train_size: int | None = None, progress: bool = True) -> str:
    """Run every demo defence, write each run and a shared dynamics plot, return the summary."""
    out = Path(out)
    settings = dict(DEMO_SETTINGS, train_size=train_size or DEMO_SETTINGS["train_size"])
    first = resolve(settings)
    data = prepare_data(first)  # the same poisoned data for every defence
    print(
        f"SST-2, BadNet 10% dirty-label, target 1: a seeded subset of {len(data.train)} training rows "
        f"({sum(e.poisoned for e in data.train)} poisoned); CACC/ASR on a seeded "
        f"{settings['train']['eval_size']}-row subset of dev and test"
    )
    rows, histories = [], {}
    for defence in DEMO_DEFENCES:
        result = run(resolve({**settings, "defence": defence}), progress=progress, data=data)
        write_run(result, out / defence)
        rows.append((defence, result.metrics()))
        histories[defence] = result.history
        m = result.metrics()
        print(
            f"  {defence}: CACC {m['cacc']:.3f}  ASR {m['asr']:.3f}  (floor {m['asr_floor']:.3f})  {m['seconds']:.0f}s"
        )
    table = results_table(rows)
    write_atomic(out / "dynamics.png", plot_dynamics(histories, "SST-2, BadNet 10% dirty-label"))
    write_atomic(out / "summary.md", table + "\n")
    return f"{table}\n\ndynamics plot: {out / 'dynamics.png'}"
