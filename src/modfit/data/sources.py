"""Where a named dataset lives: under the data root, else in the copy packaged with modfit.

The order is `$MODFIT_DATA`, then `../shared/data` relative to the working directory, then the packaged
copy. Only SST-2 is packaged (its three splits, gzipped, about 0.4 MB, with their licence beside them in
`modfit/data/packaged/sst2/`): it is all the main job (`modfit demo`) needs, so a bare install runs it.
HSOL, AG News, CIFAR-10 and the paraphrase tables come from a data root (docs/your-own-data.md, "Data").
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from modfit.errors import ModfitError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

NAMED_DATASETS = {"sst2": 2, "hsol": 2, "agnews": 4}
# label names by label number, for the models that ship (`id2label`); other datasets: LABEL_0, ...
LABEL_NAMES = {
    "sst2": ("negative", "positive"),
    "hsol": ("neither", "hate-or-offensive"),
    "agnews": ("World", "Sports", "Business", "Sci/Tech"),
}
PACKAGED_DATASETS = ("sst2",)
# where a user who is online gets the rows of a dataset that is not packaged (docs/your-own-data.md, "Data")
PUBLIC_SOURCES = {"hsol": "hf:tdavidson/hate_speech_offensive", "agnews": "hf:fancyzhx/ag_news"}


def label_names(dataset: str | None, num_labels: int) -> list[str]:
    """The dataset's label names where known, else `LABEL_i` (transformers' own default names)."""
    known = LABEL_NAMES.get(dataset)
    if known is not None and len(known) == num_labels:
        return list(known)
    return [f"LABEL_{i}" for i in range(num_labels)]


def find_data_root() -> Path | None:
    """`$MODFIT_DATA`, else `../shared/data` relative to the working directory, else None.

    A `MODFIT_DATA` that is not a directory is an error, not a fall-through: a typo must not quietly
    swap the data a study reads."""
    env = os.environ.get("MODFIT_DATA")
    if env:
        root = Path(env)
        if not root.is_dir():
            raise ModfitError(f"MODFIT_DATA={env} is not a directory: point it at the folder holding sst2/")
        return root
    fallback = Path("..") / "shared" / "data"
    return fallback if fallback.is_dir() else None


def data_root() -> Path:
    """The data root; an error that says how to give one when there is none."""
    root = find_data_root()
    if root is None:
        raise ModfitError(
            "no data root: set MODFIT_DATA to the folder holding sst2/, hsol/ and agnews/ "
            "(or run from a checkout with ../shared/data beside it)"
        )
    return root


def packaged_dir(name: str) -> Traversable | None:
    """The folder of the packaged copy of `name` (read through importlib.resources), or None."""
    if name not in PACKAGED_DATASETS:
        return None
    return files("modfit.data") / "packaged" / name


def is_packaged(folder: object) -> bool:
    """Whether `folder` is the packaged copy of a dataset (it has no paraphrase tables)."""
    return any(folder == packaged_dir(name) for name in PACKAGED_DATASETS)


def named_dataset_dir(name: str) -> Path | Traversable:
    """`<data root>/<name>` where it exists, else the packaged copy, else a one-line error saying
    where to get the dataset and which layout to give it."""
    root = find_data_root()
    if root is not None and (root / name).is_dir():
        return root / name
    packaged = packaged_dir(name)
    if packaged is not None:
        return packaged
    layout = f"{name}/train.csv, {name}/dev.csv, {name}/test.csv (columns text,label)"
    source = f"; docs/your-own-data.md ('Data') builds them from {PUBLIC_SOURCES[name]}" if name in PUBLIC_SOURCES else ""
    if root is None:
        raise ModfitError(
            f"dataset {name!r} is not packaged and there is no data root: "
            f"set MODFIT_DATA to a folder holding {layout}{source}"
        )
    raise ModfitError(f"dataset {name!r} is not under {root}: add {layout} there{source}")
