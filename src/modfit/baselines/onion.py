"""ONION (Qi et al. 2021, as in OpenBackdoor's `ONIONDefender`): remove the words that make a text
implausible to a language model.

A word's suspicion is the text's perplexity minus its perplexity without that word; an inserted rare
trigger word lowers fluency, so deleting it lowers perplexity most. At inference every input loses its
words whose suspicion exceeds a threshold before the trained model sees it. The threshold is either
given (`threshold`; the original used 0 with GPT-2) or set on clean dev rows so that at most a
share `clean_removal` of their words would be removed (never below 0) — perplexity scales differ between language models,
so a rule on clean data transfers where a constant does not.

The language model is a Hugging Face causal LM when `lm` names one (e.g. `gpt2` online); otherwise a
smoothed bigram model fitted on the training texts themselves (docs/defences/baselines.md, "Baseline defences", says how
that differs from GPT-2 ONION).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modfit.baselines.base import Context, procedure
from modfit.baselines.causal_lm import CausalLM
from modfit.baselines.guard import Guarded, guard_outcome
from modfit.baselines.ngram import BigramModel
from modfit.baselines.scoring import threshold_at_rate
from modfit.data import subsample
from modfit.errors import require
from modfit.result import RunResult


@dataclass(frozen=True)
class OnionOptions:
    lm: str | None = None
    threshold: float | None = None
    clean_removal: float = 0.05
    clean_rows: int = 1000
    batch_size: int = 32

    def validate(self) -> None:
        require(
            0 <= self.clean_removal < 1, f"onion clean_removal {self.clean_removal}: use a share in [0, 1)"
        )
        require(self.clean_rows >= 1, f"onion clean_rows {self.clean_rows}: use at least 1")


class LanguageModel(Protocol):
    def perplexities(self, texts: list[str]) -> list[float]: ...


def suspicions(lm: LanguageModel, texts: list[str], chunk: int = 64) -> list[list[float]]:
    """Per text, per word: perplexity with the word minus perplexity without it (one-word texts: 0)."""
    out: list[list[float]] = []
    for start in range(0, len(texts), chunk):
        variants: list[str] = []
        spans = []
        for text in texts[start : start + chunk]:
            words = text.split()
            spans.append((len(variants), len(words) if len(words) > 1 else 0))
            if len(words) > 1:
                variants += [text] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
        perplexities = lm.perplexities(variants)
        for (begin, count), text in zip(spans, texts[start : start + chunk], strict=True):
            if not count:
                out.append([0.0] * len(text.split()))
                continue
            whole = perplexities[begin]
            out.append([whole - p for p in perplexities[begin + 1 : begin + 1 + count]])
    return out


def without_suspicious(text: str, scores: list[float], threshold: float) -> str:
    return " ".join(w for w, s in zip(text.split(), scores, strict=True) if s <= threshold)


def removal_threshold(lm: LanguageModel, clean: list[str], share: float) -> float:
    """The suspicion above which at most `share` of the clean texts' words lie, and never below 0:
    a word whose deletion makes the text less fluent is never removed."""
    scores = [s for row in suspicions(lm, clean) for s in row]
    return max(0.0, -threshold_at_rate([-s for s in scores], share))


@procedure("onion", OnionOptions)
def onion(context: Context, options: OnionOptions) -> RunResult:
    experiment = context.experiment
    lm = (
        CausalLM(options.lm, options.batch_size)
        if options.lm
        else BigramModel().fit(e.text for e in context.data.train)
    )
    result = context.train()
    if options.threshold is not None:
        cut = options.threshold
    else:
        clean = [e.text for e in subsample(context.data.splits.dev, options.clean_rows, experiment.seed)]
        cut = removal_threshold(lm, clean, options.clean_removal)

    def guard(texts: list[str]) -> Guarded:
        cleaned = [without_suspicious(t, s, cut) for t, s in zip(texts, suspicions(lm, texts), strict=True)]
        return Guarded(cleaned, [False] * len(texts))

    details = {"threshold": cut, "lm": options.lm or "bigram(train)"}
    return guard_outcome(context, result, guard, rejects=False, details=details)
