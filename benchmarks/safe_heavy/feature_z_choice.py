"""`safe`'s `feature_z` threshold, chosen on clean training data alone (issue 27, item 6).

The rule, fixed before the run:

- **Data:** for each dataset (HSOL, SST-2), a seeded (seed 0) 3,000-row subset of the clean training
  split, as a grid's `train_size: 3000` draws it, and no poison: no attack, no ASR, no test row in the
  choice.
- **The first verdict:** `safe`'s default scanner, fitted on the clean dev split exactly as `safe` fits
  it (its own `scan`, `label_verdict` and `row_decisions`: the packaged MiniLM, seed 0), judges the
  3,000 rows; on clean data every row it flags is an honest row it disputes.
- **Count:** for each Z in (4, 5, 6, 8, 10, 12, 15), the rows the trigger-feature lever
  (`modfit.baselines.trigger_features`) would drop beyond that verdict. There is no trigger to find, so
  every one is an honest row lost.
- **Choice:** the smallest Z in the list that drops at most 1 % of the clean rows (30 of 3,000) on both
  datasets; none if no Z does.

Each dataset's first verdict (its rows' given labels and flags) and its texts' features are kept in
OUT/feature_z_choice.json beside the table and the choice, so a rerun resumes without refitting a scanner.
Cost: two scanner fits on dev and two scoring passes over 3,000 rows (a few minutes on 2 CPU cores).

    OMP_NUM_THREADS=2 python benchmarks/safe_heavy/feature_z_choice.py --out runs/feature_z

The third rule's clean-data bound counts the greedy lever's drops on the same stored verdicts (seconds):

    python benchmarks/safe_heavy/feature_z_choice.py --out runs/feature_z --select greedy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from modfit import resolve
from modfit.baselines.base import Context
from modfit.baselines.safe import SafeOptions, label_verdict, row_decisions, scan, trusted_rows
from modfit.baselines.trigger_features import SELECTIONS, spurious_rows, text_features
from modfit.encoding import encode
from modfit.experiment import prepare_data

DATASETS = ("hsol", "sst2")
ZS = (4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0)
ROWS = 3000
SEED = 0
MAX_SHARE = 0.01  # of the clean rows the lever may drop


def first_verdict(dataset: str, model: str | None = None, rows: int = ROWS) -> dict[str, Any]:
    """`safe`'s first verdict on a clean, seeded `rows`-row training subset, by safe's own code path
    at its defaults: the given labels, the flags, and each text's features (sorted lists, for JSON)."""
    settings = {
        "dataset": dataset,
        "attack": {"name": "none"},
        "defence": "safe",
        "seed": SEED,
        "train_size": rows,
    }
    experiment = resolve({**settings, **({"model": {"name": model}} if model else {})})
    data = prepare_data(experiment)
    context = Context(experiment, data, False, (), encode)
    options = SafeOptions()
    scanned = scan(context, options, trusted_rows(context, options))
    verdict = label_verdict(scanned.probabilities, [e.label for e in data.train], options.filter_by)
    decisions = row_decisions(data.train, verdict, options.action)
    return {
        "labels": [d.label for d in decisions],
        "flagged": [d.flagged for d in decisions],
        "features": [sorted(text_features(d.text)) for d in decisions],
        "scanner_cacc": scanned.test_accuracy,
    }


def dropped_counts(
    verdict: dict[str, Any], zs: tuple[float, ...] = ZS, select: str = "all"
) -> dict[float, int]:
    """For each Z, the rows the lever (its features all at once, or one at a time: `select`) would drop
    beyond the first verdict."""
    features = [frozenset(f) for f in verdict["features"]]
    labels, flagged = verdict["labels"], verdict["flagged"]
    return {z: len(spurious_rows(features, labels, flagged, z, select=select)[0]) for z in zs}


def choose(
    dropped: dict[str, dict[float, int]], rows: dict[str, int], max_share: float = MAX_SHARE
) -> float | None:
    """The smallest Z that drops at most `max_share` of each dataset's rows, on every dataset (None:
    no Z does)."""
    zs = sorted(set.intersection(*(set(counts) for counts in dropped.values())))
    return next(
        (z for z in zs if all(dropped[d][z] <= max_share * rows[d] for d in dropped)),
        None,
    )


def table(dropped: dict[str, dict[float, int]], rows: dict[str, int]) -> str:
    """Markdown: dataset × Z → rows dropped (share of the dataset's rows)."""
    zs = sorted(next(iter(dropped.values())))
    lines = [
        "| dataset | " + " | ".join(f"Z = {z:g}" for z in zs) + " |",
        "|---|" + "---:|" * len(zs),
    ]
    for dataset, counts in dropped.items():
        cells = " | ".join(f"{counts[z]} ({counts[z] / rows[dataset]:.1%})" for z in zs)
        lines.append(f"| {dataset} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--select",
        choices=SELECTIONS,
        default="all",
        help="the lever's features all at once (the second rule) or one at a time (the third rule's "
        "clean-data bound; it reads the verdicts a run with `all` stored and writes feature_z_choice_greedy.json)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "feature_z_choice.json"
    saved = json.loads(store.read_text()) if store.exists() else {}
    verdicts = saved.get("verdicts", {})
    for dataset in DATASETS:
        if dataset not in verdicts:
            started = time.perf_counter()
            verdicts[dataset] = {**first_verdict(dataset), "seconds": time.perf_counter() - started}
            store.write_text(json.dumps({"verdicts": verdicts}))
        verdict = verdicts[dataset]
        print(
            f"{dataset}: {sum(verdict['flagged'])} of {len(verdict['labels'])} rows flagged by the first verdict "
            f"(scanner test accuracy {verdict['scanner_cacc']:.3f}, {verdict['seconds']:.0f} s)",
            flush=True,
        )
    dropped = {d: dropped_counts(verdicts[d], select=args.select) for d in DATASETS}
    rows = {d: len(verdicts[d]["labels"]) for d in DATASETS}
    chosen = choose(dropped, rows)
    print("\n" + table(dropped, rows) + "\n")
    print(
        f"chosen: feature_z = {chosen:g}"
        if chosen is not None
        else "chosen: none (every Z drops more than 1 %)"
    )
    result = {
        "table": {d: {f"{z:g}": n for z, n in counts.items()} for d, counts in dropped.items()},
        "rows": rows,
        "max_share": MAX_SHARE,
        "chosen": chosen,
    }
    if args.select == "all":
        store.write_text(json.dumps({**result, "verdicts": verdicts}))
    else:
        (args.out / f"feature_z_choice_{args.select}.json").write_text(
            json.dumps({**result, "select": args.select}, indent=1)
        )


if __name__ == "__main__":
    main()
