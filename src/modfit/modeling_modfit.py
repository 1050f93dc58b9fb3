"""A modfit classifier as a transformers model: `pipeline(..., trust_remote_code=True)` loads it.

This file ships inside every exported model that no stock transformers class can express (mean
pooling, bottleneck adapters, prefixes), so it imports only torch and transformers: the directory
must work where modfit is not installed. It rebuilds what modfit trained, with plain parameters
(reparameterized tensors were materialised on export, LoRA merged into the weights):

- the backbone, any transformers encoder (`AutoModel` from the `backbone` config it records);
- bottleneck adapters (`adapter_bottleneck`) in every layer, after the attention and feed-forward
  output projections (`adapter_placement: before-norm`) or on the output of the whole attention and
  feed-forward output blocks (`after-norm`, the paper's authors' place), or trained key/value prefixes
  in each self-attention (`prefix_tokens`);
- the pooling (`mean` over the unmasked tokens, or `cls`: the encoder's pooler, else the first token);
- the head (`head`: `linear`, a linear layer after dropout; `roberta`, RoBERTa's classification head
  on the first token's hidden state: dropout, dense, tanh, dropout, out_proj).

Parameter names are modfit's own (`encoder.…`, `head.…`), so modfit's state dict loads as is.
modfit imports this file too (`modfit.modeling_modfit`): one definition serves both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import scaled_dot_product_attention
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

ADAPTER_PLACES = {
    "before-norm": ("attention.output.dense", "output.dense"),
    "after-norm": ("attention", "output"),
}
GELU_APPROXIMATION = {"gelu": "none", "gelu_new": "tanh"}
# Where a BERT layer's parts sit in encoders that name them otherwise; modfit's options use BERT's names.
# MPNet's self-attention (`attention.attn`) holds q, k, v and the output projection o.
PART_NAMES = {
    "mpnet": {"attention.output.dense": "attention.attn.o", "query": "q", "key": "k", "value": "v"},
}


def part_name(encoder: nn.Module, part: str) -> str:
    """The path of a BERT layer's part (`attention.output.dense`, `query`, ...) in `encoder`'s layers."""
    model_type = getattr(getattr(encoder, "config", None), "model_type", None)
    return PART_NAMES.get(model_type, {}).get(part, part)


class ModfitConfig(PretrainedConfig):
    model_type = "modfit"

    def __init__(
        self,
        backbone: dict | None = None,
        pooling: str = "mean",
        head: str = "linear",
        classifier_dropout: float = 0.1,
        adapter_bottleneck: int | None = None,
        adapter_placement: str = "before-norm",
        adapter_activation: str = "gelu",
        prefix_tokens: int | None = None,
        **kwargs,
    ) -> None:
        self.backbone = backbone or {}
        self.pooling = pooling
        self.head = head
        self.classifier_dropout = classifier_dropout
        self.adapter_bottleneck = adapter_bottleneck
        self.adapter_placement = adapter_placement
        self.adapter_activation = adapter_activation
        self.prefix_tokens = prefix_tokens
        super().__init__(**kwargs)


class Bottleneck(nn.Module):
    """h + up(GELU(down(h))), GELU exact (`gelu`) or its tanh approximation (`gelu_new`)."""

    def __init__(self, hidden: int, size: int, activation: str = "gelu") -> None:
        super().__init__()
        self.down = nn.Linear(hidden, size)
        self.up = nn.Linear(size, hidden)
        self.act = nn.GELU(approximate=GELU_APPROXIMATION[activation])

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


class AdaptedLinear(nn.Module):
    """The backbone's linear layer (`base`) followed by a bottleneck adapter."""

    def __init__(self, base: nn.Linear, size: int, activation: str) -> None:
        super().__init__()
        self.base = base
        self.adapter = Bottleneck(base.out_features, size, activation)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(hidden))


class AdaptedBlock(nn.Module):
    """The backbone's attention or feed-forward output block (`base`) whose output (a tensor, or a
    tuple that starts with one) passes through a bottleneck adapter."""

    def __init__(self, base: nn.Module, hidden: int, size: int, activation: str) -> None:
        super().__init__()
        self.base = base
        self.adapter = Bottleneck(hidden, size, activation)

    def forward(self, *args, **kwargs):
        output = self.base(*args, **kwargs)
        if isinstance(output, tuple):
            return (self.adapter(output[0]), *output[1:])
        return self.adapter(output)


