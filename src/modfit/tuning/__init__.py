"""Tuning methods: importing this package registers every implementation."""

from modfit.tuning import adapter, full, lora, prefix  # noqa: F401  (registration)
from modfit.tuning.base import TUNING, apply_tuning, count_generated, count_trainable
from modfit.tuning.shipped import ShippedModel, load_model, ship
from modfit.tuning.tuned import TunedClassifier

__all__ = [
    "TUNING", "ShippedModel", "TunedClassifier", "apply_tuning", "count_generated", "count_trainable",
    "load_model", "ship",
]  # fmt: skip
