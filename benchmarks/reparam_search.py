"""Search the reparameterized presets' training settings on a small SST-2 BadNet budget.

Why: the paper's lr (3e-4) was set for 10 epochs on all of SST-2; this machine affords a few
hundred steps. Each candidate is a partial config layered over its preset, run one at a time on the
same poisoned subset; the table lands in benchmarks/results/reparam_search.md (by hand, with the
command and date). It ran on the presets before issue 26; they are now the paper's authors' recipe
(head, initialisation, 128 tokens, fp32), which a rerun's candidates are layered over.

    python benchmarks/reparam_search.py --only lora-lr1e-2 --log /tmp/reparam_search.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

from modfit.config import merge
from modfit.experiment import prepare_data, resolve, run

BASE = {
    "dataset": "sst2",
    "attack": {"name": "badnet", "mode": "dirty", "rate": 0.1, "target": 1},
    "train_size": 1000,
    "train": {"epochs": 2, "eval_size": 300, "eval_every": 16},
    "seed": 0,
}


def reparam(**values) -> dict:
    return {"tuning": {"options": {"reparam": values}}}


CANDIDATES: dict[str, tuple[str, dict]] = {
    "none": ("none", {}),
    "lora-lr3e-3": ("lora-reparam", {"train": {"lr": 3e-3}}),
    "lora-lr1e-2": ("lora-reparam", {"train": {"lr": 1e-2}}),
    "lora-paper-lr3e-3": ("lora-reparam", merge({"train": {"lr": 3e-3}}, reparam(init="paper"))),
    "lora-mid1-lr1e-2": ("lora-reparam", merge({"train": {"lr": 1e-2}}, reparam(mid_dim=1))),
    "lora-mid4-lr1e-2": ("lora-reparam", merge({"train": {"lr": 1e-2}}, reparam(mid_dim=4))),
    "adapter-lr3e-3": ("adapter-reparam", {"train": {"lr": 3e-3}}),
    "adapter-lr1e-2": ("adapter-reparam", {"train": {"lr": 1e-2}}),
    "prefix-lr3e-3": ("prefix-reparam", {"train": {"lr": 3e-3}}),
    "prefix-lr1e-2": ("prefix-reparam", {"train": {"lr": 1e-2}}),
    "lora-lr1e-2-1ep": ("lora-reparam", {"train": {"lr": 1e-2, "epochs": 1}}),
    "adapter-lr3e-3-1ep": ("adapter-reparam", {"train": {"lr": 3e-3, "epochs": 1}}),
    "adapter-mid1-lr3e-3-1ep": (
        "adapter-reparam",
        merge({"train": {"lr": 3e-3, "epochs": 1}}, reparam(mid_dim=1)),
    ),
    "prefix-lr3e-3-1ep": ("prefix-reparam", {"train": {"lr": 3e-3, "epochs": 1}}),
    "prefix-lr1e-2-1ep": ("prefix-reparam", {"train": {"lr": 1e-2, "epochs": 1}}),
    "lora-lr5e-3": ("lora-reparam", {"train": {"lr": 5e-3}}),
    "lora-lr5e-3-3ep": ("lora-reparam", {"train": {"lr": 5e-3, "epochs": 3}}),
    "lora-lr3e-3-3ep": ("lora-reparam", {"train": {"lr": 3e-3, "epochs": 3}}),
    "adapter-lr1e-3": ("adapter-reparam", {"train": {"lr": 1e-3}}),
    "plain-lora-lr1e-3": ("none", {"tuning": {"method": "lora"}, "train": {"lr": 1e-3}}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(CANDIDATES), default=sorted(CANDIDATES))
    parser.add_argument("--log", default="reparam_search.jsonl", help="one JSON line per finished run")
    args = parser.parse_args()
    data = prepare_data(resolve(BASE))
    for name in args.only:
        defence, override = CANDIDATES[name]
        settings = merge(merge(BASE, {"defence": defence}), override)
        started = time.perf_counter()
        result = run(resolve(settings), progress=False, data=data)
        row = {
            "name": name,
            "settings": override,
            "metrics": result.metrics(),
            "history": [
                [p.step, round(p.cacc, 3), round(p.asr, 3), round(p.asr_floor, 3)] for p in result.history
            ],
            "seconds": round(time.perf_counter() - started),
        }
        with open(args.log, "a", encoding="utf-8") as log:
            log.write(json.dumps(row) + "\n")
        m = row["metrics"]
        print(f"| {name} | {m['cacc']:.3f} | {m['asr']:.3f} | {m['asr_floor']:.3f} | {m['trainable_params']:,} | "
              f"{m['generated_params']:,} | {row['seconds']} | {row['history']}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
