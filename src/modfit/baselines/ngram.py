"""A smoothed bigram language model: ONION's offline stand-in for GPT-2.

Written by hand because nothing installed here provides one and it is forty lines: interpolated
absolute discounting (the backbone of Kneser-Ney) over lower-cased words, backing off to an add-one
unigram model, so unseen words and pairs keep a small probability.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

START, END = "<s>", "</s>"


def words(text: str) -> list[str]:
    return text.lower().split()


class BigramModel:
    """`fit` counts; `perplexities` scores. Discount `d` in (0, 1): 0.75 is the usual choice."""

    def __init__(self, discount: float = 0.75) -> None:
        self.discount = discount
        self.unigrams: Counter[str] = Counter()
        self.bigrams: Counter[tuple[str, str]] = Counter()
        self.contexts: Counter[str] = Counter()
        self.followers: Counter[str] = Counter()

    def fit(self, texts: Iterable[str]) -> BigramModel:
        for text in texts:
            sequence = [START, *words(text), END]
            self.unigrams.update(sequence[1:])
            for pair in zip(sequence, sequence[1:], strict=False):
                if pair not in self.bigrams:
                    self.followers[pair[0]] += 1
                self.bigrams[pair] += 1
                self.contexts[pair[0]] += 1
        self.total = sum(self.unigrams.values())
        return self

    def probability(self, previous: str, word: str) -> float:
        unigram = (self.unigrams[word] + 1) / (self.total + len(self.unigrams) + 1)
        seen = self.contexts[previous]
        if not seen:
            return unigram
        pair = max(self.bigrams[previous, word] - self.discount, 0.0) / seen
        return pair + self.discount * self.followers[previous] / seen * unigram

    def perplexity(self, text: str) -> float:
        sequence = [START, *words(text), END]
        logs = [math.log(self.probability(a, b)) for a, b in zip(sequence, sequence[1:], strict=False)]
        return math.exp(-sum(logs) / len(logs))

    def perplexities(self, texts: list[str]) -> list[float]:
        return [self.perplexity(t) for t in texts]
