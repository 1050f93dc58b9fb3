"""`adapter`: bottleneck adapters (Houlsby et al., 2019) h + up(act(down(h))) in every layer, in one of two places.

`placement: before-norm` (default): after the output projection of the attention block
(`attention.output.dense`) and of the feed-forward block (`output.dense`), before the block's
dropout, residual and LayerNorm (Houlsby's place). `placement: after-norm`: on the output of the
whole attention block (`attention`) and of the feed-forward output block (`output`), after their
LayerNorms — where the paper's authors' code (OpenDelta's sequential adapter on the common
structure's `attn` and `ff`) puts it. `activation`: `gelu` (exact) or `gelu_new` (the tanh
approximation, OpenDelta's default).

Written by hand: peft has no bottleneck adapter, and the adapters library does not support
transformers 5. The up-projection starts at zero, so the adapted model starts at the frozen
backbone; with `reparam` one generator produces every adapter tensor and the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from modfit.errors import ModfitError
from modfit.model import replace_module
from modfit.tuning.base import TUNING
from modfit.tuning.reparam import SMALL_NORMAL, ReparamConfig
from modfit.tuning.tuned import TunedClassifier, Wrapper, build, encoder_layers, head_names, make_generator

PLACES = {"before-norm": ("attention.output.dense", "output.dense"), "after-norm": ("attention", "output")}
ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh"}  # nn.GELU's `approximate`


@dataclass(frozen=True)
class AdapterOptions:
    bottleneck: int = 24
    placement: str = "before-norm"
    activation: str = "gelu"
    reparam: ReparamConfig | None = None

    def validate(self) -> None:
        if self.bottleneck < 1:
            raise ModfitError(f"adapter bottleneck {self.bottleneck}: use at least 1 (the paper uses 24)")
        if self.placement not in PLACES:
            raise ModfitError(f"adapter placement {self.placement!r}: use {' or '.join(PLACES)}")
        if self.activation not in ACTIVATIONS:
            raise ModfitError(f"adapter activation {self.activation!r}: use {' or '.join(ACTIVATIONS)}")
        if self.reparam is not None and self.reparam.bias:
            raise ModfitError("adapter reparam bias: only prefix's generator has biases; leave bias out")


class Bottleneck(nn.Module):
    def __init__(self, hidden: int, size: int, activation: str) -> None:
        super().__init__()
        self.down = nn.Linear(hidden, size)
        self.up = nn.Linear(size, hidden)
        self.act = nn.GELU(approximate=ACTIVATIONS[activation])
        nn.init.zeros_(self.up.weight)  # starts as the identity: the frozen backbone's output
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


class AdaptedLinear(Wrapper):
    """A frozen linear layer followed by a trainable bottleneck adapter (`before-norm`)."""

    def __init__(self, base: nn.Linear, size: int, activation: str) -> None:
        super().__init__()
        self.base = base
        self.adapter = Bottleneck(base.out_features, size, activation)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(hidden))


class AdaptedBlock(Wrapper):
    """A frozen attention or feed-forward output block whose output (a tensor, or a tuple that starts
    with one) passes through a trainable bottleneck adapter (`after-norm`)."""

    def __init__(self, base: nn.Module, hidden: int, size: int, activation: str) -> None:
        super().__init__()
        self.base = base
        self.adapter = Bottleneck(hidden, size, activation)

    def forward(self, *args, **kwargs):
        output = self.base(*args, **kwargs)
        if isinstance(output, tuple):
            return (self.adapter(output[0]), *output[1:])
        return self.adapter(output)


def _wrap(layer: nn.Module, place: str, config: AdapterOptions, hidden: int) -> nn.Module:
    base = layer.get_submodule(place)
    if config.placement == "after-norm":
        return AdaptedBlock(base, hidden, config.bottleneck, config.activation)
    if not isinstance(base, nn.Linear):
        raise ModfitError(f"adapter: {place} is a {type(base).__name__}, not a linear layer")
    return AdaptedLinear(base, config.bottleneck, config.activation)


@TUNING.register("adapter", AdapterOptions)
def adapter(model: nn.Module, config: AdapterOptions) -> TunedClassifier:
    places = PLACES[config.placement]
    hidden = model.encoder.config.hidden_size
    for layer in encoder_layers(model, "adapter", PLACES["before-norm"]):
        for place in places:
            replace_module(layer, place, _wrap(layer, place, config, hidden))
    tuned = [name for name, _ in model.named_parameters() if ".adapter." in name] + head_names(model)
    if config.reparam is None:
        return build(model, "adapter", config, tuned)
    generator = make_generator(model, tuned, config.reparam, paper=SMALL_NORMAL)
    return build(model, "adapter", config, tuned, {"main": generator})
