"""Tuning methods: importing this package registers every implementation."""

from modfit.tuning import full  # noqa: F401  (registration)
from modfit.tuning.base import TUNING, apply_tuning, count_trainable

__all__ = ["TUNING", "apply_tuning", "count_trainable"]
