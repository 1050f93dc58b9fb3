"""Records that flow through the pipeline: one labelled text, and the three splits of a dataset.

Every record (`Example` here, `modfit.vision.ImageExample` for images) exposes its input as `content`
and makes its triggered copy with `triggered`, so poisoning is written once for every modality.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Example:
    """One labelled text. `poisoned` is hidden from every defence; analyses read it afterwards.

    `row` is where the text sits in the user's file, as the loaders count it (`modfit.data.loaders`:
    the spreadsheet row of a CSV/TSV, header = 1; the line of a JSONL file; a hub split's 0-based
    index), or None for rows built in Python. It travels through subsampling, poisoning and relabelling
    (`dataclasses.replace` keeps it), so that a defence's verdict names rows the user can find; it is
    not part of a row's identity (equality and hash ignore it)."""

    text: str
    label: int
    poisoned: bool = False
    row: int | None = field(default=None, compare=False)

    @property
    def content(self) -> str:
        return self.text

    def triggered(self, content: Any, label: int) -> Example:
        """This row with a trigger applied (`content`) and the label the attack gives it."""
        return replace(self, text=content, label=label, poisoned=True)


@dataclass(frozen=True)
class Splits:
    """A dataset's train, dev and test splits, its number of labels and its `kind` (text or image)."""

    name: str
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    num_labels: int
    kind: str = "text"


def subsample(examples: list[Example], size: int | None, seed: int) -> list[Example]:
    """A seeded subset of `size` rows in their original order (all rows when size is None or too big)."""
    if size is None or size >= len(examples):
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), size))
    return [examples[i] for i in keep]


def stratified_sample(examples: list[Example], size: int, seed: int) -> list[Example]:
    """A seeded subset of `size` rows whose labels keep the split's proportions (largest remainder,
    every label at least once where `size` allows), in their original order; all rows when `size`
    is at least their number. Used where a few rows must stand for a split, e.g. a trusted budget."""
    if size >= len(examples):
        return list(examples)
    by_label: dict[int, list[int]] = {}
    for index, example in enumerate(examples):
        by_label.setdefault(example.label, []).append(index)
    shares = {label: size * len(rows) / len(examples) for label, rows in sorted(by_label.items())}
    counts = {label: int(share) for label, share in shares.items()}
    by_remainder = sorted(shares, key=lambda label: counts[label] - shares[label])  # largest first
    for label in by_remainder[: size - sum(counts.values())]:
        counts[label] += 1
    missing = [label for label, count in counts.items() if count == 0]
    for label in missing if size >= len(counts) else []:
        counts[max(counts, key=counts.get)] -= 1  # every label stays represented, at the largest one's cost
        counts[label] = 1
    rng = random.Random(seed)
    keep = sorted(i for label, rows in by_label.items() for i in rng.sample(rows, counts[label]))
    return [examples[i] for i in keep]
