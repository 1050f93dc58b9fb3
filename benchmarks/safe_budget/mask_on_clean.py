"""What rule 3's mask (`self_mask` 0.95, ≥ MASK_MIN_ROWS rows) cuts from clean training data.

For SST-2, HSOL and AG News, the seeded 3,000-row training subset (seed 0, no attack): how many words
and word pairs the masked self-scanner would hide, and how many rows carry one. The counts that rule 3
quotes (README.md); clean data only, seconds.

    python benchmarks/safe_budget/mask_on_clean.py
"""

from __future__ import annotations

from modfit.baselines.scanners.self_fit import pure_features
from modfit.baselines.trigger_features import text_features
from modfit.data import load_dataset, subsample

PURITY = 0.95


def main() -> None:
    print("| dataset | features cut | rows carrying one | most common |\n|---|---:|---:|---|")
    for name in ("sst2", "hsol", "agnews"):
        rows = subsample(load_dataset(name).train, 3000, 0)
        texts = [e.text for e in rows]
        cut = pure_features(texts, [e.label for e in rows], PURITY)
        carriers = [text_features(t) & cut for t in texts]
        common = sorted(cut, key=lambda f: -sum(f in c for c in carriers))[:5]
        print(f"| {name} | {len(cut)} | {sum(bool(c) for c in carriers)} | {', '.join(common)} |")


if __name__ == "__main__":
    main()
