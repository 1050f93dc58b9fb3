"""Batched inference, the one way modfit runs a model without training it.

Texts are sorted by length before batching so that each batch pads to nearly its own length (on SST-2
a batch in input order pads 25 real tokens to about 50); the outputs come back in the input order.
Images have no length and keep their order.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

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


def predict(
    model: torch.nn.Module, data, precision: str = "fp32", batch_size: int = INFERENCE_BATCH
) -> list[int]:
    """The predicted label of every row, in input order."""
    logits = batched(model, data, batch_size=batch_size, precision=precision)
    return logits.argmax(-1).tolist() if len(logits) else []


def probabilities(
    model: torch.nn.Module, data, batch_size: int = INFERENCE_BATCH, precision: str = "fp32"
) -> torch.Tensor:
    """Softmax class probabilities, one row per input, in input order."""
    return batched(model, data, lambda **inputs: model(**inputs).softmax(-1), batch_size, precision)


def features(
    model: torch.nn.Module, data, batch_size: int = INFERENCE_BATCH, precision: str = "fp32"
) -> torch.Tensor:
    """The sentence representation the head reads (`Classifier.features`), one row per input."""
    return batched(model, data, model.features, batch_size, precision)
