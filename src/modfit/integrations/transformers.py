"""Moderate-fitting in a user's own `transformers.Trainer` (docs/trainer.md, "In your own Trainer").

Two callbacks and the small `Trainer` subclass they need:

- `AutoStop`: modfit's `auto` rule (`modfit.transition`, applied online by `modfit.auto.AutoSelect`,
  the same object `select: auto` uses in modfit's loop) on the signals a defender has: every
  training row's latest loss and the trainer's clean dev accuracy (`eval_accuracy`). It stops
  training once the rule confirms the end of moderate-fitting and, at the end, puts back the trainable
  weights of the point it keeps.
- `CanaryASR`: the ASR of a trigger the user planted in a copy of their own dev set
  (`modfit.make_trigger` + `modfit.poison_test`), and its floor, logged as `eval_asr` and
  `eval_asr_floor` beside `eval_accuracy` in the trainer's log history — where the TensorBoard and
  W&B integrations read. It measures the trigger it is given and no other: a trigger planted only
  in the dev copy was never in training, so its ASR stays at its floor (measured in
  benchmarks/trainer_callback/results.md) — a control; with a trigger you suspect or test (a red-team
  run with a known attack) it shows when that trigger is learned. It never proves a backdoor absent.
- `RowLossTrainer`: a `Trainer` whose `compute_loss` also records each training row's loss. Rows are
  told apart by an index column (`with_row_index`) that the loss hook takes out before the model
  sees the batch. The Trainer's own loss is left exactly as it computes it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.nn.functional import cross_entropy
from transformers import Trainer, TrainerCallback

from modfit.attacks.base import PoisonedTest
from modfit.auto import AutoSelect
from modfit.data import Example
from modfit.errors import ModfitError
from modfit.metrics import accuracy, attack_success_rate
from modfit.train import EvalPoint, TrainState
from modfit.transition import TransitionRule

ROW_INDEX = "row_index"


def with_row_index(rows: Any) -> Any:
    """The training rows with a `row_index` column 0..n-1: a `datasets.Dataset` gains the column, a
    sequence of dicts becomes a list of copies with the key."""
    if hasattr(rows, "add_column"):
        return rows.add_column(ROW_INDEX, list(range(len(rows))))
    return [{**row, ROW_INDEX: index} for index, row in enumerate(rows)]


def accuracy_metrics(eval_prediction: Any) -> dict[str, float]:
    """`compute_metrics` for a classifier: the trainer logs it as `eval_accuracy`."""
    logits = eval_prediction.predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    predictions = logits.argmax(-1).tolist()
    return {"accuracy": accuracy(predictions, eval_prediction.label_ids.tolist())}


class RowLossTrainer(Trainer):
    """A `Trainer` that records every training row's loss as it computes the batch loss (no extra
    forward pass). Subclass it instead of `Trainer` if you have your own subclass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._row_indices: list[torch.Tensor] = []
        self._row_losses: list[torch.Tensor] = []

    def _set_signature_columns_if_needed(self) -> None:
        # The one private hook used: the Trainer drops dataset columns its model does not take;
        # keep the row index, which `compute_loss` takes out again before the model call.
        super()._set_signature_columns_if_needed()
        if ROW_INDEX not in self._signature_columns:
            self._signature_columns.append(ROW_INDEX)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        rows = inputs.pop(ROW_INDEX, None)
        labels = inputs.get("labels")
        loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        if rows is not None and labels is not None and model.training:
            logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[1]
            with torch.no_grad():
                self._row_losses.append(cross_entropy(logits.detach().float(), labels, reduction="none"))
            self._row_indices.append(rows.detach())
        return (loss, outputs) if return_outputs else loss

    def drain_row_losses(self) -> tuple[list[int], list[float]]:
        """The rows seen since the last call (all micro-batches of a step) and their losses."""
        if not self._row_indices:
            return [], []
        rows = torch.cat(self._row_indices).tolist()
        losses = torch.cat(self._row_losses).tolist()
        self._row_indices.clear()
        self._row_losses.clear()
        return rows, losses


