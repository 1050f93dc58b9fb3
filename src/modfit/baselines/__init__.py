"""Baseline defences for comparison (README, "Baseline defences"): procedures, not presets.

Importing this package registers every baseline; `modfit.experiment.run` imports it when it runs.
"""

from modfit.baselines import bki, cube, onion, purify, rap, safe, strip  # noqa: F401  (registration)
from modfit.baselines.base import (
    PROCEDURES,
    Context,
    Procedure,
    check_defence_options,
    parse_options,
    procedure,
    run_procedure,
)

__all__ = ["PROCEDURES", "Context", "Procedure", "check_defence_options", "parse_options",
           "procedure", "run_procedure"]  # fmt: skip
