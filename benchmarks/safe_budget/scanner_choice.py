"""Which scanner should `safe` use for a budget of N trusted rows? Chosen on clean dev data alone.

The rule, fixed before the runs (README.md, "Rule written before the runs"):

- **Data:** the clean dev splits of SST-2 (872 rows) and HSOL (1,228 rows) and nothing else: no
  training row, no poison, no test row, no ASR. For each budget N ∈ {50, 100, 250} and each of three
  draws (seeds 0, 1, 2), N rows are drawn from dev, seeded and label-stratified
  (`stratified_sample`, as `safe`'s `trusted=N` draws them).
- **Score:** the candidate scanner learns from the N drawn rows and classifies the rest of dev (clean
  too, never seen by it); the score of a candidate at N on a dataset is its accuracy there, averaged
  over the three draws. The scanner code is `safe`'s own (`modfit.baselines.scanners`), with its
  defaults (finetune: lr 1e-4, 6 epochs, batch 32; the packaged MiniLM; seed 0).
- **Candidates,** cheapest first: `probe` (logistic regression on the frozen encoder's features),
  `finetune` (today's scanner), `finetune_scaled` (today's, with its epochs scaled up to as many steps
  as it takes on 872 rows).
- **Choice:** per budget, the candidate with the highest mean accuracy over the two datasets; every
  candidate within 1 point of it counts as tied, and ties go to the cheaper one (the order above).
  The choices become `scanners.base.AUTO` (what `scanner=auto` picks for N trusted rows).

A finished result in OUT/scanner_choice.json is reused (the sweep resumes). `--model`, `--datasets`,
`--budgets`, `--draws` override the study for a smoke test only (e.g. a tiny model on a toy folder);
such a run judges nothing.

    python benchmarks/safe_budget/scanner_choice.py --out runs/safe_budget
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from modfit import resolve
from modfit.baselines.base import Context
from modfit.baselines.safe import SafeOptions
from modfit.baselines.scanners import SCANNERS
from modfit.data import stratified_sample
from modfit.encoding import encode
from modfit.experiment import prepare_data
from modfit.metrics import accuracy

CANDIDATES = ("probe", "finetune", "finetune_scaled")  # cheapest first
DATASETS = ("sst2", "hsol")
BUDGETS = (50, 100, 250)
DRAWS = (0, 1, 2)
TIE = 0.01
SEED = 0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default=None, help="smoke tests only")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--budgets", nargs="+", type=int, default=list(BUDGETS))
    parser.add_argument("--draws", nargs="+", type=int, default=list(DRAWS))
    return parser.parse_args()


def held_out_accuracy(dataset: str, model: str | None, budget: int, draw: int, candidate: str) -> float:
    """The candidate's accuracy on the dev rows it did not learn from."""
    # eval_size 1: the scanner's own test accuracy (unused here) costs one row, not a test split
    settings = {"dataset": dataset, "attack": {"name": "none"}, "seed": SEED, "train": {"eval_size": 1}}
    experiment = resolve({**settings, **({"model": {"name": model}} if model else {})})
    data = prepare_data(experiment)
    trusted = stratified_sample(data.splits.dev, budget, draw)
    rest = [e for e in data.splits.dev if e not in trusted]
    context = Context(experiment, dataclasses.replace(data, train=rest), False, (), encode)
    scan = SCANNERS.get(candidate).build(context, SafeOptions().scanner_settings(), trusted)
    return accuracy(scan.probabilities.argmax(-1).tolist(), [e.label for e in rest])


def choose(results: dict, datasets: list[str], budget: int, draws: list[int]) -> tuple[dict, str]:
    """Each candidate's mean accuracy over the datasets (each the mean over draws), and the choice."""
    scores = {
        c: sum(sum(results[f"{d}_N{budget}_draw{k}_{c}"]["accuracy"] for k in draws) / len(draws) for d in datasets)
        / len(datasets)
        for c in CANDIDATES
    }  # fmt: skip
    best = max(scores.values())
    return scores, next(c for c in CANDIDATES if scores[c] >= best - TIE)


def main() -> None:
    args = arguments()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "scanner_choice.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    for dataset in args.datasets:
        for budget in args.budgets:
            for draw in args.draws:
                for candidate in CANDIDATES:
                    key = f"{dataset}_N{budget}_draw{draw}_{candidate}"
                    if key not in results:
                        started = time.perf_counter()
                        score = held_out_accuracy(dataset, args.model, budget, draw, candidate)
                        results[key] = {"accuracy": score, "seconds": time.perf_counter() - started}
                        store.write_text(json.dumps(results, indent=1))
                    print(
                        f"{key}: {results[key]['accuracy']:.4f} ({results[key]['seconds']:.0f} s)", flush=True
                    )
    print("\n| N | " + " | ".join(CANDIDATES) + " | chosen |\n|---:|" + "---:|" * len(CANDIDATES) + "---|")
    chosen = {}
    for budget in args.budgets:
        scores, chosen[budget] = choose(results, args.datasets, budget, args.draws)
        print(
            f"| {budget} | "
            + " | ".join(f"{scores[c]:.4f}" for c in CANDIDATES)
            + f" | **{chosen[budget]}** |"
        )
    print(
        "\nscanners.base.AUTO = ((0, 'self'), " + ", ".join(f"({n}, {c!r})" for n, c in chosen.items()) + ")"
    )
    print("(below the smallest budget the smallest budget's choice holds: write it at 1 instead of its N)")


if __name__ == "__main__":
    main()
