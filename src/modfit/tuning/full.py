"""`full`: every parameter trains. `head`: only the classification head trains."""

from __future__ import annotations

from typing import Any

from torch import nn

from modfit.errors import ModfitError
from modfit.tuning.base import TUNING


def _no_options(name: str, options: dict[str, Any]) -> None:
    if options:
        raise ModfitError(f"tuning method {name!r} takes no options, got {sorted(options)[0]!r}")


@TUNING.register("full")
def full(model: nn.Module, options: dict[str, Any]) -> nn.Module:
    _no_options("full", options)
    model.requires_grad_(True)
    return model


@TUNING.register("head")
def head(model: nn.Module, options: dict[str, Any]) -> nn.Module:
    _no_options("head", options)
    model.requires_grad_(False)
    model.head.requires_grad_(True)
    return model
