"""`full`: every parameter trains. `head`: only the classification head trains."""

from __future__ import annotations

from torch import nn

from modfit.registry import NoOptions
from modfit.tuning.base import TUNING


@TUNING.register("full")
def full(model: nn.Module, options: NoOptions) -> nn.Module:
    model.requires_grad_(True)
    return model


@TUNING.register("head")
def head(model: nn.Module, options: NoOptions) -> nn.Module:
    model.requires_grad_(False)
    model.head.requires_grad_(True)
    return model
