"""STRIP (Gao et al. 2019; the text variant of STRIP-ViTA, as in OpenBackdoor's `STRIPDefender`).

A trigger dominates the prediction: superimpose an input with pieces of clean text and a clean input's
prediction wavers, a triggered one's does not. Each input gets `copies` perturbed copies, in each of
which a `swap_ratio` share of its words is replaced by words of one random clean dev text; the mean
prediction entropy over the copies is its score. Inputs whose entropy falls below a threshold are
flagged. The threshold is set on clean dev rows so that a share `frr` of them would be flagged.

As a guard (default) the trained model rejects flagged inputs; with `filter_train: true` the flagged
training rows are dropped instead and the model is trained again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from modfit.baselines.base import Context, procedure
from modfit.baselines.filtering import RowVerdict, filter_and_retrain
from modfit.baselines.guard import Guarded, guard_outcome
from modfit.baselines.scoring import encode_texts, probabilities, threshold_at_rate
from modfit.data import subsample
from modfit.errors import require
from modfit.result import RunResult


@dataclass(frozen=True)
class StripOptions:
    copies: int = 20
    swap_ratio: float = 0.5
    frr: float = 0.01
    clean_rows: int = 1000  # clean dev rows that supply the pieces and set the threshold
    filter_train: bool = False
    batch_size: int = 128

    def validate(self) -> None:
        require(self.copies >= 1, f"strip copies {self.copies}: use at least 1")
        require(0 < self.swap_ratio <= 1, f"strip swap_ratio {self.swap_ratio}: use a share in (0, 1]")
        require(0 <= self.frr < 1, f"strip frr {self.frr}: use a share in [0, 1)")
        require(self.clean_rows >= 1, f"strip clean_rows {self.clean_rows}: use at least 1")


def superimpose(text: str, piece: list[str], ratio: float, rng: random.Random) -> str:
    """`text` with a `ratio` share of its words (at least one) replaced by words of `piece`."""
    words = text.split()
    if not words or not piece:
        return text
    for position in rng.sample(range(len(words)), max(1, round(ratio * len(words)))):
        words[position] = rng.choice(piece)
    return " ".join(words)


def entropies(
    result: RunResult, texts: list[str], pieces: list[str], options: StripOptions, max_length: int, seed: int
) -> list[float]:
    """Mean prediction entropy over each text's perturbed copies (low: the prediction resists)."""
    rng = random.Random(seed)
    split_pieces = [p.split() for p in pieces]
    scores: list[float] = []
    chunk = max(1, options.batch_size // options.copies)
    for start in range(0, len(texts), chunk):
        copies = [
            superimpose(text, rng.choice(split_pieces), options.swap_ratio, rng)
            for text in texts[start : start + chunk]
            for _ in range(options.copies)
        ]
        p = probabilities(
            result.model, encode_texts(copies, result.tokenizer, max_length), options.batch_size
        )
        entropy = -(p * p.clamp_min(1e-12).log()).sum(-1)
        scores += entropy.view(-1, options.copies).mean(-1).tolist()
    return scores


@procedure("strip", StripOptions)
def strip(context: Context, options: StripOptions) -> RunResult:
    experiment = context.experiment
    max_length, seed = experiment.model.max_length, experiment.seed
    clean = [e.text for e in subsample(context.data.splits.dev, options.clean_rows, seed)]

    def score(result: RunResult, texts: list[str]) -> list[float]:
        return entropies(result, texts, clean, options, max_length, seed)

    def threshold(result: RunResult) -> float:
        return threshold_at_rate(score(result, clean), options.frr)

    if options.filter_train:

        def verdict(result: RunResult, texts: list[str], labels: list[int]) -> RowVerdict:
            cut, entropy = threshold(result), score(result, texts)
            return RowVerdict([-e for e in entropy], [e < cut for e in entropy], {"threshold": cut})

        return filter_and_retrain(context, verdict)
    result = context.train()
    cut = threshold(result)

    def guard(texts: list[str]) -> Guarded:
        return Guarded(texts, [e < cut for e in score(result, texts)])

    return guard_outcome(context, result, guard, rejects=True, details={"threshold": cut})
