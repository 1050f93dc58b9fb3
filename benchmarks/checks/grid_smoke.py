"""End-to-end check of `modfit grid` and `modfit report` on the packaged MiniLM.

SST-2, BadNet and AddSent × no defence and `fewer-epochs`, seed 0, a seeded 200-row training subset,
with a representation map for one cell. Runs the grid, runs it again (which must run nothing), writes
the report and checks it: every cell done once, the report's table holds each stored CACC, every
image is a PNG. Exits non-zero on any failure; prints the wall time.

    python benchmarks/checks/grid_smoke.py [--out runs/grid_smoke] [--train-size 200] [--eval-size 200]

Measured: 12 minutes with OMP_NUM_THREADS=1 on a 2-core CPU shared with other jobs (load 6); most of
it is training (about 10 s a step there). On a quiet machine or a GPU it takes a minute or two.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import yaml

from modfit.cli import main as modfit
from modfit.store import open_store

SPEC = {
    "name": "grid-smoke",
    "datasets": ["sst2"],
    "attacks": ["badnet", "addsent"],
    "defences": ["none", "fewer-epochs"],
    "seeds": [0],
    "target": 1,
    "representations": {"sample": 100, "cells": [{"attack": "badnet", "defence": "none"}]},
}


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"grid smoke: FAILED: {message}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/grid_smoke")
    parser.add_argument("--train-size", type=int, default=200)
    parser.add_argument("--eval-size", type=int, default=200)
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec, store_path = out / "spec.yaml", out / "study.sqlite"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    sizes = ["--train-size", str(args.train_size), "--eval-size", str(args.eval_size)]

    started = time.perf_counter()
    check(
        modfit(["grid", str(spec), "--store", str(store_path), *sizes]) == 0,
        "the grid reported a failed cell",
    )
    grid_seconds = time.perf_counter() - started
    check(modfit(["grid", str(spec), "--store", str(store_path), *sizes, "--quiet"]) == 0, "the rerun failed")
    check(modfit(["report", str(store_path), "--out", str(out / "report")]) == 0, "the report failed")

    with open_store(store_path) as store:
        cells = store.cells()
    check(len(cells) == 4, f"expected 4 cells, found {len(cells)}")
    check(all(c.status == "done" and c.attempts == 1 for c in cells), "a cell is not done exactly once")
    check(sum(c.has_representations for c in cells) == 1, "the representation map was not recorded")
    markdown = (out / "report" / "report.md").read_text()
    for cell in cells:
        check(f"{100 * cell.metrics['cacc']:.1f}" in markdown, f"the report lacks the CACC of {cell.defence}")
    pngs = sorted((out / "report").glob("*.png"))
    check(len(pngs) >= 3 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs), "bad images")
    print(
        f"grid smoke: OK — 4 cells in {grid_seconds:.0f}s, report with {len(pngs)} images → {out / 'report'}"
    )
    for c in cells:
        m = c.metrics
        print(
            f"  {c.attack:8} {c.defence:13} CACC {m['cacc']:.3f}  ASR {m['asr']:.3f}  floor {m['asr_floor']:.3f}"
        )


if __name__ == "__main__":
    main()
