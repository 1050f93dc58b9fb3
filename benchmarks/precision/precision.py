"""Is bf16 faster than fp32 on this CPU? `modfit.fit` training and `modfit.predict` inference on the packaged
MiniLM at each precision, interleaved fp32, bf16 over `--repeats` rounds; prints the CPU's bf16 flags.

`precision auto` picks bf16 on CPUs with AMX (`modfit.precision.cpu_has_bf16`); this measures whether
bf16 pays on the machine at hand. Run it alone on the machine:

    python benchmarks/precision/precision.py --rows 320 --repeats 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from modfit import ModelConfig, TrainConfig, fit, load_classifier, load_dataset, predict
from modfit.encoding import encode

MAX_LENGTH, BATCH = 64, 32


def cpu_flags() -> str:
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read().split()
    except OSError:
        return "unknown"
    return ", ".join(sorted({f for f in flags if "bf16" in f or f.startswith("amx")})) or "none"


def train_rate(rows, precision: str) -> float:
    model, tokenizer = load_classifier(ModelConfig(), 2, seed=0)
    data = encode(rows, tokenizer, MAX_LENGTH)
    started = time.perf_counter()
    fit(model, data, TrainConfig(epochs=1.0, lr=1e-4, batch_size=BATCH, precision=precision), seed=0)
    return len(rows) / (time.perf_counter() - started)


def predict_rate(rows, precision: str) -> float:
    model, tokenizer = load_classifier(ModelConfig(), 2, seed=0)
    data = encode(rows, tokenizer, MAX_LENGTH)
    started = time.perf_counter()
    predict(model, data, precision)
    return len(rows) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=320, help="training rows per round (batch 32)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    dataset = load_dataset("sst2")
    train, test = dataset.train[: args.rows], dataset.test
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for precision in ("fp32", "bf16"):
            rates.setdefault(("train", precision), []).append(train_rate(train, precision))
            rates.setdefault(("predict", precision), []).append(predict_rate(test, precision))
    print(f"CPU: {platform.processor() or platform.machine()}; bf16 flags: {cpu_flags()}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    print("| stage | fp32 rows/s | bf16 rows/s | bf16 / fp32 |")
    print("|---|---:|---:|---:|")
    for stage in ("train", "predict"):
        fp32, bf16 = (statistics.median(rates[(stage, p)]) for p in ("fp32", "bf16"))
        print(f"| {stage} | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32:.2f} |")


if __name__ == "__main__":
    main()