class AutoStop(TrainerCallback):
    """Stop at the end of moderate-fitting and keep that point's trainable weights.

    Needs a `RowLossTrainer` with `train_dataset=with_row_index(...)`, `compute_metrics` giving
    `eval_accuracy` on clean dev rows (`accuracy_metrics`), and `TrainingArguments(eval_strategy=
    "steps", eval_steps=N, eval_on_start=True)`: the rule compares with the model before training.
    After `train()`, `kept_step`, `reason` ("high-loss-fall", "dev-plateau", or "none": no transition
    seen, the last point kept) and `stopped_at` say what it did; the trainer's log gains `auto_step`
    and `auto_stopped_at`.
    """

    def __init__(self, trainer: Trainer, rule: TransitionRule | None = None, metric: str = "eval_accuracy"):
        self.trainer = trainer
        self.rule = rule
        self.metric = metric
        self.selector: AutoSelect | None = None
        self.loop: TrainState | None = None
        self.losses_since_point: list[float] = []
        self.started = 0.0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._check(args)
        dev = self.trainer.eval_dataset
        dev_size = len(dev) if isinstance(dev, Sequence) or hasattr(dev, "column_names") else 0
        self.selector = AutoSelect(
            len(self.trainer.train_dataset), model.config.num_labels, self.rule, dev_size
        )
        per_epoch = max(1, math.ceil(state.max_steps / max(args.num_train_epochs, 1e-9)))
        self.loop = TrainState(
            model, step=state.global_step, total_steps=state.max_steps, steps_per_epoch=per_epoch
        )
        self.losses_since_point = []
        self.started = time.perf_counter()

    def _check(self, args) -> None:
        if not isinstance(self.trainer, RowLossTrainer):
            raise ModfitError(
                "AutoStop reads every training row's loss: build the trainer as "
                "modfit.integrations.transformers.RowLossTrainer"
            )
        first = self.trainer.train_dataset[0] if len(self.trainer.train_dataset) else {}
        if ROW_INDEX not in first:
            raise ModfitError(
                "AutoStop needs each training row's index: pass train_dataset=with_row_index(rows)"
            )
        if args.eval_strategy == "no" or not args.eval_on_start:
            raise ModfitError(
                "AutoStop compares with the model before training: set TrainingArguments("
                "eval_strategy='steps', eval_steps=N, eval_on_start=True)"
            )
        if args.load_best_model_at_end:
            raise ModfitError("AutoStop restores the point it keeps: drop load_best_model_at_end")

    def on_step_end(self, args, state, control, **kwargs):
        rows, losses = self.trainer.drain_row_losses()
        self.loop.step = state.global_step
        self.loop.batch_rows, self.loop.batch_row_losses = rows, losses
        self.losses_since_point.extend(losses)
        self.selector.on_step(self.loop)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.selector is None or not metrics or self.metric not in metrics:
            return
        if self.loop.history and self.loop.history[-1].step == state.global_step:
            return  # the same point evaluated twice (a step that ends an epoch)
        since = self.losses_since_point
        self.loop.history.append(
            EvalPoint(
                step=state.global_step, epoch=float(state.epoch or 0.0),
                train_loss=sum(since) / len(since) if since else math.nan, dev_acc=float(metrics[self.metric]),
                cacc=math.nan, asr=math.nan, asr_floor=math.nan, seconds=time.perf_counter() - self.started,
            )
        )  # fmt: skip
        self.losses_since_point = []
        self.selector.on_evaluate(self.loop, self.loop.history[-1])
        if self.loop.stop:
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        if self.selector is None:
            return
        self.selector.on_end(self.loop)  # puts the kept point's trainable weights back
        choice = self.selector.metrics()
        self.trainer.log({k: choice[k] for k in ("auto_step", "auto_stopped_at") if choice[k] is not None})

    @property
    def kept_step(self) -> int | None:
        return self.selector.metrics()["auto_step"] if self.selector else None

    @property
    def reason(self) -> str | None:
        return self.selector.metrics()["auto_reason"] if self.selector else None

    @property
    def stopped_at(self) -> int | None:
        return self.selector.metrics()["auto_stopped_at"] if self.selector else None


class CanaryASR(TrainerCallback):
    """At every evaluation that reports `metric`, predict the canary and log `eval_asr` (triggered
    non-target dev rows predicted as `target`) and `eval_asr_floor` (the same rows without the
    trigger) through the trainer's `log`. `canary = poison_test(clean, trigger, target, seed)`;
    texts are tokenised with the trainer's `processing_class`, truncated to `max_length`.
    `history`: one `{"step", "asr", "asr_floor"}` per evaluation; `measure()` predicts it now."""

    def __init__(
        self,
        trainer: Trainer,
        canary: PoisonedTest,
        clean: Sequence[Example],
        target: int,
        max_length: int | None = None,
        metric: str = "eval_accuracy",
    ) -> None:
        self.trainer = trainer
        self.canary = canary
        self.clean = clean
        self.target = target
        self.max_length = max_length
        self.metric = metric
        self.history: list[dict[str, float]] = []
        self._encoded: tuple[list[dict], list[dict]] | None = None

    def _rows(self, examples: Sequence[Example]) -> list[dict]:
        tokenizer = self.trainer.processing_class
        if tokenizer is None:
            raise ModfitError(
                "CanaryASR tokenises the canary with the trainer's tokenizer: pass processing_class="
            )
        texts = [e.text for e in examples]
        tokens = tokenizer(texts, truncation=True, max_length=self.max_length)
        return [
            {**{name: values[i] for name, values in tokens.items()}, "labels": examples[i].label}
            for i in range(len(examples))
        ]

    def _predict(self, rows: list[dict]) -> list[int]:
        logits = self.trainer.predict(rows, metric_key_prefix="canary").predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        return logits.argmax(-1).tolist()

    def measure(self) -> dict[str, float]:
        if self._encoded is None:
            sources = [self.clean[i] for i in self.canary.sources]
            self._encoded = (self._rows(self.canary.examples), self._rows(sources))
        triggered, clean = self._encoded
        return {
            "asr": attack_success_rate(self._predict(triggered), self.target),
            "asr_floor": attack_success_rate(self._predict(clean), self.target),
        }

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or self.metric not in metrics:
            return
        scores = self.measure()
        self.history.append({"step": state.global_step, **scores})
        self.trainer.log({"eval_asr": scores["asr"], "eval_asr_floor": scores["asr_floor"]})
