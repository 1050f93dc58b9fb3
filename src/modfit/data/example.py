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
