"""One experiment from config to result: poison → train → evaluate. No file is written here."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from modfit.attacks import PoisonedTest, make_trigger, parse_attack_options, poison, poison_test
from modfit.auto import AutoSelect
from modfit.callbacks import Evaluate, KeepBestDev, Progress
from modfit.config import Experiment, from_dict, merge
from modfit.data import Example, Splits, dataset_dir, load_dataset, read_examples, subsample
from modfit.defences import base_defence, defaults, preset
from modfit.encoding import Encoder, encode
from modfit.errors import ModfitError
from modfit.evaluate import EvalSet, evaluate
from modfit.model import load_classifier
from modfit.precision import resolve_precision
from modfit.schedule import EvalPlan, EvalSizes, plan_evaluation
from modfit.train import EvalPoint, fit, plan_steps
from modfit.tuning import apply_tuning, count_generated, count_trainable
from modfit.vision.data import dataset_kind

if TYPE_CHECKING:
    from modfit.baselines import DefenceOutcome

ATTACK_KINDS = {"text": ("badnet", "addsent", "syntactic", "style"), "image": ("patch", "blend")}
DEFAULT_EVAL_POINTS = 8
# The stopping rule (`select: auto`, and the scanning run of `scan` and `purify`) needs a finer curve:
# it waits `dev_patience` points to confirm a plateau.
RULE_EVAL_POINTS = 24


def resolve(settings: Mapping[str, Any]) -> Experiment:
    """The defence preset under the user's settings: what the user set explicitly wins."""
    from modfit.baselines import check_defence_options

    kind = dataset_kind(str(settings.get("dataset", Experiment.dataset)))
    chosen = merge(defaults(kind), preset(settings.get("defence", "none"), kind))  # `NAME+auto` resolves here
    merged = merge(merge(chosen, settings), {"preset_applied": True})
    experiment = from_dict(Experiment, merged, where="experiment")
    check_defence_options(experiment)
    if experiment.attack.name != "none":  # a mistyped option fails here, before any data is read
        parse_attack_options(experiment.attack)
    return experiment


def _changed(value: Any, default: Any) -> Any:
    """The parts of a config (as plain data) that differ from the defaults; None when none do."""
    if isinstance(value, dict) and isinstance(default, dict) and value and set(value) <= set(default):
        parts = {k: _changed(v, default[k]) for k, v in value.items()}
        return {k: v for k, v in parts.items() if v is not None} or None
    return None if value == default else value


def resolved(experiment: Experiment) -> Experiment:
    """`experiment` with its defence preset applied: one built in Python (`Experiment(defence=...)`)
    has not been through `resolve`, so its settings left at their defaults take the preset's values.
    An unknown defence name is an error here, not an undefended run."""
    if experiment.preset_applied:
        return experiment
    from modfit.config import to_dict

    return resolve(_changed(to_dict(experiment), to_dict(Experiment())) or {})


@dataclass(frozen=True)
class PoisonedData:
    splits: Splits
    train: list[Example]
    test_poison: PoisonedTest | None
    target: int


@dataclass(frozen=True)
class RunResult:
    experiment: Experiment
    history: list[EvalPoint]
    final: EvalPoint
    trainable_params: int
    seconds: float
    eval_subset: int | None
    model: torch.nn.Module
    tokenizer: Any
    generated_params: int = 0
    defence: DefenceOutcome | None = None  # what a baseline defence's procedure adds (modfit.baselines)
    dev_size: int = 0  # clean dev rows behind each intermediate dev accuracy (what selection compared)
    precision: str = "fp32"  # the precision the run used (`train.precision` resolved on its device)
    eval_plan: EvalPlan | None = None  # the interval and intermediate subset of its evaluation

    def metrics(self) -> dict[str, Any]:
        f = self.final
        return {
            "cacc": f.cacc, "asr": f.asr, "asr_floor": f.asr_floor, "dev_acc": f.dev_acc,
            "step": f.step, "epoch": f.epoch, "trainable_params": self.trainable_params,
            "generated_params": self.generated_params, "seconds": round(self.seconds, 2),
            "eval_subset": self.eval_subset, "compute_precision": self.precision,
            "eval_every": self.eval_plan.every if self.eval_plan else None,
            "eval_intermediate_subset": self.eval_plan.subset if self.eval_plan else None,
            **(self.defence.metrics if self.defence else {}),
        }  # fmt: skip


