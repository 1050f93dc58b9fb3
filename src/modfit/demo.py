"""The main job: SST-2, BadNet, 10 % dirty-label, target 1, the packaged MiniLM, the paper's schedule
presets and `safe`.

Sized to finish in under 15 minutes on a 2-core CPU: a seeded 3,000-row subset of the training set
(where the undefended model learns the task: CACC above 0.8), evaluated on the full dev and test sets.
The summary ends with one sentence naming the defences that held, or saying that none did. The
reparameterized presets are the authors' recipe (10 epochs in fp32: 940 steps at this size, several
times the other runs), so the demo leaves them out; `modfit train --defence lora-reparam` runs one.
"""

from __future__ import annotations

from pathlib import Path

from modfit.experiment import prepare_data, resolve, run
from modfit.output import write_atomic, write_run
from modfit.report.dynamics import plot_dynamics

DEMO_DEFENCES = ("none", "fewer-epochs", "lower-lr", "safe")
DEMO_SETTINGS = {
    "dataset": "sst2",
    "attack": {"name": "badnet", "mode": "dirty", "rate": 0.1, "target": 1},
    "train_size": 3000,
    "train": {},
    "seed": 0,
}
# A defence holds when its ASR is within this many points of its floor and its CACC at most
# `HOLD_CACC_COST` points below the undefended run's (the targets of issue 17).
HOLD_ASR_GAP, HOLD_CACC_COST = 0.10, 0.02


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


def verdict(rows: list[tuple[str, dict]]) -> str:
    """One sentence: which defences held against the backdoor at a small cost in clean accuracy."""
    undefended = dict(rows)["none"]
    held = [name for name, m in rows if name != "none"
            and m["asr"] - m["asr_floor"] <= HOLD_ASR_GAP and m["cacc"] >= undefended["cacc"] - HOLD_CACC_COST]  # fmt: skip
    rule = (f"ASR within {HOLD_ASR_GAP * 100:.0f} points of its floor, CACC at most "
            f"{HOLD_CACC_COST * 100:.0f} points below the undefended run's")  # fmt: skip
    if not held:
        return f"No defence held at this budget ({rule})."
    return f"Held ({rule}): {', '.join(held)}."


def run_demo(out: str | Path, train_size: int | None = None, progress: bool = True) -> str:
    """Run every demo defence, write each run and a shared dynamics plot, return the summary."""
    out = Path(out)
    settings = dict(DEMO_SETTINGS, train_size=train_size or DEMO_SETTINGS["train_size"])
    first = resolve(settings)
    data = prepare_data(first)  # the same poisoned data for every defence
    print(
        f"SST-2, BadNet 10% dirty-label, target 1: a seeded subset of {len(data.train)} training rows "
        f"({sum(e.poisoned for e in data.train)} poisoned); CACC/ASR on "
        + (f"a seeded {size}-row subset of dev and test" if (size := settings["train"].get("eval_size"))
           else "the full dev and test sets")
    )  # fmt: skip
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
    return f"{table}\n\n{verdict(rows)}\ndynamics plot: {out / 'dynamics.png'}"
