"""The one training loop. Evaluation, model selection, progress and stopping come in as callbacks."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch.nn.functional import cross_entropy
from transformers import get_linear_schedule_with_warmup

from modfit.config import TrainConfig
from modfit.encoding import Encoded


@dataclass(frozen=True)
class EvalPoint:
    step: int
    epoch: float
    train_loss: float
    dev_acc: float
    cacc: float
    asr: float
    asr_floor: float
    seconds: float


@dataclass
class TrainState:
    """What callbacks see and may change (`stop`) after every optimisation step.

    `batch_rows` and `batch_row_losses` are the training rows of the step just taken and their losses
    before the update, so per-row dynamics cost no extra forward pass.
    """

    model: torch.nn.Module
    step: int
    total_steps: int
    steps_per_epoch: int
    losses: list[float] = field(default_factory=list)
    batch_rows: list[int] = field(default_factory=list)
    batch_row_losses: list[float] = field(default_factory=list)
    history: list[EvalPoint] = field(default_factory=list)
    stop: bool = False

    @property
    def epoch(self) -> float:
        return self.step / self.steps_per_epoch


class Callback(Protocol):
    def on_step(self, state: TrainState) -> None: ...

    def on_end(self, state: TrainState) -> None: ...


def plan_steps(num_rows: int, config: TrainConfig) -> tuple[int, int]:
    """(steps per epoch, total steps); fractional epochs round up to a whole step."""
    per_epoch = math.ceil(num_rows / config.batch_size)
    return per_epoch, max(1, math.ceil(config.epochs * per_epoch))


def _shuffled_batches(num_rows: int, batch_size: int, generator: torch.Generator) -> Iterator[list[int]]:
    while True:
        order = torch.randperm(num_rows, generator=generator).tolist()
        for start in range(0, num_rows, batch_size):
            yield order[start : start + batch_size]


def _parameter_groups(model: torch.nn.Module, trainable: list, config: TrainConfig) -> list[dict]:
    """`trainable` at `lr`; the classification head's (the `nn.Linear` named `head`) at
    `lr × head_lr_scale`. A generated head (reparameterized tuning) has no parameters of its own here."""
    in_head = {id(p) for name, module in model.named_modules()
               if name.rsplit(".", 1)[-1] == "head" and isinstance(module, torch.nn.Linear)
               for p in module.parameters()}  # fmt: skip
    groups = [
        {"params": [p for p in trainable if id(p) not in in_head], "lr": config.lr},
        {"params": [p for p in trainable if id(p) in in_head], "lr": config.lr * config.head_lr_scale},
    ]
    return [group for group in groups if group["params"]]


def fit(
    model: torch.nn.Module,
    train: Encoded,
    config: TrainConfig,
    seed: int,
    callbacks: Sequence[Callback] = (),
) -> list[EvalPoint]:
    """Train the parameters of `model` that require gradients; return the evaluation history."""
    device = next(model.parameters()).device
    steps_per_epoch, total_steps = plan_steps(len(train), config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        _parameter_groups(model, trainable, config), weight_decay=config.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, round(config.warmup_ratio * total_steps), total_steps
    )
    state = TrainState(model, step=0, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    batches = _shuffled_batches(len(train), config.batch_size, torch.Generator().manual_seed(seed))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # dropout masks follow the run's seed, not the caller's global state
        model.train()
        for callback in callbacks:
            callback.on_step(state)  # step 0: the model before any update
        while state.step < total_steps and not state.stop:
            rows = next(batches)
            inputs, labels = train.batch(rows, device)
            row_losses = cross_entropy(model(**inputs), labels, reduction="none")
            loss = row_losses.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            state.step += 1
            state.losses.append(loss.item())
            state.batch_rows, state.batch_row_losses = rows, row_losses.detach().tolist()
            for callback in callbacks:
                callback.on_step(state)
        for callback in callbacks:
            callback.on_end(state)
    model.eval()
    return state.history