def prepare_data(experiment: Experiment) -> PoisonedData:
    """Load, subsample and poison the training split; build the triggered test rows."""
    splits = load_dataset(experiment.dataset)
    attack = experiment.attack
    if not 0 <= attack.target < splits.num_labels:
        raise ModfitError(
            f"target label {attack.target} is not a label of {splits.name} (0..{splits.num_labels - 1})"
        )
    train = subsample(splits.train, experiment.train_size, experiment.seed)
    if attack.name == "none":
        if experiment.poison_test is None:
            return PoisonedData(splits, train, None, attack.target)
        rows = read_examples(experiment.poison_test, num_labels=splits.num_labels)
        targets = {e.label for e in rows}
        if len(targets) != 1:
            raise ModfitError(
                f"{experiment.poison_test}: a poison test file needs one target label, found {sorted(targets)}"
            )
        return PoisonedData(splits, train, PoisonedTest(rows, None), targets.pop())
    trigger = make_trigger(attack, dataset_dir(experiment.dataset))
    if trigger.kind != splits.kind:
        raise ModfitError(
            f"attack {attack.name!r} poisons {trigger.kind}s but {splits.name} holds {splits.kind}s; "
            f"use one of {', '.join(ATTACK_KINDS[splits.kind])}"
        )
    poisoned_train = poison(train, trigger, attack, experiment.seed)
    return PoisonedData(
        splits,
        poisoned_train,
        poison_test(splits.test, trigger, attack.target, experiment.seed),
        attack.target,
    )


def _eval_subset(
    data: PoisonedData, size: int | None, seed: int
) -> tuple[list[Example], list[Example], PoisonedTest | None]:
    """A seeded subset of dev and test; the triggered rows follow the chosen test rows."""
    dev = subsample(data.splits.dev, size, seed)
    test_poison = data.test_poison
    if size is None or size >= len(data.splits.test):
        return dev, data.splits.test, test_poison
    keep = sorted(random.Random(seed).sample(range(len(data.splits.test)), size))
    test = [data.splits.test[i] for i in keep]
    if test_poison is None or test_poison.sources is None:
        return dev, test, test_poison
    position = {source: new for new, source in enumerate(keep)}
    pairs = [
        (position[s], e)
        for s, e in zip(test_poison.sources, test_poison.examples, strict=True)
        if s in position
    ]
    return dev, test, PoisonedTest([e for _, e in pairs], [s for s, _ in pairs])


def run(
    experiment: Experiment,
    progress: bool = True,
    extra_callbacks: Sequence[object] = (),
    data: PoisonedData | None = None,
    encoder: Encoder | None = None,
) -> RunResult:
    """Run one experiment and return its history, final scores and the trained model.

    `encoder(rows, tokenizer, max_length)` tokenises; by default `encode`. A grid passes a cache
    shared across runs so that each dataset is tokenised once per study. A baseline defence is a
    procedure of training stages (each a `train_once`) and scoring; it runs here in their place.
    """
    from modfit.baselines import PROCEDURES, run_procedure

    experiment = resolved(experiment)
    if base_defence(experiment.defence) in PROCEDURES:
        return run_procedure(experiment, progress, extra_callbacks, data, encoder or encode)
    return train_once(experiment, progress, extra_callbacks, data, encoder)


def train_once(
    experiment: Experiment,
    progress: bool = True,
    extra_callbacks: Sequence[object] = (),
    data: PoisonedData | None = None,
    encoder: Encoder | None = None,
    eval_points: int | None = None,
) -> RunResult:
    """One training run of `experiment` on `data.train`, evaluated as it goes; `run` without a procedure.

    `eval_points`: how many evaluations an automatic interval (`eval_every: 0`) aims at, kept even
    where the evaluation budget would buy fewer (a stopping rule needs them); by default
    `RULE_EVAL_POINTS` (kept) for `select: auto`, else `DEFAULT_EVAL_POINTS` (`modfit.schedule`)."""
    started = time.perf_counter()
    data = data or prepare_data(experiment)
    model, tokenizer, encoder = _victim(experiment, data.splits, encoder)
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
    )


def _eval_set(data: PoisonedData, size: int | None, experiment: Experiment, tokenizer, encoder) -> EvalSet:
    """The encoded evaluation sets, on a seeded `size`-row subset of dev and test (None: all)."""
    dev, test, test_poison = _eval_subset(data, size, experiment.seed)
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


def _victim(
    experiment: Experiment, splits: Splits, encoder: Encoder | None
) -> tuple[torch.nn.Module, Any, Encoder]:
    """(model, tokenizer or image preprocessing, encoder) for the dataset's kind.

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


def _selection_outcome(selector: object) -> DefenceOutcome | None:
    """The auto rule's choice, reported in `metrics()` (a procedure's stages add their own on top)."""
    if not isinstance(selector, AutoSelect):
        return None
    from modfit.baselines import DefenceOutcome

    return DefenceOutcome(selector.metrics())
