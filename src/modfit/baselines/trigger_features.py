"""`safe`'s trigger-feature lever (`feature_z`, issue 27, item 6): learn the trigger's surface form from
the rows the scanner caught, and drop the rows it believed that carry it.

At heavy poison the scanner misses some poisoned rows, and they teach the trigger. The missed rows share
the trigger's surface form with the caught ones (a rare word, a fixed sentence, a paraphrase's
"if you" or "thou hath"), and a word or word pair that a clean row of a label carries is flagged about as
often as any row of that label. So for every feature f of a text (a lowercased whitespace token, or a
pair of adjacent tokens) and every given label y, with n ≥ `min_count` rows of label y carrying f, k of
them flagged, and p0 the flagged share of all rows of label y, the one-sample z of the flagged share:

    z = (k/n − p0) / sqrt(p0 (1 − p0) / n)

A (feature, label) with z ≥ Z is *spurious*: it marks the poison of that label. Every row not yet
flagged that carries a spurious feature of its own given label is dropped and marked flagged: the scanner
believes its label, so relabelling would guess.

`select="greedy"` takes the spurious features one at a time (benchmarks/safe_heavy/, third rule): the
feature of highest z is taken, the rows of its label that carry it leave the count, and the z-scores are
computed again on the rows left, until none reaches Z. A common word that the trigger sentence carries
("this" in "i watched this 3d movie") is then no longer enriched once the trigger's rarer words have taken
the poisoned rows, while a paraphrase's several templates are still taken one after another. A greedy
feature's z is its z when it was taken. `select="all"` takes every feature at z ≥ Z at once.

Works for any number of labels; it reads texts, given
labels and flags only, never the hidden `poisoned` marks. Pure functions, written by hand (a count and
a z-score: no library needed).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from modfit.errors import require
from modfit.result import RowDecision

MIN_COUNT = 5  # rows of a label that must carry a feature before its flagged share means anything
SELECTIONS = ("all", "greedy")


def text_features(text: str) -> frozenset[str]:
    """A text's lowercased whitespace tokens and its adjacent token pairs ("if you"), each once."""
    tokens = text.lower().split()
    return frozenset(tokens) | frozenset(f"{a} {b}" for a, b in pairwise(tokens))


@dataclass(frozen=True)
class FeatureEnrichment:
    """How much more often the rows of `label` carrying `feature` were flagged than that label's rows
    overall: `rows` carry it (n), `flagged` of them were flagged (k), `z` as in the module's docstring."""

    feature: str
    label: int
    z: float
    rows: int
    flagged: int


@dataclass(frozen=True)
class TriggerFeatures:
    """What the lever did: every row's decision after it, the rows it dropped (indices), and the spurious
    features it found, highest z first."""

    decisions: tuple[RowDecision, ...]
    dropped: tuple[int, ...]
    features: tuple[FeatureEnrichment, ...]


def enrichment(
    features: Sequence[frozenset[str]],
    labels: Sequence[int],
    flagged: Sequence[bool],
    min_count: int = MIN_COUNT,
) -> list[FeatureEnrichment]:
    """Every (feature, label) carried by at least `min_count` rows of that label, with its z, highest
    first; a label whose rows are all or none flagged has no z (p0 is 0 or 1) and is skipped."""
    carried: Counter[tuple[str, int]] = Counter()
    caught: Counter[tuple[str, int]] = Counter()
    for row_features, label, is_flagged in zip(features, labels, flagged, strict=True):
        for feature in row_features:
            carried[feature, label] += 1
            caught[feature, label] += is_flagged
    rows_of = Counter(labels)
    flagged_of = Counter(label for label, is_flagged in zip(labels, flagged, strict=True) if is_flagged)
    found = []
    for (feature, label), n in carried.items():
        p0 = flagged_of[label] / rows_of[label]
        if n < min_count or p0 in (0.0, 1.0):
            continue
        k = caught[feature, label]
        z = (k / n - p0) / math.sqrt(p0 * (1.0 - p0) / n)
        found.append(FeatureEnrichment(feature, label, z, n, k))
    return sorted(found, key=lambda f: (-f.z, f.label, f.feature))


def spurious_rows(
    features: Sequence[frozenset[str]],
    labels: Sequence[int],
    flagged: Sequence[bool],
    z_min: float,
    min_count: int = MIN_COUNT,
    select: str = "all",
) -> tuple[tuple[int, ...], tuple[FeatureEnrichment, ...]]:
    """The unflagged rows that carry a spurious feature (z ≥ `z_min`) of their own label, and those
    features: all at once, highest z first, or one at a time (`select`, the module's docstring)."""
    require(z_min > 0, f"trigger features z {z_min}: use a positive threshold, e.g. 8")
    require(select in SELECTIONS, f"trigger features select {select!r}: use {' or '.join(SELECTIONS)}")
    if select == "all":
        spurious = tuple(f for f in enrichment(features, labels, flagged, min_count) if f.z >= z_min)
    else:
        spurious = _one_at_a_time(features, labels, flagged, z_min, min_count)
    marked = {(f.feature, f.label) for f in spurious}
    rows = tuple(
        i
        for i, (row_features, label, is_flagged) in enumerate(zip(features, labels, flagged, strict=True))
        if not is_flagged and any((feature, label) in marked for feature in row_features)
    )
    return rows, spurious


def _one_at_a_time(
    features: Sequence[frozenset[str]],
    labels: Sequence[int],
    flagged: Sequence[bool],
    z_min: float,
    min_count: int,
) -> tuple[FeatureEnrichment, ...]:
    """The greedy selection: take the top feature, let the rows of its label carrying it leave, rescore."""
    left = list(range(len(labels)))
    taken: list[FeatureEnrichment] = []
    while left:
        found = enrichment(
            [features[i] for i in left], [labels[i] for i in left], [flagged[i] for i in left], min_count
        )
        if not found or found[0].z < z_min:
            break
        top = found[0]
        taken.append(top)
        left = [i for i in left if not (labels[i] == top.label and top.feature in features[i])]
    return tuple(taken)


def drop_trigger_rows(
    decisions: Sequence[RowDecision], z_min: float, min_count: int = MIN_COUNT, select: str = "all"
) -> TriggerFeatures:
    """The lever on a verdict: features learnt from the rows `decisions` flag, and every unflagged row
    carrying a spurious feature of its given label dropped and marked flagged (as `safe.drop_unsure`
    marks a row)."""
    dropped, spurious = spurious_rows(
        [text_features(d.text) for d in decisions],
        [d.label for d in decisions],
        [d.flagged for d in decisions],
        z_min,
        min_count,
        select,
    )
    chosen = set(dropped)
    updated = tuple(
        dataclasses.replace(d, flagged=True, action="dropped") if i in chosen else d
        for i, d in enumerate(decisions)
    )
    return TriggerFeatures(updated, dropped, spurious)
