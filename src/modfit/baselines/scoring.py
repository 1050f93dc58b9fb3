"""What the baselines share for scoring: batched class probabilities and sentence features of texts
(`modfit.inference`), and the threshold rule that sets every detector's cut-off on clean data."""

from __future__ import annotations

import math
from collections.abc import Sequence

from modfit.data import Example
from modfit.encoding import Encoded, encode
from modfit.inference import features, probabilities

__all__ = ["encode_texts", "features", "probabilities", "threshold_at_rate"]


def encode_texts(
    texts: Sequence[str], tokenizer, max_length: int, labels: Sequence[int] | None = None
) -> Encoded:
    """Tokenise texts made up by a defence (perturbed, shortened) without the grid's cache: they are
    seen once, and caching them would only grow memory."""
    labels = labels if labels is not None else [0] * len(texts)
    return encode([Example(t, y) for t, y in zip(texts, labels, strict=True)], tokenizer, max_length)


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
