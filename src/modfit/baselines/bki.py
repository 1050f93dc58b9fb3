"""BKI, backdoor keyword identification (Chen & Dai 2021, as in OpenBackdoor's `BKIDefender`).

Train on the poisoned set; for every training row, delete each word in turn and measure how far the
sentence representation moves (infinity norm); a row's `top_words` most influential words are its
suspects. Over the training set a word's suspicion is its mean influence times log10 of how often it
was a suspect, so a trigger — influential *and* frequent — ranks first. Rows whose suspects include
one of the `keywords` top words are dropped, and the model is trained again on the rest.

Unlike OpenBackdoor, `keywords` may be more than one (a BadNet attack with several trigger words),
and the representation is the one modfit's head reads (pooled as configured), not always [CLS].
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from modfit.baselines.base import Context, procedure
from modfit.baselines.filtering import RowVerdict, filter_and_retrain
from modfit.baselines.scoring import encode_texts, features
from modfit.errors import require
from modfit.result import RunResult


@dataclass(frozen=True)
class BkiOptions:
    top_words: int = 5
    keywords: int = 1
    batch_size: int = 128

    def validate(self) -> None:
        require(self.top_words >= 1, f"bki top_words {self.top_words}: use at least 1")
        require(self.keywords >= 1, f"bki keywords {self.keywords}: use at least 1")
        require(self.batch_size >= 1, f"bki batch_size {self.batch_size}: use at least 1")


def word_influence(result: RunResult, text: str, max_length: int, batch_size: int) -> list[float]:
    """How far deleting each word moves the representation of `text` (one number per word)."""
    words = text.split()
    variants = [text] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    vectors = features(result.model, encode_texts(variants, result.tokenizer, max_length), batch_size)
    return (vectors[1:] - vectors[0]).abs().amax(dim=-1).tolist()


def keyword_verdict(result: RunResult, texts: list[str], max_length: int, options: BkiOptions) -> RowVerdict:
    suspects: list[list[str]] = []
    influence: dict[str, list[float]] = defaultdict(list)
    for text in texts:
        words = text.split()
        deltas = word_influence(result, text, max_length, options.batch_size) if words else []
        top = sorted(range(len(words)), key=lambda i: -deltas[i])[: options.top_words]
        suspects.append([words[i] for i in top])
        for i in top:
            influence[words[i]].append(deltas[i])
    value = {w: math.log10(len(d)) * sum(d) / len(d) for w, d in influence.items()}
    keywords = sorted(value, key=lambda w: (-value[w], w))[: options.keywords]
    flagged = [any(w in keywords for w in row) for row in suspects]
    scores = [max((value[w] for w in row), default=0.0) for row in suspects]
    return RowVerdict(scores, flagged, {"keywords": " ".join(keywords)})


@procedure("bki", BkiOptions)
def bki(context: Context, options: BkiOptions) -> RunResult:
    max_length = context.experiment.model.max_length
    return filter_and_retrain(
        context, lambda result, texts, labels: keyword_verdict(result, texts, max_length, options)
    )
