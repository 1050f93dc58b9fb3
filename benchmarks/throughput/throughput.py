"""Throughput of modfit's training and inference against the usual alternatives, in one run.

Training samples/s on SST-2 with the packaged MiniLM, batch 32, lr 2e-5, 64 tokens, at one precision:
`modfit.fit` (no callbacks) vs Hugging Face `Trainer` (its defaults, as a user runs it) vs a bare
PyTorch loop (random batches, `tokenizer.pad`, AdamW with torch's default implementation), on CUDA where there is one, interleaved
A, B, C, A, B, C over `--repeats` rounds. Inference rows/s on the SST-2 test split: `modfit.predict`
vs a bare length-sorted forward vs the pre-speed path (batches of 128 in input order). Optionally
(`--old-src DIR`) the end-to-end wall time of the README's 3,000-row `modfit train` command with this
checkout's code against the code in DIR (e.g. a worktree of the commit before the speed work). Prints
markdown; run it alone on the machine.

    python benchmarks/throughput/throughput.py --precision fp32 --repeats 2 [--steps 30] [--old-src /tmp/old/src]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from modfit import ModelConfig, TrainConfig, fit, load_classifier, load_dataset, predict
from modfit.encoding import encode
from modfit.precision import autocast, resolve_precision

BATCH, LR, MAX_LENGTH = 32, 2e-5, 64
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
END_TO_END = (
    "train --dataset sst2 --attack badnet --poison-rate 0.1 --defence none --train-size 3000 --seed 0 --quiet"
)


def modfit_fit(rows, precision: str) -> float:
    model, tokenizer = load_classifier(ModelConfig(), 2, seed=0)
    model.to(DEVICE)
    train = encode(rows, tokenizer, MAX_LENGTH)
    config = TrainConfig(epochs=1.0, lr=LR, batch_size=BATCH, precision=precision)
    started = time.perf_counter()
    fit(model, train, config, seed=0)
    return len(rows) / (time.perf_counter() - started)


def hf_trainer(rows, precision: str) -> float:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from modfit.model import default_model_path

    path = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    tokens = tokenizer([r.text for r in rows], truncation=True, max_length=MAX_LENGTH)
    data = [{**{k: v[i] for k, v in tokens.items()}, "labels": r.label} for i, r in enumerate(rows)]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            out, per_device_train_batch_size=BATCH, learning_rate=LR, num_train_epochs=1, use_cpu=DEVICE.type == "cpu",
            bf16=precision == "bf16", report_to=[], save_strategy="no", logging_strategy="no",
            disable_tqdm=True, seed=0,
        )  # fmt: skip
        trainer = Trainer(model, args, train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer))
        started = time.perf_counter()
        trainer.train()
        return len(rows) / (time.perf_counter() - started)


def bare_loop(rows, precision: str) -> float:
    model, tokenizer = load_classifier(ModelConfig(), 2, seed=0)
    device = DEVICE
    model.to(device)
    train = encode(rows, tokenizer, MAX_LENGTH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0)).tolist()
    model.train()
    started = time.perf_counter()
    for start in range(0, len(order), BATCH):
        inputs, labels = train.batch(order[start : start + BATCH], device)
        with autocast(device, precision):
            logits = model(**inputs)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return len(rows) / (time.perf_counter() - started)


def inference(test, precision: str) -> dict[str, float]:
    model, tokenizer = load_classifier(ModelConfig(), 2, seed=0)
    device = DEVICE
    model.to(device)
    data = encode(test, tokenizer, MAX_LENGTH)
    model.eval()

    def timed(run) -> tuple[float, list[int]]:
        started = time.perf_counter()
        out = run()
        return len(test) / (time.perf_counter() - started), out

    def forward(indices, size):
        out = {}
        with torch.inference_mode(), autocast(device, precision):
            for start in range(0, len(indices), size):
                chunk = indices[start : start + size]
                inputs, _ = data.batch(chunk, device)
                out.update(zip(chunk, model(**inputs).argmax(-1).tolist(), strict=True))
        return [out[i] for i in range(len(indices))]

    by_length = sorted(range(len(data)), key=lambda i: -data.lengths()[i])
    modfit_rate, modfit_out = timed(lambda: predict(model, data, precision))
    bare_rate, bare_out = timed(lambda: forward(by_length, 256))
    old_rate, old_out = timed(lambda: forward(list(range(len(data))), 128))
    agree = sum(a == b for a, b in zip(modfit_out, old_out, strict=True)) / len(test)
    return {"modfit": modfit_rate, "bare_sorted": bare_rate, "input_order_128": old_rate, "agree": agree}


def end_to_end(src: str | None, precision: str | None) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "modfit.cli", *END_TO_END.split(), "--out", out]
        if precision:
            argv += ["--precision", precision]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if src:
            env["PYTHONPATH"] = src
        started = time.perf_counter()
        subprocess.run(argv, check=True, env=env)
        return time.perf_counter() - started, json.loads((Path(out) / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30, help="training steps per measurement")
    parser.add_argument("--old-src", help="the src/ folder of the code to compare end to end")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    precision = resolve_precision(args.precision, DEVICE)
    splits = load_dataset("sst2")
    rows = splits.train[: args.steps * BATCH]
    contenders = {"modfit.fit": modfit_fit, "HF Trainer": hf_trainer, "bare loop": bare_loop}
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, measure in contenders.items():
            rates[name].append(measure(rows, precision))
    print(
        f"## Training on {DEVICE.type}, {precision}, batch {BATCH}, {args.steps} steps per round, {args.repeats} rounds\n"
    )
    print("| loop | samples/s (median) | rounds | × HF Trainer |\n|---|---:|---|---:|")
    hf = statistics.median(rates["HF Trainer"])
    for name, values in rates.items():
        rounds = ", ".join(f"{v:.1f}" for v in values)
        print(
            f"| {name} | {statistics.median(values):.1f} | {rounds} | {statistics.median(values) / hf:.2f} |"
        )
    print(f"\n## Inference, {precision}, SST-2 test ({len(splits.test)} rows)\n")
    scores = [inference(splits.test, precision) for _ in range(args.repeats)]
    print("| path | rows/s (median) |\n|---|---:|")
    for key in ("modfit", "bare_sorted", "input_order_128"):
        print(f"| {key} | {statistics.median(s[key] for s in scores):.1f} |")
    print(f"\nmodfit.predict agrees with the input-order path on {scores[0]['agree']:.1%} of rows")
    if args.old_src:
        print("\n## End to end: `modfit " + END_TO_END + "`\n")
        print("| code | precision | seconds | CACC | ASR | floor |\n|---|---|---:|---:|---:|---:|")
        old_seconds, old = end_to_end(args.old_src, None)
        print(f"| {args.old_src} | fp32 | {old_seconds:.0f} | {old['cacc']:.4f} | {old['asr']:.4f} | "
              f"{old['asr_floor']:.4f} |")  # fmt: skip
        for chosen in ("auto", "fp32"):
            seconds, new = end_to_end(None, chosen)
            print(f"| this checkout | {new.get('compute_precision')} | {seconds:.0f} | {new['cacc']:.4f} | "
                  f"{new['asr']:.4f} | {new['asr_floor']:.4f} |  ×{old_seconds / seconds:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
