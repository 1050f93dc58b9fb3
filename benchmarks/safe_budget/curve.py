"""`safe`'s gap and ΔCACC against its trusted budget N, from the study's committed stores.

Every cell of the study's specs (`safe_budget.yaml`, `safe_budget_target0.yaml`) is looked up by its
hash in the given stores (a `none` cell also in the reference studies that ran it first, under the same
hash). Per dataset, target, rate and attack, and per N ∈ {0, 50, 100, 250, all}: gap = ASR − floor and
ΔCACC = CACC − `none`'s CACC of the same seed, in points, the mean over the seeds found (their count in
brackets). Writes OUT/curve.md (that table, then one row per cell: the scanner's recall, precision and
clean accuracy, the rows dropped) and OUT/curve.png (gap and ΔCACC against N, a row per
dataset and target). Reads only; seconds.

    python benchmarks/safe_budget/curve.py --out benchmarks/safe_budget/report
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import yaml
from matplotlib.figure import Figure

from modfit.grid import expand, parse_spec
from modfit.report.figure import to_png

HERE = Path(__file__).resolve().parent
SPECS = (HERE / "safe_budget.yaml", HERE / "safe_budget_target0.yaml")
STORES = (
    *sorted((HERE / "stores").glob("*.sqlite")),
    HERE.parent / "safe_clean_baseline" / "stores" / "safe_clean_baseline.sqlite",
    *sorted((HERE.parent / "safe_heavy" / "stores").glob("*.sqlite")),
)
BUDGETS = {"safe-n0": "0", "safe-n50": "50", "safe-n100": "100", "safe-n250": "250", "safe": "all"}
# The bar: gap ≤ +10, or ≤ a never-poisoned model's gap + 2 where that is higher, at ΔCACC ≥ −2.
# Never-poisoned gaps over +8 (benchmarks/clean_model_asr/results.md: SST-2 the mean of seeds 0–2, HSOL
# target 0 seed 0); every other attack's is within two points of zero.
CLEAN_GAP = {("sst2", 1, "syntactic"): 11.3, ("sst2", 1, "style"): 9.8, ("hsol", 0, "syntactic"): 25.2,
             ("hsol", 0, "style"): 21.5}  # fmt: skip
COLOURS = {"badnet": "C0", "addsent": "C1", "syntactic": "C2", "style": "C3"}
# The tuning cells of rules 4 and 5 ran through self_choice.py, not a store: (its file, run) per N.
TUNING_CELL = ("sst2", 1, 0.1, "badnet")
TUNING = {
    "0": ("drop_choice.json", "self_k2_ep2_lr5e-05"),
    "100": ("small_budget_choice.json", "self_trusted_drop"),
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stores", type=Path, nargs="+", default=list(STORES))
    return parser.parse_args()


def finished(stores: list[Path]) -> dict[str, dict]:
    """Every finished cell's metrics, by hash, from every store, read-only: a store a grid is writing
    (its -wal file beside it) through its journal, a finished one as immutable (no -wal file made)."""
    metrics = {}
    for store in stores:
        live = Path(f"{store}-wal").exists()
        with sqlite3.connect(f"file:{store}?mode=ro{'' if live else '&immutable=1'}", uri=True) as db:
            rows = db.execute("SELECT hash, metrics FROM cells WHERE status = 'done'").fetchall()
        metrics.update({digest: json.loads(text) for digest, text in rows})
    return metrics


def points(metrics: dict[str, dict]) -> tuple[dict[tuple, dict[str, list[tuple[float, float]]]], list[str]]:
    """(dataset, target, rate, attack) → N → [(gap, ΔCACC) per seed found with its `none`], and a
    table row per such cell: what the scanner caught and what was dropped."""
    found: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    rows = []
    for spec in SPECS:
        cells = expand(parse_spec(yaml.safe_load(spec.read_text()), spec.name))
        by_place = {
            (c.coordinates.dataset, c.experiment.attack.target, c.coordinates.rate, c.coordinates.attack,
             c.coordinates.seed, c.coordinates.defence): metrics.get(c.hash)
            for c in cells
        }  # fmt: skip
        for (*where, seed, defence), measured in by_place.items():
            base = by_place.get((*where, seed, "none"))
            if defence in BUDGETS and measured and base:
                gap = 100 * (measured["asr"] - measured["asr_floor"])
                found[tuple(where)][BUDGETS[defence]].append((gap, 100 * (measured["cacc"] - base["cacc"])))
                rows.append(cell_row(where, seed, BUDGETS[defence], measured, base))
    for n, (file, run) in TUNING.items():
        results = json.loads((HERE / "results" / file).read_text())
        tuned, base = results[run], results["none"]
        gap = 100 * (tuned["asr"] - tuned["asr_floor"])
        found[TUNING_CELL][n] = [(gap, 100 * (tuned["cacc"] - base["cacc"]))]
    return found, sorted(rows)


CELL_HEADER = (
    "| dataset (target) | rate | attack | seed | N | `none` CACC / gap | CACC / ASR / floor | gap | ΔCACC "
    "| recall | precision | scanner acc | dropped (by the lever) |\n|---|---:|---|---:|---|---|---|"
    + "---:|" * 6
    + "\n"
)


def cell_row(where: list, seed: int, n: str, measured: dict, base: dict) -> str:
    dataset, target, rate, attack = where
    gap, base_gap = (100 * (m["asr"] - m["asr_floor"]) for m in (measured, base))
    return (
        f"| {dataset} ({target}) | {rate:g} | {attack} | {seed} | {n} | {base['cacc']:.3f} / {base_gap:+.1f} "
        f"| {measured['cacc']:.3f} / {measured['asr']:.3f} / {measured['asr_floor']:.3f} | {gap:+.1f} "
        f"| {100 * (measured['cacc'] - base['cacc']):+.2f} | {measured['recall']:.2f} "
        f"| {measured['precision']:.2f} | {measured['scanner_cacc']:.3f} "
        f"| {measured['removed_rows']:,} ({measured.get('feature_dropped', 0):,}) |"
    )


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def table(found: dict) -> str:
    lines = [
        "| dataset (target) | rate | attack | " + " | ".join(f"N = {n}" for n in BUDGETS.values()) + " |",
        "|---|---:|---|" + "---|" * len(BUDGETS),
    ]
    for (dataset, target, rate, attack), by_n in sorted(found.items()):
        row = []
        for n in BUDGETS.values():
            seeds = by_n.get(n, [])
            gaps, deltas = [g for g, _ in seeds], [d for _, d in seeds]
            tuning = "†" if (dataset, target, rate, attack) == TUNING_CELL and n in TUNING else ""
            bar = max(10.0, CLEAN_GAP.get((dataset, target, attack), 0.0) + 2)
            held = " ✓" if seeds and mean(gaps) <= bar and mean(deltas) >= -2 else ""
            row.append(
                f"{mean(gaps):+.1f} / {mean(deltas):+.2f} ({len(seeds)}){tuning}{held}" if seeds else ""
            )
        lines.append(f"| {dataset} ({target}) | {rate:g} | {attack} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def figure(found: dict) -> bytes:
    groups = sorted({(dataset, target) for dataset, target, _, _ in found})
    x = {n: i for i, n in enumerate(BUDGETS.values())}
    fig = Figure(figsize=(11, 3.2 * len(groups)))
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for row, (dataset, target) in enumerate(groups):
        for (d, t, rate, attack), by_n in sorted(found.items()):
            if (d, t) != (dataset, target):
                continue
            ns = [n for n in BUDGETS.values() if by_n.get(n)]
            for column in (0, 1):  # gap, ΔCACC
                ys = [mean([p[column] for p in by_n[n]]) for n in ns]
                colour = COLOURS.get(attack)
                axes[row][column].plot(
                    [x[n] for n in ns], ys, marker="o", color=colour, label=f"{attack} {rate:g}"
                )
        for column, (name, bound) in enumerate((("gap (points)", 10.0), ("ΔCACC (points)", -2.0))):
            ax = axes[row][column]
            ax.axhline(bound, color="grey", linestyle="--", linewidth=0.8)
            ax.set_xticks(list(x.values()), [f"N = {n}" for n in x])
            ax.set_title(f"{dataset} (target {target}): {name}")
        axes[row][1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return to_png(fig, "safe against its trusted budget N (mean over the seeds run)")


def main() -> None:
    args = arguments()
    found, cells = points(finished(args.stores))
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(found)
    (args.out / "curve.md").write_text(
        "gap / ΔCACC in points against `none` (seeds found); † a rule's tuning cell (results/); ✓ holds (gap ≤ "
        "+10, or ≤ a never-poisoned model's gap + 2, at ΔCACC ≥ −2; CLEAN_GAP in curve.py); written by "
        "curve.py\n\n" + text + "\nEach cell:\n\n" + CELL_HEADER + "\n".join(cells) + "\n"
    )
    (args.out / "curve.png").write_bytes(figure(found))
    print(text)


if __name__ == "__main__":
    main()
