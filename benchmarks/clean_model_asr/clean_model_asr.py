"""The ASR of a model that never saw a poisoned row: how far above its floor each attack's triggered test
set sits when there is no backdoor at all.

The ASR floor (DESIGN.md) is the share of the non-target test rows, *without* the trigger, predicted as
the target. BadNet and AddSent leave the rest of the text as it was, so a model without a backdoor
scores near its floor on their triggered rows. The Syntactic and Style attacks replace the text by a
paraphrase, which can lose or soften the sentiment: a clean model then calls some paraphrased
non-target rows the target with no backdoor at all. That share — the clean-model ASR — is the lowest
ASR any defence can reach, and `ASR − floor` on a paraphrase attack cannot be read without it.

For each dataset: one run on the clean training sample of `benchmarks/safe_clean_baseline/safe_clean_baseline.yaml`'s
attack-none cell (3,000 rows, each seed, the packaged MiniLM at its baseline, lr 1e-4 and 2 epochs),
then its ASR and floor on the full test set of each attack (target 1 unless `--target` says, the same
seed), exactly as a poisoned cell measures them. The run's CACC should equal that cell's.

    python benchmarks/clean_model_asr/clean_model_asr.py --datasets sst2 hsol --seeds 0 1 2 --out runs/clean_model_asr.json
    python benchmarks/clean_model_asr/clean_model_asr.py --datasets hsol --target 0 --out runs/clean_model_asr.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from modfit import AttackConfig, make_trigger, poison_test, resolve, run
from modfit.data import dataset_dir
from modfit.encoding import encode
from modfit.evaluate import EvalSet, evaluate
from modfit.prepare import prepare_data

ATTACKS = ("badnet", "addsent", "syntactic", "style")
ROWS = 3000


def clean_model_asr(dataset: str, seed: int, target: int) -> dict:
    experiment = resolve({"dataset": dataset, "attack": {"name": "none", "target": target}, "seed": seed,
                          "train_size": ROWS})  # fmt: skip
    started = time.perf_counter()
    result = run(experiment, progress=False)
    splits = prepare_data(experiment).splits
    length = experiment.model.max_length
    measured = {"cacc": result.final.cacc, "train_seconds": time.perf_counter() - started}
    for name in ATTACKS:
        trigger = make_trigger(AttackConfig(name=name, target=target), dataset_dir(dataset))
        triggered = poison_test(splits.test, trigger, target, seed)
        data = EvalSet(
            dev=encode(splits.dev[:1], result.tokenizer, length),
            test=encode(splits.test, result.tokenizer, length),
            poison=encode(triggered.examples, result.tokenizer, length),
            sources=triggered.sources,
            target=target,
        )
        scores = evaluate(result.model, data, result.precision)
        measured[name] = {"asr": scores.asr, "floor": scores.asr_floor, "rows": len(triggered.examples)}
        print(dataset, seed, name, measured[name], flush=True)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["sst2", "hsol"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--target", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for dataset in args.datasets:
        for seed in args.seeds:
            key = f"{dataset} seed {seed}" + ("" if args.target == 1 else f" target {args.target}")
            if key not in results:
                results[key] = clean_model_asr(dataset, seed, args.target)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=1))
    print("\n| dataset, seed | CACC | attack | clean-model ASR | floor | ASR − floor (points) |")
    print("|---|---:|---|---:|---:|---:|")
    for key, measured in sorted(results.items()):
        for name in ATTACKS:
            m = measured[name]
            print(f"| {key} | {measured['cacc']:.3f} | {name} | {m['asr']:.3f} | {m['floor']:.3f} "
                  f"| {100 * (m['asr'] - m['floor']):+.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
