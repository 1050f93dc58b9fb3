"""`prefix`: trainable key/value vectors prepended to every self-attention layer (Li & Liang, 2021).

Written by hand rather than with peft: peft's prefix tuning feeds the prefixes to a transformers 5
BertModel through its key/value cache, and the model then shifts the real tokens' position ids by
the number of virtual tokens (BertEmbeddings reads the cache length), so the frozen backbone sees
its inputs at positions it was not trained on. Here each layer's self-attention is wrapped: the
prefix keys and values are concatenated to the layer's own before attention, positions untouched.

With `reparam`, Li & Liang's reparameterization with a `mid_dim` bottleneck generates the prefixes:
each virtual token has an `in_dim` embedding → W1 → tanh → W2 → its key and value in every layer
(with `bias`, W1 and W2 have biases, as in the authors' code: `nn.Embedding(tokens, 512)` → Linear →
tanh → Linear); the head has its own generator, from an `in_dim` vector, without biases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.functional import scaled_dot_product_attention

from modfit.errors import ModfitError
from modfit.tuning.base import TUNING
from modfit.tuning.reparam import EMBEDDING, LINEAR, ReparamConfig
from modfit.tuning.tuned import TunedClassifier, Wrapper, build, encoder_layers, head_names, make_generator

ATTENTION_PARTS = ("query", "key", "value", "dropout")


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


def _extend_mask(mask: torch.Tensor | None, tokens: int) -> torch.Tensor | None:
    """The encoder's 4D mask (batch, 1, query, key) with the prefix positions always visible."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4:
        raise ModfitError("prefix: this attention implementation's mask is not supported; use sdpa or eager")
    visible = torch.ones if mask.dtype == torch.bool else torch.zeros  # bool: True attends; float: additive
    return torch.cat([visible(*mask.shape[:-1], tokens, dtype=mask.dtype, device=mask.device), mask], dim=-1)


class PrefixSelfAttention(Wrapper):
    """A frozen BERT-style self-attention whose keys and values start with `tokens` trained vectors."""

    def __init__(self, base: nn.Module, tokens: int, init_std: float) -> None:
        super().__init__()
        self.base = base
        self.heads = base.config.num_attention_heads
        self.head_size = base.query.out_features // self.heads
        self.scaling = getattr(base, "scaling", self.head_size**-0.5)
        self.prefix_key = nn.Parameter(torch.randn(tokens, base.key.out_features) * init_std)
        self.prefix_value = nn.Parameter(torch.randn(tokens, base.value.out_features) * init_std)

    def _split(self, states: torch.Tensor) -> torch.Tensor:
        return states.view(*states.shape[:2], self.heads, self.head_size).transpose(1, 2)

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, cache=None, **kwargs):
        if encoder_hidden_states is not None or cache is not None:
            raise ModfitError("prefix: only encoder self-attention without a cache is supported")
        base, batch = self.base, hidden_states.shape[0]
        key = torch.cat([self.prefix_key.expand(batch, -1, -1), base.key(hidden_states)], dim=1)
        value = torch.cat([self.prefix_value.expand(batch, -1, -1), base.value(hidden_states)], dim=1)
        output = scaled_dot_product_attention(
            self._split(base.query(hidden_states)),
            self._split(key),
            self._split(value),
            attn_mask=_extend_mask(attention_mask, self.prefix_key.shape[0]),
            dropout_p=base.dropout.p if self.training else 0.0,
            scale=self.scaling,
        )
        return output.transpose(1, 2).reshape(*hidden_states.shape[:2], -1), None


@TUNING.register("prefix", PrefixOptions)
def prefix(model: nn.Module, config: PrefixOptions) -> TunedClassifier:
    parts = tuple(f"attention.self.{part}" for part in ATTENTION_PARTS)
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
