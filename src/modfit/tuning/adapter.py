"""`adapter`: bottleneck adapters (Houlsby et al., 2019) after the attention output and the FFN output.

In every layer, the output projection of the attention block (`attention.output.dense`) and of the
feed-forward block (`output.dense`) is followed by h + up(GELU(down(h))), before the block's dropout,
residual and LayerNorm. Written by hand: peft has no bottleneck adapter, and the adapters library
does not support transformers 5. The up-projection starts at zero, so the adapted model starts at
the frozen backbone; with `reparam` one generator produces every adapter tensor and the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from modfit.errors import ModfitError
from modfit.model import replace_module
from modfit.tuning.base import TUNING
from modfit.tuning.reparam import ReparamConfig
from modfit.tuning.tuned import TunedClassifier, Wrapper, build, encoder_layers, make_generator

HEAD = ["head.weight", "head.bias"]
PLACES = ("attention.output.dense", "output.dense")


@dataclass(frozen=True)
class AdapterOptions:
    bottleneck: int = 24
    reparam: ReparamConfig | None = None

    def validate(self) -> None:
        if self.bottleneck < 1:
            raise ModfitError(f"adapter bottleneck {self.bottleneck}: use at least 1 (the paper uses 24)")


class Bottleneck(nn.Module):
    def __init__(self, hidden: int, size: int) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, size)
        self.up = nn.Linear(size, hidden)
        self.act = nn.GELU()
        nn.init.zeros_(self.up.weight)  # starts as the identity: the frozen backbone's output
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


class AdaptedLinear(Wrapper):
    """A frozen linear layer followed by a trainable bottleneck adapter."""

    def __init__(self, base: nn.Linear, size: int) -> None:
        super().__init__()
        self.base = base
        self.adapter = Bottleneck(base.out_features, size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(hidden))


@TUNING.register("adapter", AdapterOptions)
def adapter(model: nn.Module, config: AdapterOptions) -> TunedClassifier:
    for layer in encoder_layers(model, "adapter", PLACES):
        for place in PLACES:
            base = layer.get_submodule(place)
            if not isinstance(base, nn.Linear):
                raise ModfitError(f"adapter: {place} is a {type(base).__name__}, not a linear layer")
            replace_module(layer, place, AdaptedLinear(base, config.bottleneck))
    tuned = [name for name, _ in model.named_parameters() if ".adapter." in name] + HEAD
    if config.reparam is None:
        return build(model, "adapter", config, tuned)
    return build(model, "adapter", config, tuned, {"main": make_generator(model, tuned, config.reparam)})
