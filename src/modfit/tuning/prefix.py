"""`prefix`: trainable key/value vectors prepended to every self-attention layer (Li & Liang, 2021).

Written by hand rather than with peft: peft's prefix tuning feeds the prefixes to a transformers 5
BertModel through its key/value cache, and the model then shifts the real tokens' position ids by
the number of virtual tokens (BertEmbeddings reads the cache length), so the frozen backbone sees
its inputs at positions it was not trained on. Here each layer's self-attention is wrapped: the
prefix keys and values are concatenated to the layer's own before attention, positions untouched.
The module is `modeling_modfit`'s, the file a saved model carries, so training and shipping run one code.

With `reparam`, Li & Liang's reparameterization with a `mid_dim` bottleneck generates the prefixes:
each virtual token has an `in_dim` embedding → W1 → tanh → W2 → its key and value in every layer
(with `bias`, W1 and W2 have biases, as in the authors' code: `nn.Embedding(tokens, 512)` → Linear →
tanh → Linear); the head has its own generator, from an `in_dim` vector, without biases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import modfit.modeling_modfit as shipped
from modfit.errors import ModfitError
from modfit.tuning.base import TUNING
from modfit.tuning.reparam import EMBEDDING, LINEAR, ReparamConfig
from modfit.tuning.tuned import TunedClassifier, Wrapper, build, encoder_layers, head_names, make_generator

ATTENTION_PARTS = ("query", "key", "value", "dropout")
# Encoders whose self-attention a prefix cannot enter as written here, and why.
NO_PREFIX = {
    "mpnet": "MPNet's attention adds a relative position bias computed for its own tokens' keys only, "
    "so prefix keys have no position there",
}


@dataclass(frozen=True)
class PrefixOptions:
    tokens: int = 24
    init_std: float = 0.02
    reparam: ReparamConfig | None = None

    def validate(self) -> None:
        if self.tokens < 1:
            raise ModfitError(f"prefix tokens {self.tokens}: use at least 1 (the paper uses 24)")
        if self.init_std < 0:
            raise ModfitError(f"prefix init_std {self.init_std}: use a standard deviation >= 0")


class PrefixSelfAttention(Wrapper, shipped.PrefixSelfAttention):
    """The shipped prefix attention (`modeling_modfit`: the same module serves training and the saved
    model) placed by modfit, its prefixes drawn from N(0, init_std)."""

    def __init__(self, base: nn.Module, tokens: int, init_std: float) -> None:
        shipped.PrefixSelfAttention.__init__(self, base, tokens)
        with torch.no_grad():
            self.prefix_key.normal_(0.0, init_std)
            self.prefix_value.normal_(0.0, init_std)


@TUNING.register("prefix", PrefixOptions)
def prefix(model: nn.Module, config: PrefixOptions) -> TunedClassifier:
    parts = tuple(f"attention.self.{part}" for part in ATTENTION_PARTS)
    refused = NO_PREFIX.get(getattr(getattr(model.encoder, "config", None), "model_type", None))
    if refused:
        raise ModfitError(f"prefix: {refused}; use lora or adapter")
    attention = getattr(model.encoder.config, "_attn_implementation", None) or "eager"
    if attention not in ("eager", "sdpa"):
        raise ModfitError(
            f"prefix: the {attention} attention's mask is not supported; load the model with sdpa or eager"
        )
    for layer in encoder_layers(model, "prefix", parts):
        layer.attention.self = PrefixSelfAttention(layer.attention.self, config.tokens, config.init_std)
    prefixes = [name for name, _ in model.named_parameters() if ".prefix_" in name]
    head = head_names(model)
    if config.reparam is None:
        return build(model, "prefix", config, prefixes + head)
    reparam = config.reparam
    generators = {
        "prefix": make_generator(
            model, prefixes, reparam, rows=config.tokens, paper=EMBEDDING, bias=reparam.bias
        ),
        "head": make_generator(model, head, reparam, paper=LINEAR),
    }
    return build(model, "prefix", config, prefixes + head, generators)
