"""Image datasets in ImageFolder layout (`split/class_name/file`), from a folder or a tar of one.

`cifar10` resolves to `<data root>/cifar10/cifar10-jpeg.tar.gz`. Classes are the sorted folder
names of the training split (for CIFAR-10 that is the standard label order). A dataset without a
`dev` (or `val`) split gets one held out of `train`: a fixed seeded 10 % (at most 5,000 images), the
same for every run, so that the runs of a study share their dev rows.
"""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy
import torch

from modfit.data.example import Splits
from modfit.data.sources import find_data_root
from modfit.errors import ModfitError

NAMED_IMAGE_DATASETS = {"cifar10": "cifar10/cifar10-jpeg.tar.gz"}
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEV_NAMES = ("dev", "val")
DEV_SHARE, DEV_MAX, DEV_SEED = 0.1, 5000, 0


@dataclass(frozen=True, eq=False)
class ImageExample:
    """One labelled image: a uint8 tensor (3 × H × W). `poisoned` is hidden from every defence.

    `path` is where the file sits in the user's folder or tar (`train/cat/003.png`, with the tar's top
    folder if it has one), None for images built in Python; it travels through subsampling, poisoning
    and relabelling, so that a defence's verdict (rows.csv) names images the user can find."""

    image: torch.Tensor
    label: int
    poisoned: bool = False
    path: str | None = None
    row: ClassVar[None] = None  # no file row: `path` names an image

    @property
    def content(self) -> torch.Tensor:
        return self.image

    @property
    def text(self) -> str:
        """What a row report shows where a text row shows its text: the image's path."""
        return self.path or ""

    def triggered(self, content: Any, label: int) -> ImageExample:
        return replace(self, image=content, label=label, poisoned=True)


def is_image_dataset(name: str) -> bool:
    """A named image dataset, a tar, or a folder whose `train/` holds class folders."""
    if name in NAMED_IMAGE_DATASETS or name.endswith(TAR_SUFFIXES):
        return True
    train = Path(name) / "train"
    return train.is_dir() and any(child.is_dir() for child in train.iterdir())


def dataset_kind(name: str) -> str:
    """`image` or `text`: which records, attacks, victim and defence presets a dataset takes."""
    return "image" if is_image_dataset(name) else "text"


IMAGE_LAYOUT = "a tar (or folder) of train/<class_name>/<image> and test/<class_name>/<image>"


def image_dataset_path(name: str) -> Path:
    """Where an image dataset lives; a named one only under the data root (none is packaged)."""
    if name in NAMED_IMAGE_DATASETS:
        root = find_data_root()
        if root is None:
            raise ModfitError(
                f"image dataset {name!r} is not packaged and there is no data root: set MODFIT_DATA to a "
                f"folder holding {NAMED_IMAGE_DATASETS[name]}, {IMAGE_LAYOUT} (docs/your-own-data.md, 'Data')"
            )
        return root / NAMED_IMAGE_DATASETS[name]
    return Path(name)


def _decode(data: bytes, where: str) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise ModfitError(f"{where}: not a readable image ({err}); remove the file or replace it") from None
    return torch.from_numpy(numpy.array(rgb)).permute(2, 0, 1).contiguous()  # 3 × H × W, uint8


def _files(path: Path) -> Iterator[tuple[tuple[str, ...], bytes, str]]:
    """(path parts inside the dataset, bytes, where) for each image file of a folder or a tar."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                yield file.relative_to(path).parts, file.read_bytes(), str(file)
        return
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                    parts = Path(member.name).parts
                    yield parts, archive.extractfile(member).read(), f"{path}:{member.name}"
    except (tarfile.TarError, OSError) as err:
        raise ModfitError(
            f"{path}: not a readable tar ({err}); give a .tar/.tar.gz of split/class/file"
        ) from None


@lru_cache(maxsize=2)
def load_image_dataset(name: str) -> Splits:
    """The splits of an ImageFolder-layout folder or tar (decoded once per process and path)."""
    path = image_dataset_path(name)
    if not path.exists():
        hint = f"add {IMAGE_LAYOUT} there" if name in NAMED_IMAGE_DATASETS else "check the path"
        raise ModfitError(f"image dataset {name!r}: {path} does not exist; {hint}")
    found: dict[str, list[tuple[str, torch.Tensor, str]]] = {}
    for parts, data, where in _files(path):
        if len(parts) < 3:
            raise ModfitError(
                f"{where}: images must sit at split/class_name/file; move it into a class folder"
            )
        split, label_name = parts[-3], parts[-2]
        found.setdefault(split, []).append((label_name, _decode(data, where), "/".join(parts)))
    for split in ("train", "test"):
        if split not in found:
            raise ModfitError(f"{path}: split {split!r} is missing; add {split}/<class_name>/<image files>")
    classes = sorted({label for label, _, _ in found["train"]})
    index = {label: i for i, label in enumerate(classes)}

    def examples(split: str) -> list[ImageExample]:
        unknown = sorted({label for label, _, _ in found[split]} - set(index))
        if unknown:
            raise ModfitError(
                f"{path}: class {unknown[0]!r} of {split}/ has no train/ folder; add it or remove it"
            )
        return [ImageExample(image, index[label], path=file) for label, image, file in found[split]]

    train = examples("train")
    dev_split = next((s for s in DEV_NAMES if s in found), None)
    if dev_split is not None:
        dev = examples(dev_split)
    else:
        held = set(
            random.Random(DEV_SEED).sample(range(len(train)), min(DEV_MAX, round(DEV_SHARE * len(train))))
        )
        dev = [e for i, e in enumerate(train) if i in held]
        train = [e for i, e in enumerate(train) if i not in held]
    return Splits(name, train, dev, examples("test"), max(2, len(classes)), kind="image")
