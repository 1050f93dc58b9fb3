"""modfit: fine-tune pre-trained models on untrusted data without learning their backdoors.

The public API follows the data: `poison` → `fit` → `evaluate`, with `run` doing all three for one
`Experiment`.
"""

from modfit.attacks import make_trigger, poison, poison_test
from modfit.config import AttackConfig, Experiment, ModelConfig, TrainConfig, TuningConfig
from modfit.data import Example, Splits, load_dataset, read_examples
from modfit.errors import ModfitError
from modfit.evaluate import EvalSet, Scores, evaluate, predict
from modfit.experiment import RunResult, prepare_data, resolve, run
from modfit.inference import probabilities
from modfit.model import Classifier, load_classifier
from modfit.train import EvalPoint, fit
from modfit.tuning import ShippedModel, load_model

train = fit

__all__ = [
    "AttackConfig", "Classifier", "EvalPoint", "EvalSet", "Example", "Experiment", "ModelConfig",
    "ModfitError", "RunResult", "Scores", "ShippedModel", "Splits", "TrainConfig", "TuningConfig", "evaluate",
    "fit", "load_classifier", "load_dataset", "load_model", "make_trigger", "poison", "poison_test",
    "predict", "prepare_data", "probabilities", "read_examples", "resolve", "run", "train",
]  # fmt: skip
