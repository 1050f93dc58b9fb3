"""Which parameters adapt and how they are produced.

A tuning method takes the victim `Classifier` and returns a module with the same call signature
(token tensors in, logits out) whose trainable parameters are exactly the ones the method adapts.
The training loop only ever sees `parameters()` with `requires_grad`, so a new method never touches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from modfit.registry import Entry, Registry
from modfit.tuning.reparam import Generator

# A tuning method's entry: `build(model, options) -> nn.Module`, `options` its frozen dataclass.
TUNING: Registry[Entry] = Registry("tuning method")


def apply_tuning(model: nn.Module, method: str, options: Mapping[str, Any], seed: int = 0) -> nn.Module:
    """The method applied to `model`; the new tensors' initialisation follows `seed` only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TUNING.get(method).build(model, TUNING.parse(method, options))


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_generated(model: nn.Module) -> int:
    """Tensor elements that reparameterization networks produce on each forward pass (0 without)."""
    return sum(m.num_generated for m in model.modules() if isinstance(m, Generator))
