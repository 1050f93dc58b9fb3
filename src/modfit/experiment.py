"""One experiment from config to result: resolve its defence preset, then train once or hand it to its
defence procedure. The dispatcher, above the stages (`modfit.prepare`, `modfit.training_run`) and the
baseline procedures (`modfit.baselines`); no file is written here.

The stages' public names are re-exported, so `from modfit.experiment import prepare_data` keeps working.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from modfit.attacks import parse_attack_options
from modfit.baselines import parse_options, run_procedure
from modfit.config import Experiment, from_dict, merge, to_dict
from modfit.defences import defaults, has_procedure, model_name, preset
from modfit.encoding import Encoder, encode
from modfit.errors import NoTaskWarning
from modfit.prepare import ATTACK_KINDS, PoisonedData, eval_subset, prepare_data
from modfit.result import Outcome, RunResult
from modfit.training_run import DEFAULT_EVAL_POINTS, RULE_EVAL_POINTS, train_once
from modfit.vision.data import dataset_kind

__all__ = ["ATTACK_KINDS", "DEFAULT_EVAL_POINTS", "RULE_EVAL_POINTS", "Outcome", "PoisonedData", "RunResult",
           "eval_subset", "prepare_data", "resolve", "resolved", "run", "train_once"]  # fmt: skip

# What `run` says of a model that learned no task (`RunResult.learned_nothing`).
NO_TASK_MESSAGE = (
    "the model learned no task (CACC {m[cacc]:.3f}: no better than always answering one label, or it calls "
    "nearly every clean input the target), so its ASR says nothing of a backdoor; train on more rows, for "
    "more steps or at a higher learning rate"
)


def resolve(settings: Mapping[str, Any]) -> Experiment:
    """The defence preset under the user's settings: what the user set explicitly wins."""
    kind = dataset_kind(str(settings.get("dataset", Experiment.dataset)))
    model = model_name(settings)
    # the model's undefended schedule, then the preset (`NAME+auto` resolves here), then the user's settings
    chosen = merge(defaults(kind, model), preset(settings.get("defence", "none"), kind, model))
    merged = merge(merge(chosen, settings), {"preset_applied": True})
    experiment = from_dict(Experiment, merged, where="experiment")
    parse_options(experiment)  # a preset takes no options, a baseline its own: checked before any data
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
    return resolve(_changed(to_dict(experiment), to_dict(Experiment())) or {})


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
    experiment = resolved(experiment)
    if has_procedure(experiment.defence):
        result = run_procedure(experiment, progress, extra_callbacks, data, encoder or encode)
    else:
        result = train_once(experiment, progress, extra_callbacks, data, encoder)
    if result.learned_nothing:
        warnings.warn(NO_TASK_MESSAGE.format(m=result.metrics()), NoTaskWarning, stacklevel=2)
    return result
