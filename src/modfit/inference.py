"""Batched inference, the one way modfit runs a model without training it.

Texts are sorted by length before batching so that each batch pads to nearly its own length (on SST-2
a batch in input order pads 25 real tokens to about 50); the outputs come back in the input order.
Images have no length and keep their order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from modfit.config import ModelConfig
from modfit.data.example import Example
from modfit.encoding import Encoded, encode
from modfit.errors import ModfitError
from modfit.precision import autocast

INFERENCE_BATCH = 256


def batched(
    model: torch.nn.Module,
    data,
    step: Callable[..., torch.Tensor] | None = None,
    batch_size: int = INFERENCE_BATCH,
    precision: str = "fp32",
) -> torch.Tensor:
    """`step(**inputs)` (default: the model's forward) over every row of `data` (an `Encoded` or
    `EncodedImages`), as float32 on the CPU, one row per input in input order."""
    step = step or model
    lengths = data.lengths() if hasattr(data, "lengths") else None
    order = sorted(range(len(data)), key=lambda i: -lengths[i]) if lengths else list(range(len(data)))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts = []
    try:
        with torch.inference_mode(), autocast(device, precision):
            for start in range(0, len(order), batch_size):
                inputs, _ = data.batch(order[start : start + batch_size], device)
                parts.append(step(**inputs).float().cpu())
    finally:
        model.train(was_training)
    if not parts:
        return torch.empty(0)
    out = torch.empty_like(torch.cat(parts))
    out[torch.as_tensor(order)] = torch.cat(parts)
    return out


def encoded(model: torch.nn.Module, data, tokenizer: Any = None, max_length: int | None = None):
    """`data` as token batches: an `Encoded` as is; a list of texts tokenised with `tokenizer`, else
    the model's own (`modfit.load_model` gives it one), truncated at `max_length`, else at the length
    the model was trained with (64 where it does not say)."""
    if isinstance(data, str):
        raise ModfitError("predict takes a list of texts, not one string: write predict(model, [text])")
    if not isinstance(data, Sequence):
        return data
    if not all(isinstance(text, str) for text in data):
        raise ModfitError("predict takes texts (str) or an Encoded split; found a non-text item")
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ModfitError(
            "predict on texts needs a tokenizer: load the model with modfit.load_model(DIR), or pass "
            "tokenizer= (the one load_classifier returned)"
        )
    if not data:  # the tokenizer refuses an empty batch
        return Encoded({"input_ids": []}, [], tokenizer)
    max_length = max_length or getattr(model, "max_length", None) or ModelConfig().max_length
    return encode([Example(text, 0) for text in data], tokenizer, max_length)


def predict(
    model: torch.nn.Module,
    data: Sequence[str] | Any,
    precision: str = "fp32",
    batch_size: int = INFERENCE_BATCH,
    tokenizer: Any = None,
    max_length: int | None = None,
) -> list[int]:
    """The predicted label of every row, in input order. `data`: raw texts (tokenised as `encoded`
    says: `predict(modfit.load_model(DIR), ["a text"])`) or an `Encoded` split. A model from
    `load_model` names its labels: `model.labels[label]`."""
    data = encoded(model, data, tokenizer, max_length)
    if len(data) == 0:
        return []
    return batched(model, data, batch_size=batch_size, precision=precision).argmax(-1).tolist()


def probabilities(
    model: torch.nn.Module,
    data: Sequence[str] | Any,
    batch_size: int = INFERENCE_BATCH,
    precision: str = "fp32",
    tokenizer: Any = None,
    max_length: int | None = None,
) -> torch.Tensor:
    """Softmax class probabilities, one row per input, in input order (`data` as for `predict`)."""
    data = encoded(model, data, tokenizer, max_length)
    return batched(model, data, lambda **inputs: model(**inputs).softmax(-1), batch_size, precision)


def features(
    model: torch.nn.Module, data, batch_size: int = INFERENCE_BATCH, precision: str = "fp32"
) -> torch.Tensor:
    """The sentence representation the head reads (`Classifier.features`), one row per input."""
    return batched(model, data, model.features, batch_size, precision)
