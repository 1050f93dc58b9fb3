"""`make demo`'s job as it runs on a CPU without bf16 (issue 26: it must end in under 15 minutes on 2
cores without bf16). `precision auto` resolves to fp32 there; this script makes it do so here too, by
telling modfit the CPU has no native bf16, then times the demo and records its table.

    python benchmarks/demo/demo_fp32.py --out runs/demo-fp32
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import modfit.precision
from modfit.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    modfit.precision.cpu_has_bf16 = lambda: False  # as on a CPU without AMX
    started = time.perf_counter()
    table = run_demo(args.out, progress=False)
    seconds = time.perf_counter() - started
    print(table)
    record = Path(__file__).with_name("results_fp32.md")
    record.write_text(
        f"# The demo without bf16\n\nDate: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Command: "
        f"`python benchmarks/demo/demo_fp32.py --out {args.out}` (precision auto resolved to fp32, as on a "
        f"CPU without bf16), {platform.processor() or platform.machine()}, alone on the machine. "
        f"Wall time of the demo's runs (no install): {seconds:.0f} s.\n\n{table}\n",
        encoding="utf-8",
    )
    print(f"recorded {record} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
