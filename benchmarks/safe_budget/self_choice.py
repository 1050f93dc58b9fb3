"""The no-trust self-scanner's dose (`trusted=0`), chosen on one tuning cell named before the runs.

The rule, fixed before the runs (README.md, "Rule written before the runs"):

- **The tuning cell, and only it:** SST-2, BadNet, 10 % dirty, target 1, 3,000 training rows, seed 0,
  the packaged MiniLM at its undefended schedule. Every other cell is held out.
- **Runs:** `none`, then `safe` with `trusted=0` (`scanner=self`) at each candidate dose below.
- **Score:** gap = ASR − floor and ΔCACC = CACC − `none`'s CACC, both in points.
- **Choice:** among candidates with ΔCACC ≥ −2, the lowest gap; every candidate within 2 points of it
  counts as tied, and ties go to the cheapest (fewest training rows passed through the fold models:
  folds × (folds − 1) / folds × rows × epochs, then the lower lr). If no candidate reaches ΔCACC ≥ −2,
  none is chosen: the defaults stay and a new candidate list is written down before any further run.
  The choice becomes SafeOptions' `self_folds`, `self_epochs`, `self_lr` defaults.

`--rule 3`, `--rule 4` and `--rule 5` (README.md) keep the cell, score and choice, over their own
candidates (RULES below): rule 3 the self-scanner with `self_mask` 0.95 (label-pure words cut from what
its fold models see), rule 4 the same with `action=drop`, rule 5 the scanner and action for 100 trusted
rows. Each writes OUT/<its file>; its `none` run is rule 2's (copied from OUT/self_choice.json when
there: the same cell and code). The choice becomes the defaults of the options it sets.

A finished run in OUT/<its file> is reused (the sweep resumes); `--only NAME` runs one candidate (two
processes may share OUT: each rereads the file before it writes). `--dataset`, `--model`,
`--train-size` override the cell for a smoke test only; such a run judges nothing.

    python benchmarks/safe_budget/self_choice.py --out runs/safe_budget
    python benchmarks/safe_budget/self_choice.py --out runs/safe_budget --rule 3
    python benchmarks/safe_budget/self_choice.py --out runs/safe_budget --rule 4
    python benchmarks/safe_budget/self_choice.py --out runs/safe_budget --rule 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from modfit import resolve, run

# (self_folds, self_epochs, self_lr): a light, the default, a shorter hotter, a longer and a 4-fold dose
CANDIDATES = ((2, 1.0, 2e-5), (2, 1.0, 5e-5), (2, 0.5, 1e-4), (2, 3.0, 2e-5), (4, 1.0, 5e-5))
# rule 3 (written 2026-12-07 before its runs): the mask fixed at purity 0.95 (on clean 3,000-row SST-2 it
# cuts one word's 22 rows); today's dose, the rule-2 dose whose fold models learnt the task, and between.
# Rule 4 (written after rule 3 chose nothing, before its runs): rule 3's two cheapest doses, dropping.
MASK = {"self_mask": 0.95}
# Rule 5 (written 2026-12-07, before its runs): 100 trusted rows; rule 1's probe relabelling (the default
# then), the probe dropping, and rule 4's masked self-scanner, dropping, with the trusted rows joining its
# fold models. Cheapest first.
SMALL_BUDGET = (
    ("probe_relabel", {"trusted": 100, "scanner": "probe", "action": "relabel"}),
    ("probe_drop", {"trusted": 100, "scanner": "probe", "action": "drop"}),
    ("self_trusted_drop", {"trusted": 100, "scanner": "self", "action": "drop"}),
)


def name(folds: int, epochs: float, lr: float) -> str:
    return f"self_k{folds}_ep{epochs:g}_lr{lr:g}"


def doses(candidates: tuple, fixed: dict) -> tuple[tuple[str, dict], ...]:
    """A dose sweep of the no-trust self-scanner as (name, options), cheapest first (fewest rows through
    the fold models: folds × (folds − 1) / folds × epochs, then the lower lr)."""
    ordered = sorted(candidates, key=lambda c: (c[0] * (c[0] - 1) / c[0] * c[1], c[2]))
    return tuple(
        (name(*c), {"trusted": 0, "self_folds": c[0], "self_epochs": c[1], "self_lr": c[2], **fixed})
        for c in ordered
    )


RULES = {
    2: ("self_choice.json", doses(CANDIDATES, {})),
    3: ("mask_choice.json", doses(((2, 1.0, 5e-5), (2, 2.0, 5e-5), (2, 3.0, 2e-5)), MASK)),
    4: ("drop_choice.json", doses(((2, 1.0, 5e-5), (2, 2.0, 5e-5)), {**MASK, "action": "drop"})),
    5: ("small_budget_choice.json", SMALL_BUDGET),
}
CACC_BOUND = -2.0
TIE = 2.0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rule", type=int, choices=sorted(RULES), default=2, help="2 (default), 3, 4 or 5")
    parser.add_argument("--only", default=None, help="run this candidate alone (then no verdict)")
    parser.add_argument("--dataset", default="sst2", help="smoke tests only")
    parser.add_argument("--model", default=None, help="smoke tests only")
    parser.add_argument("--train-size", type=int, default=3000, help="smoke tests only")
    return parser.parse_args()


def measured(args: argparse.Namespace, defence: str, options: dict) -> dict:
    settings = {
        "dataset": args.dataset,
        "attack": {"name": "badnet", "mode": "dirty", "rate": 0.1, "target": 1},
        "train_size": args.train_size,
        "seed": 0,
        "defence": defence,
        "defence_options": options,
        **({"model": {"name": args.model}} if args.model else {}),
    }
    started = time.perf_counter()
    metrics = run(resolve(settings), progress=False).metrics()
    keep = (
        "cacc",
        "asr",
        "asr_floor",
        "flagged_rows",
        "flagged_poisoned",
        "precision",
        "recall",
        "scanner_cacc",
    )
    return {**{k: metrics[k] for k in keep if k in metrics}, "seconds": time.perf_counter() - started}


def main() -> None:
    args = arguments()
    args.out.mkdir(parents=True, exist_ok=True)
    file, candidates = RULES[args.rule]
    rule2, store = args.out / RULES[2][0], args.out / file
    results = json.loads(store.read_text()) if store.exists() else {}
    if "none" not in results and rule2.exists():
        results["none"] = json.loads(rule2.read_text())["none"]
    runs = [("none", "none", {})] + [(k, "safe", o) for k, o in candidates]
    for key, defence, options in runs:
        if key not in results and args.only in (None, key):
            result = measured(args, defence, options)
            results = {**(json.loads(store.read_text()) if store.exists() else results), key: result}
            store.write_text(json.dumps(results, indent=1))
        if key in results:
            print(f"{key}: {results[key]}", flush=True)
    if any(key not in results for key, _, _ in runs):
        return  # a candidate has not run (--only): no verdict yet
    base = results["none"]["cacc"]
    gap = {n: 100 * (r["asr"] - r["asr_floor"]) for n, r in results.items()}
    delta = {n: 100 * (r["cacc"] - base) for n, r in results.items()}
    allowed = [k for k, _ in candidates if delta[k] >= CACC_BOUND]
    best = min((gap[k] for k in allowed), default=None)
    tied = [k for k in allowed if best is not None and gap[k] <= best + TIE]
    chosen = tied[0] if tied else None  # candidates are listed cheapest first
    print("\n| run | gap | ΔCACC | recall | precision | seconds | |\n|---|---:|---:|---:|---:|---:|---|")
    for n, r in results.items():
        mark = "**chosen**" if n == chosen else ("tied" if n in tied else "")
        print(f"| {n} | {gap[n]:+.1f} | {delta[n]:+.2f} | {r.get('recall', float('nan')):.3f} "
              f"| {r.get('precision', float('nan')):.3f} | {r['seconds']:.0f} | {mark} |")  # fmt: skip
    if chosen is None:
        print("\nno candidate reaches ΔCACC ≥ −2: nothing chosen, the defaults stay")
    else:
        options = ", ".join(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
                            for key, value in dict(candidates)[chosen].items())  # fmt: skip
        print(f"\nchosen: {chosen} ({options})")


if __name__ == "__main__":
    main()
