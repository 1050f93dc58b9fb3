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

from torch import nn

import modfit.modeling_modfit as shipped
from modfit.errors import ModfitError
from modfit.model import replace_module
from modfit.modeling_modfit import Bottleneck
from modfit.tuning.base import TUNING
from modfit.tuning.reparam import SMALL_NORMAL, ReparamConfig
from modfit.tuning.tuned import TunedClassifier, Wrapper, build, encoder_layers, head_names, make_generator

PLACES = shipped.ADAPTER_PLACES
ACTIVATIONS = shipped.GELU_APPROXIMATION  # nn.GELU's `approximate`


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


def _start_at_identity(bottleneck: Bottleneck) -> Bottleneck:
    nn.init.zeros_(bottleneck.up.weight)  # the adapted model starts at the frozen backbone's output
    nn.init.zeros_(bottleneck.up.bias)
    return bottleneck


class AdaptedLinear(Wrapper, shipped.AdaptedLinear):
    """A frozen linear layer followed by a trainable bottleneck adapter (`before-norm`); the module is
    `modeling_modfit`'s, the file a saved model carries."""

    def __init__(self, base: nn.Linear, size: int, activation: str) -> None:
        shipped.AdaptedLinear.__init__(self, base, size, activation)
        _start_at_identity(self.adapter)


class AdaptedBlock(Wrapper, shipped.AdaptedBlock):
    """A frozen attention or feed-forward output block whose output passes through a trainable
    bottleneck adapter (`after-norm`); the module is `modeling_modfit`'s."""

    def __init__(self, base: nn.Module, hidden: int, size: int, activation: str) -> None:
        shipped.AdaptedBlock.__init__(self, base, hidden, size, activation)
        _start_at_identity(self.adapter)


def _wrap(layer: nn.Module, place: str, config: AdapterOptions, hidden: int) -> nn.Module:
    base = layer.get_submodule(place)
    if config.placement == "after-norm":
        return AdaptedBlock(base, hidden, config.bottleneck, config.activation)
    if not isinstance(base, nn.Linear):
        raise ModfitError(f"adapter: {place} is a {type(base).__name__}, not a linear layer")
    return AdaptedLinear(base, config.bottleneck, config.activation)


@TUNING.register("adapter", AdapterOptions)
def adapter(model: nn.Module, config: AdapterOptions) -> TunedClassifier:
    places = [shipped.part_name(model.encoder, place) for place in PLACES[config.placement]]
    hidden = model.encoder.config.hidden_size
    for layer in encoder_layers(model, "adapter", places):
        for place in places:
            replace_module(layer, place, _wrap(layer, place, config, hidden))
    tuned = [name for name, _ in model.named_parameters() if ".adapter." in name] + head_names(model)
    if config.reparam is None:
        return build(model, "adapter", config, tuned)
    generator = make_generator(model, tuned, config.reparam, paper=SMALL_NORMAL)
    return build(model, "adapter", config, tuned, {"main": generator})
