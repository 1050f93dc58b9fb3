"""`modfit.integrations.transformers` in a plain `transformers.Trainer` run on a tiny model: the auto
rule stops training and restores the kept point's weights, and a canary's ASR and floor are logged."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import separable_rows
from modfit import AttackConfig, Example, ModfitError, make_trigger, poison_test
from modfit.integrations.transformers import (
    AutoStop,
    CanaryASR,
    RowLossTrainer,
    accuracy_metrics,
    with_row_index,
)
from modfit.transition import TransitionRule


def _encode(tokenizer, rows: list[tuple[str, int]]) -> list[dict]:
    tokens = tokenizer([text for text, _ in rows], truncation=True, max_length=16)
    return [{"input_ids": ids, "attention_mask": mask, "labels": label}
            for ids, mask, (_, label) in zip(tokens["input_ids"], tokens["attention_mask"], rows, strict=True)]  # fmt: skip


class SnapshotAtEvaluation:
    """Test helper (a TrainerCallback): the trainable weights at every evaluated step."""

    def __init__(self) -> None:
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def __getattr__(self, name):  # every other TrainerCallback event does nothing
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        self.weights[state.global_step] = {
            n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
        }


def _trainer(tiny_bert, tmp_path, train_rows, **args):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    settings = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=16, per_device_eval_batch_size=32,
        learning_rate=1e-3, num_train_epochs=12, eval_strategy="steps", eval_steps=2, eval_on_start=True,
        logging_steps=2, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
    )  # fmt: skip
    dev = separable_rows(24, 1)
    trainer = RowLossTrainer(
        model=model, args=TrainingArguments(**{**settings, **args}), processing_class=tokenizer,
        train_dataset=with_row_index(_encode(tokenizer, train_rows)), eval_dataset=_encode(tokenizer, dev),
        compute_metrics=accuracy_metrics,
    )  # fmt: skip
    return trainer, [Example(text, label) for text, label in dev]


def test_the_callbacks_stop_restore_the_kept_point_and_log_asr_beside_accuracy(tiny_bert, tmp_path):
    trainer, dev = _trainer(tiny_bert, tmp_path, separable_rows(64, 0))
    canary = poison_test(dev, make_trigger(AttackConfig("badnet", options={"triggers": ["cf"]})), 1, seed=0)
    snapshots = SnapshotAtEvaluation()
    auto = AutoStop(trainer, TransitionRule(dev_patience=2))
    asr = CanaryASR(trainer, canary, dev, target=1, max_length=16)
    for callback in (snapshots, auto, asr):
        trainer.add_callback(callback)
    trainer.train()
    planned = trainer.state.max_steps  # 12 epochs of 4 steps
    assert auto.reason == "dev-plateau" and auto.stopped_at < planned
    assert trainer.state.global_step == auto.stopped_at  # training stopped where the rule confirmed
    assert auto.kept_step < auto.stopped_at
    kept = snapshots.weights[auto.kept_step]
    now = {n: p for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert all(torch.equal(now[n].cpu(), kept[n].cpu()) for n in kept)  # the kept point's weights are back
    logs = trainer.state.log_history
    accuracy_steps = [entry["step"] for entry in logs if "eval_accuracy" in entry]
    asr_entries = [entry for entry in logs if "eval_asr" in entry]
    assert [entry["step"] for entry in asr_entries] == accuracy_steps and accuracy_steps[0] == 0
    assert all(0 <= e["eval_asr"] <= 1 and 0 <= e["eval_asr_floor"] <= 1 for e in asr_entries)
    assert [h["step"] for h in asr.history] == accuracy_steps
    assert any(entry.get("auto_step") == auto.kept_step for entry in logs)


def test_per_row_losses_cover_every_training_row(tiny_bert, tmp_path):
    trainer, _ = _trainer(tiny_bert, tmp_path, separable_rows(40, 0), num_train_epochs=1, eval_steps=10)
    auto = AutoStop(trainer)
    trainer.add_callback(auto)
    trainer.train()
    losses = auto.selector.dynamics().losses[-1]  # the last point: every row seen once
    assert losses.shape == (40,) and not any(math.isnan(v) for v in losses.tolist())


def test_autostop_says_what_the_trainer_lacks(tiny_bert, tmp_path):
    trainer, _ = _trainer(tiny_bert, tmp_path, separable_rows(16, 0), eval_on_start=False)
    trainer.add_callback(AutoStop(trainer))
    with pytest.raises(ModfitError, match="eval_on_start=True"):
        trainer.train()
