"""Baseline defences for comparison (docs/defences/baselines.md, "Baseline defences"): procedures, not presets.

Importing this package registers every baseline as a `Defence` with its procedure; `modfit.experiment`
imports it.
"""

from modfit.baselines import bki, cube, onion, purify, rap, safe, strip  # noqa: F401  (registration)
from modfit.baselines.base import Context, parse_options, procedure, run_procedure

__all__ = ["Context", "parse_options", "procedure", "run_procedure"]