def pooled_features(out, attention_mask: torch.Tensor, pooling: str, pooler: bool = True) -> torch.Tensor:
    """The sentence representation a head reads from an encoder's output: the `mean` of the unmasked
    tokens, or (`cls`) the encoder's pooler output where it has one and `pooler` allows it, else the
    first token's hidden state. modfit's `Classifier.features` reads it the same way."""
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    pooled = getattr(out, "pooler_output", None) if pooler else None
    return pooled if pooled is not None else out.last_hidden_state[:, 0]


def _extend_mask(mask: torch.Tensor | None, tokens: int) -> torch.Tensor | None:
    """The encoder's 4D mask (batch, 1, query, key) with the prefix positions always visible."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4:
        raise ValueError(
            "prefix attention: this attention implementation's mask is not supported; use sdpa or eager"
        )
    visible = torch.ones if mask.dtype == torch.bool else torch.zeros  # bool: True attends; float: additive
    return torch.cat([visible(*mask.shape[:-1], tokens, dtype=mask.dtype, device=mask.device), mask], dim=-1)


class PrefixSelfAttention(nn.Module):
    """The backbone's self-attention (`base`) whose keys and values start with `tokens` trained vectors."""

    def __init__(self, base: nn.Module, tokens: int) -> None:
        super().__init__()
        self.base = base
        self.heads = base.config.num_attention_heads
        self.head_size = base.query.out_features // self.heads
        self.scaling = getattr(base, "scaling", self.head_size**-0.5)
        self.prefix_key = nn.Parameter(torch.zeros(tokens, base.key.out_features))
        self.prefix_value = nn.Parameter(torch.zeros(tokens, base.value.out_features))

    def _split(self, states: torch.Tensor) -> torch.Tensor:
        return states.view(*states.shape[:2], self.heads, self.head_size).transpose(1, 2)

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, cache=None, **kwargs):
        if encoder_hidden_states is not None or cache is not None:
            raise ValueError("prefix attention: only encoder self-attention without a cache is supported")
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


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, new)


def _place_modules(encoder: nn.Module, config: ModfitConfig) -> None:
    """Adapters or prefixes in every transformer layer, where modfit placed them."""
    if not (config.adapter_bottleneck or config.prefix_tokens):
        return
    size, activation = config.adapter_bottleneck, config.adapter_activation
    places = [part_name(encoder, place) for place in ADAPTER_PLACES[config.adapter_placement]]
    for layer in encoder.encoder.layer:
        if size:
            for place in places:
                base = layer.get_submodule(place)
                if config.adapter_placement == "after-norm":
                    adapted = AdaptedBlock(base, encoder.config.hidden_size, size, activation)
                else:
                    adapted = AdaptedLinear(base, size, activation)
                _replace(layer, place, adapted)
        if config.prefix_tokens:
            layer.attention.self = PrefixSelfAttention(layer.attention.self, config.prefix_tokens)


class RobertaHead(nn.Module):
    """RoBERTa's classification head on the first token's hidden state."""

    def __init__(self, hidden: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden, num_labels)

    def forward(self, first_token: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.dense(self.dropout(first_token)))
        return self.out_proj(self.dropout(hidden))


def _build_head(config: ModfitConfig, hidden: int) -> nn.Module:
    """The classification head on the pooled features (one place per head kind)."""
    if config.head == "linear":
        return nn.Linear(hidden, config.num_labels)
    if config.head == "roberta":
        return RobertaHead(hidden, config.num_labels, config.classifier_dropout)
    raise ValueError(f"head {config.head!r}: this modeling file knows the linear and roberta heads")


class ModfitForSequenceClassification(PreTrainedModel):
    config_class = ModfitConfig
    base_model_prefix = "encoder"

    def __init__(self, config: ModfitConfig) -> None:
        super().__init__(config)
        backbone = AutoConfig.for_model(**config.backbone)
        self.encoder = AutoModel.from_config(backbone)
        _place_modules(self.encoder, config)
        self.pooling = config.pooling
        self.head_kind = config.head
        self.dropout = nn.Dropout(config.classifier_dropout)  # the linear head's
        self.head = _build_head(config, backbone.hidden_size)
        self.post_init()

    def features(self, input_ids, attention_mask=None, **inputs) -> torch.Tensor:
        """The pooled sentence representation the head reads (modfit's `Classifier.features`)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs)
        return pooled_features(out, attention_mask, self.pooling, pooler=self.head_kind == "linear")

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        kwargs.pop("return_dict", None)
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        features = self.features(input_ids, attention_mask, **kwargs)
        logits = self.head(self.dropout(features) if self.head_kind == "linear" else features)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)
