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
from modfit.precision import autocast, resolve_precision

# Length grouping sorts rows by length within windows of this many batches (as transformers'
# `group_by_length` does), so a batch pads to about its own rows' length while batches stay random.
GROUP_WINDOW = 50


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
    precision: str = "fp32"
    losses: list[float] = field(default_factory=list)
    batch_rows: list[int] = field(default_factory=list)
    batch_row_losses: list[float] = field(default_factory=list)
    history: list[EvalPoint] = field(default_factory=list)
    stop: bool = False

    @property
    def epoch(self) -> float:
        return self.step / self.steps_per_epoch


class Callback(Protocol):
    """What the loop calls, in this order, on every callback of the list that has the hook (each is
    optional):

    - `on_step(state)` after every optimisation step, and once at step 0 before any;
    - `on_stop(state)` once training has stopped, the model being the final one: an
      evaluator scores it here if its last step has no point yet;
    - `on_evaluate(state, point)` after every `on_step` or `on_stop` round that added
      `point` to `state.history`, so a callback that reads points never depends on its place in the
      list;
    - `on_end(state)` once at the end, after every point is known (e.g. to restore chosen weights).
    """

    def on_step(self, state: TrainState) -> None: ...

    def on_end(self, state: TrainState) -> None: ...


def _notify(callbacks: Sequence[Callback], state: TrainState, hook: str) -> None:
    """Call `hook` on every callback that has it, then `on_evaluate` for each point that round added."""
    seen = len(state.history)
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(state)
    for point in state.history[seen:]:
        for callback in callbacks:
            on_evaluate = getattr(callback, "on_evaluate", None)
            if on_evaluate is not None:
                on_evaluate(state, point)


def trainable_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the tensors training changes (those that require gradients), by state-dict name:
    what a callback keeps to put a chosen point's weights back with `load_state_dict(strict=False)`."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    return {n: t.detach().to("cpu", copy=True) for n, t in model.state_dict().items() if n in trainable}


def plan_steps(num_rows: int, config: TrainConfig) -> tuple[int, int]:
    """(steps per epoch, total steps); fractional epochs round up to a whole step."""
    per_epoch = math.ceil(num_rows / config.batch_size)
    return per_epoch, max(1, math.ceil(config.epochs * per_epoch))


def shuffled_batches(
    num_rows: int, batch_size: int, generator: torch.Generator, lengths: Sequence[int] | None = None
) -> Iterator[list[int]]:
    """Every row once per epoch, in seeded random batches. With `lengths`, rows are grouped by length:
    a seeded permutation is cut into windows of `GROUP_WINDOW` batches, each window is sorted by length
    and cut into batches, and the epoch's batches are shuffled."""
    while True:
        order = torch.randperm(num_rows, generator=generator).tolist()
        if lengths is None:
            yield from (order[start : start + batch_size] for start in range(0, num_rows, batch_size))
            continue
        window = GROUP_WINDOW * batch_size
        batches = []
        for start in range(0, num_rows, window):
            chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
            batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
        for position in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[position]


def _parameter_groups(model: torch.nn.Module, trainable: list, config: TrainConfig) -> list[dict]:
    """`trainable` at `lr`; the classification head's (the classifier's `head`: a linear layer or the
    RoBERTa head) at `lr × head_lr_scale`. A generated head (reparameterized tuning) has no parameters of
    its own here."""
    in_head = {id(p) for name, module in model.named_modules() if name in ("head", "classifier.head")
               for p in module.parameters()}  # fmt: skip
    groups = [
        {"params": [p for p in trainable if id(p) not in in_head], "lr": config.lr},
        {"params": [p for p in trainable if id(p) in in_head], "lr": config.lr * config.head_lr_scale},
    ]
    return [group for group in groups if group["params"]]


def _fused_supported(trainable: list, device: torch.device) -> bool:
    """Fused AdamW (one kernel for all parameters, much faster than the for-loop implementation) where
    torch has it: floating-point parameters on the CPU or CUDA."""
    return device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in trainable)


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
        _parameter_groups(model, trainable, config),
        weight_decay=config.weight_decay,
        fused=_fused_supported(trainable, device),
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, round(config.warmup_ratio * total_steps), total_steps
    )
    precision = resolve_precision(config.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    state = TrainState(model, 0, total_steps, steps_per_epoch, precision)
    lengths = train.lengths() if config.group_by_length and hasattr(train, "lengths") else None
    batches = shuffled_batches(len(train), config.batch_size, torch.Generator().manual_seed(seed), lengths)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # dropout masks follow the run's seed, not the caller's global state
        model.train()
        _notify(callbacks, state, "on_step")  # step 0: the model before any update
        while state.step < total_steps and not state.stop:
            rows = next(batches)
            inputs, labels = train.batch(rows, device)
            with autocast(device, precision):
                logits = model(**inputs)
            row_losses = cross_entropy(logits.float(), labels, reduction="none")
            loss = row_losses.mean()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.max_grad_norm > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            state.step += 1
            state.losses.append(loss.item())
            state.batch_rows, state.batch_row_losses = rows, row_losses.detach().tolist()
            _notify(callbacks, state, "on_step")
        _notify(callbacks, state, "on_stop")
        _notify(callbacks, state, "on_end")
    model.eval()
    return state.history
