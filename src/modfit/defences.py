"""Named defence presets: each is a partial config that the user's own settings override.

The values of `fewer-epochs` and `lower-lr` were chosen by measurement on SST-2 (README, "Defences";
benchmarks/results/defence_settings.md).
"""

from __future__ import annotations

from typing import Any

from modfit.config import merge
from modfit.errors import ModfitError
from modfit.registry import Registry

DEFENCES: Registry[dict[str, Any]] = Registry("defence")

DEFENCES.register("none")({})
DEFENCES.register("fewer-epochs")({"train": {"epochs": 1.5}})
DEFENCES.register("lower-lr")({"train": {"lr": 1e-5}})

# Capacity defences (DESIGN.md §2): reparameterized PEFT. The tuning options are the paper's reference
# settings. The paper's lr 3e-4 was set for 10 epochs on all of SST-2 and learns nothing in a few dozen
# steps, so lr and epochs were chosen by measurement (benchmarks/results/reparam_search.md: SST-2 1,000
# rows, BadNet 10 %): the setting of each method with the smallest ASR-above-floor at CACC >= 0.78.
# The paper's settings stay reachable: --lr 3e-4 --epochs 10.
REPARAM = {"in_dim": 2, "mid_dim": 2}
DEFENCES.register("lora-reparam")(
    {
        "tuning": {"method": "lora", "options": {"rank": 8, "alpha": 16, "target_modules": ["query", "value"],
                                                 "reparam": REPARAM}},
        "train": {"lr": 5e-3, "epochs": 2, "batch_size": 32},
    }
)  # fmt: skip
DEFENCES.register("adapter-reparam")(
    {
        "tuning": {"method": "adapter", "options": {"bottleneck": 24, "reparam": REPARAM}},
        "train": {"lr": 3e-3, "epochs": 2, "batch_size": 32},
    }
)
DEFENCES.register("prefix-reparam")(
    {
        "tuning": {"method": "prefix", "options": {"tokens": 24, "reparam": REPARAM}},
        "train": {"lr": 1e-2, "epochs": 2, "batch_size": 32},
    }
)

# Baseline defences for comparison (README, "Baseline defences"): each is a procedure in
# `modfit.baselines` that `run()` dispatches to; the preset changes no setting, so every training stage
# uses the user's (undefended) settings.
for _baseline in ("bki", "cube", "onion", "purify", "rap", "safe", "strip"):
    DEFENCES.register(_baseline)({})

# Beyond the paper (README, "Finding the moderate-fitting point"): `auto` keeps the undefended settings
# and stops at the end of moderate-fitting found by `modfit.transition`; `NAME+auto` puts that stopping
# rule on top of any other defence.
AUTO_SUFFIX = "+auto"
DEFENCES.register("auto")({"train": {"select": "auto"}})


def base_defence(name: str) -> str:
    """The registered defence a name starts from: `lora-reparam+auto` → `lora-reparam`."""
    return name[: -len(AUTO_SUFFIX)] if name.endswith(AUTO_SUFFIX) and name != AUTO_SUFFIX else name


# Images (README, "Vision"): the values above were measured for MiniLM on SST-2; the image victim
# (EfficientNet-Lite0, CIFAR-10) has its own, measured in benchmarks/results/vision_settings.md.
# IMAGE_DEFAULTS are the undefended image settings, under everything the user or a study sets. The
# adapter and prefix methods place modules in a transformer encoder, and the baselines read text, so
# they are text-only.
IMAGE_DEFAULTS: dict[str, Any] = {"model": {"image_size": 64}, "train": {"lr": 1e-3, "epochs": 3}}
IMAGE_PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "fewer-epochs": {"train": {"epochs": 0.5}},
    "lower-lr": {"train": {"lr": 1e-4}},
    "lora-reparam": {
        "tuning": {"method": "lora", "options": {"rank": 8, "alpha": 16, "reparam": REPARAM,
                                                 "target_modules": ["_expand_conv", "_project_conv", "_conv_head"]}},
        "train": {"lr": 5e-3, "epochs": 2},
    },
    "auto": {"train": {"select": "auto"}},
}  # fmt: skip


def defaults(kind: str) -> dict[str, Any]:
    """The undefended settings of a `text` or `image` dataset, under every preset and user setting."""
    return IMAGE_DEFAULTS if kind == "image" else {}


def preset(name: str, kind: str = "text") -> dict[str, Any]:
    """The settings of defence `name` for a `text` or `image` dataset, including the `+auto` stopping
    rule on top of a registered one."""
    base = base_defence(name)
    settings = DEFENCES.get(base)
    if kind == "image":
        if base not in IMAGE_PRESETS:
            raise ModfitError(
                f"defence {base!r} is for text models; for images use {', '.join(IMAGE_PRESETS)}"
            )
        settings = IMAGE_PRESETS[base]
    if base == name:
        return settings
    if base == "auto":
        raise ModfitError("auto+auto: auto already is the stopping rule")
    return merge(settings, DEFENCES.get("auto"))
