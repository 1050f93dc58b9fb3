"""One training run of an experiment on prepared data, evaluated as it goes (`train_once`): the stage
that `modfit.experiment.run` calls for a preset defence and a defence procedure calls for each of
its training stages."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import torch

from modfit.auto import AutoSelect
from modfit.callbacks import Evaluate, KeepBestDev, Progress
from modfit.config import Experiment
from modfit.data import Splits
from modfit.encoding import Encoder, encode
from modfit.evaluate import EvalSet, evaluate
from modfit.metrics import majority_share
from modfit.model import load_classifier
from modfit.precision import resolve_precision
from modfit.prepare import PoisonedData, eval_subset, prepare_data
from modfit.result import Outcome, RunResult
from modfit.schedule import EvalSizes, plan_evaluation
from modfit.train import EvalPoint, fit, plan_steps
from modfit.tuning import apply_tuning, count_generated, count_trainable

DEFAULT_EVAL_POINTS = 8
# The stopping rule (`select: auto`, and the scanning run of `scan` and `purify`) needs a finer curve:
# it waits `dev_patience` points to confirm a plateau.
RULE_EVAL_POINTS = 24


def train_once(
    experiment: Experiment,
    progress: bool = True,
    extra_callbacks: Sequence[object] = (),
    data: PoisonedData | None = None,
    encoder: Encoder | None = None,
    eval_points: int | None = None,
) -> RunResult:
    """One training run of `experiment` on `data.train`, evaluated as it goes; `run` without a procedure.

    `encoder(rows, tokenizer, max_length)` tokenises; by default `encode`. `eval_points`: how many
    evaluations an automatic interval (`eval_every: 0`) aims at, kept even where the evaluation
    budget would buy fewer (a stopping rule needs them); by default `RULE_EVAL_POINTS` (kept) for
    `select: auto`, else `DEFAULT_EVAL_POINTS` (`modfit.schedule`)."""
    started = time.perf_counter()
    data = data or prepare_data(experiment)
    model, tokenizer, encoder = victim(experiment, data.splits, encoder)
    model = apply_tuning(model, experiment.tuning.method, experiment.tuning.options, experiment.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    config = experiment.train
    full = _eval_set(data, config.eval_size, experiment, tokenizer, encoder)
    train = encoder(data.train, tokenizer, experiment.model.max_length)
    _, total_steps = plan_steps(len(train), config)
    sizes = EvalSizes(len(full.dev), len(full.test), len(full.poison) if full.poison is not None else 0)
    rule_needs_points = eval_points is not None or config.select == "auto"
    points = eval_points or (RULE_EVAL_POINTS if config.select == "auto" else DEFAULT_EVAL_POINTS)
    plan = plan_evaluation(total_steps, config, sizes, points, keep_points=rule_needs_points)
    intermediate = (
        full if plan.subset is None else _eval_set(data, plan.subset, experiment, tokenizer, encoder)
    )
    evaluator = Evaluate(intermediate, plan.every, final=full)
    callbacks: list[object] = [evaluator]
    selector = _selector(config.select, len(train), data.splits.num_labels, len(intermediate.dev))
    if selector:
        callbacks.append(selector)
    if progress:
        callbacks.append(Progress(f"{experiment.defence}"))
    history = fit(model, train, config, experiment.seed, [*callbacks, *extra_callbacks])
    subsampled = config.eval_size is not None and config.eval_size < max(
        len(data.splits.dev), len(data.splits.test)
    )
    kept = selector.best if selector and selector.best else history[-1]
    if kept.step not in evaluator.full_steps:  # the kept point was scored on the intermediate subset
        kept = _rescore(model, full, kept, resolve_precision(config.precision, device))
    return RunResult(
        experiment=experiment,
        history=history,
        final=kept,
        trainable_params=count_trainable(model),
        seconds=time.perf_counter() - started,
        eval_subset=config.eval_size if subsampled else None,
        model=model,
        tokenizer=tokenizer,
        generated_params=count_generated(model),
        defence=_selection_outcome(selector),
        dev_size=len(intermediate.dev),
        precision=resolve_precision(config.precision, device),
        eval_plan=plan,
        majority_share=majority_share([e.label for e in data.splits.test]),
    )


def _eval_set(data: PoisonedData, size: int | None, experiment: Experiment, tokenizer, encoder) -> EvalSet:
    """The encoded evaluation sets, on a seeded `size`-row subset of dev and test (None: all)."""
    dev, test, test_poison = eval_subset(data, size, experiment.seed)
    max_length = experiment.model.max_length
    return EvalSet(
        dev=encoder(dev, tokenizer, max_length),
        test=encoder(test, tokenizer, max_length),
        poison=encoder(test_poison.examples, tokenizer, max_length) if test_poison else None,
        sources=test_poison.sources if test_poison else None,
        target=data.target,
    )


def _rescore(model: torch.nn.Module, full: EvalSet, point: EvalPoint, precision: str) -> EvalPoint:
    """`point` with its scores taken again on the full sets (the model holds that point's weights)."""
    scores = evaluate(model, full, precision)
    return dataclasses.replace(
        point, dev_acc=scores.dev_acc, cacc=scores.cacc, asr=scores.asr, asr_floor=scores.asr_floor
    )


def victim(
    experiment: Experiment, splits: Splits, encoder: Encoder | None = None
) -> tuple[torch.nn.Module, Any, Encoder]:
    """(model, tokenizer or image preprocessing, encoder) for the dataset's kind: the untuned victim,
    freshly built from `experiment.seed`; every stage that needs one (a run, `safe`'s scanner) builds it here.

    A grid's token cache applies to text only; images are stacked by `encode_images`."""
    if splits.kind == "image":
        from modfit.vision import encode_images, load_image_classifier

        model, preprocess = load_image_classifier(experiment.model, splits.num_labels, experiment.seed)
        return model, preprocess, encode_images
    model, tokenizer = load_classifier(experiment.model, splits.num_labels, experiment.seed)
    return model, tokenizer, encoder or encode


def _selector(select: str, num_rows: int, num_labels: int, dev_size: int) -> KeepBestDev | AutoSelect | None:
    if select == "best-dev":
        return KeepBestDev()
    if select == "auto":
        return AutoSelect(num_rows, num_labels, dev_size=dev_size)
    return None


def _selection_outcome(selector: object) -> Outcome | None:
    """The auto rule's choice, reported in `metrics()` (a procedure's stages add their own on top)."""
    return Outcome(selector.metrics()) if isinstance(selector, AutoSelect) else None
