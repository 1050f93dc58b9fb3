"""What the baselines share for scoring: batched class probabilities and sentence features of texts,
and the threshold rule that sets every detector's cut-off on clean data."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from modfit.data import Example
from modfit.encoding import Encoded, encode


def encode_texts(
    texts: Sequence[str], tokenizer, max_length: int, labels: Sequence[int] | None = None
) -> Encoded:
    """Tokenise texts made up by a defence (perturbed, shortened) without the grid's cache: they are
    seen once, and caching them would only grow memory."""
    labels = labels if labels is not None else [0] * len(texts)
    return encode([Example(t, y) for t, y in zip(texts, labels, strict=True)], tokenizer, max_length)


@torch.no_grad()
def probabilities(model: torch.nn.Module, data: Encoded, batch_size: int = 128) -> torch.Tensor:
    """Softmax class probabilities, one row per input, on the CPU."""
    return _batched(model, data, batch_size, lambda inputs: model(**inputs).softmax(-1))


@torch.no_grad()
def features(model: torch.nn.Module, data: Encoded, batch_size: int = 128) -> torch.Tensor:
    """The sentence representation the head reads (`Classifier.features`), one row per input."""
    return _batched(model, data, batch_size, lambda inputs: model.features(**inputs))


def _batched(model: torch.nn.Module, data: Encoded, batch_size: int, step) -> torch.Tensor:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(data), batch_size):
        inputs, _ = data.batch(range(start, min(start + batch_size, len(data))), device)
        out.append(step(inputs).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def threshold_at_rate(clean_scores: Sequence[float], rate: float) -> float:
    """The cut-off below which a detector flags a score, set on clean scores only: at most `rate` of
    them fall strictly below it (fewer with ties), so `rate` is the false rejection rate on that
    clean data. Flag "above" instead by negating the scores and the cut-off."""
    ordered = sorted(s for s in clean_scores if not math.isnan(s))
    if not ordered:
        raise ValueError("no clean scores to set a threshold on")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate {rate}: use a share in [0, 1)")
    return ordered[math.floor(rate * len(ordered))]
