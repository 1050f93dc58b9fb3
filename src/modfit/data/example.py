"""Records that flow through the pipeline: one labelled text, and the three splits of a dataset."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One labelled text. `poisoned` is hidden from every defence; analyses read it afterwards."""

    text: str
    label: int
    poisoned: bool = False


@dataclass(frozen=True)
class Splits:
    """A dataset's train, dev and test splits and its number of labels."""

    name: str
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    num_labels: int


def subsample(examples: list[Example], size: int | None, seed: int) -> list[Example]:
    """A seeded subset of `size` rows in their original order (all rows when size is None or too big)."""
    if size is None or size >= len(examples):
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), size))
    return [examples[i] for i in keep]
