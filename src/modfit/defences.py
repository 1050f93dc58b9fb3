"""Named defence presets: each is a partial config that the user's own settings override.

The values of `fewer-epochs` and `lower-lr` were chosen by measurement on SST-2 (README, "Defences";
benchmarks/results/defence_settings.md).
"""

from __future__ import annotations

from typing import Any

from modfit.registry import Registry

DEFENCES: Registry[dict[str, Any]] = Registry("defence")

DEFENCES.register("none")({})
DEFENCES.register("fewer-epochs")({"train": {"epochs": 0.5}})
DEFENCES.register("lower-lr")({"train": {"lr": 2e-6}})
