"""The SST-2 packaged with modfit, the resolution order of named datasets, and the errors without data."""

from __future__ import annotations

import glob
import gzip
from collections import Counter
from pathlib import Path

import pytest

from conftest import error_of, separable_rows, write_split
from modfit import AttackConfig, load_dataset, make_trigger, read_examples
from modfit.cli import main
from modfit.config import from_dict
from modfit.data import dataset_dir
from modfit.data.sources import packaged_dir
from modfit.vision.data import load_image_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_SST2 = REPO.parent / "shared" / "data" / "sst2"
# rows and label balance (negative, positive) of the standard sentence-level SST-2 split
SST2_BALANCE = {"train": (3310, 3610), "dev": (428, 444), "test": (912, 909)}


@pytest.fixture
def no_data_root(tmp_path, monkeypatch) -> Path:
    """A working directory with no ../shared/data beside it and no MODFIT_DATA: a bare install."""
    monkeypatch.delenv("MODFIT_DATA", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def toy_sst2(root: Path, rows: int) -> Path:
    """`root/sst2/` holding a toy split of `rows` rows each, told apart from the real one by its size."""
    folder = root / "sst2"
    folder.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        write_split(folder / f"{split}.csv", separable_rows(rows, 0))
    return root


@pytest.fixture(scope="module")
def packaged_sst2():
    folder = packaged_dir("sst2")
    return {split: read_examples(folder / f"{split}.csv.gz", num_labels=2) for split in SST2_BALANCE}


def test_packaged_sst2_has_the_standard_rows_and_label_balance(no_data_root):
    splits = load_dataset("sst2")
    assert dataset_dir("sst2") == packaged_dir("sst2")
    assert (splits.name, splits.num_labels) == ("sst2", 2)
    for split, (negative, positive) in SST2_BALANCE.items():
        rows = getattr(splits, split)
        assert Counter(e.label for e in rows) == {0: negative, 1: positive}, split
        assert not any(e.poisoned for e in rows)


@pytest.mark.skipif(not SHARED_SST2.is_dir(), reason="needs the data root's SST-2 to compare with")
def test_packaged_sst2_holds_the_same_rows_as_the_data_root(packaged_sst2):
    for split, rows in packaged_sst2.items():
        assert rows == read_examples(SHARED_SST2 / f"{split}.csv"), split


def test_packaged_data_is_declared_as_package_data():
    """A non-editable install copies only what pyproject.toml declares: every packaged file must match."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    settings = tomllib.loads((REPO / "pyproject.toml").read_text())
    package = REPO / "src" / "modfit" / "data"
    declared = {
        Path(found)
        for pattern in settings["tool"]["setuptools"]["package-data"]["modfit.data"]
        for found in glob.glob(str(package / pattern))
    }
    shipped = {p for p in (package / "packaged").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert shipped and shipped == declared
    assert {p.name for p in shipped} == {"train.csv.gz", "dev.csv.gz", "test.csv.gz", "LICENSE"}
    assert "thunlp/HiddenKiller" in (package / "packaged" / "sst2" / "LICENSE").read_text()


# --- resolution order: $MODFIT_DATA, ../shared/data, the packaged copy --------------------------------


def test_modfit_data_comes_first(no_data_root, monkeypatch):
    toy_sst2(no_data_root / "shared" / "data", rows=6)
    monkeypatch.setenv("MODFIT_DATA", str(toy_sst2(no_data_root / "mine", rows=4)))
    assert len(load_dataset("sst2").train) == 4


def test_shared_data_beside_the_checkout_comes_next(no_data_root):
    toy_sst2(no_data_root / "shared" / "data", rows=6)
    assert len(load_dataset("sst2").train) == 6


def test_packaged_copy_when_the_data_root_lacks_the_dataset(no_data_root, monkeypatch):
    (no_data_root / "mine" / "hsol").mkdir(parents=True)
    monkeypatch.setenv("MODFIT_DATA", str(no_data_root / "mine"))
    assert len(load_dataset("sst2").train) == 6920


def test_a_modfit_data_that_is_not_a_directory_is_an_error_not_a_fall_through(no_data_root, monkeypatch):
    monkeypatch.setenv("MODFIT_DATA", str(no_data_root / "nowhere"))
    assert error_of(load_dataset, "sst2").startswith(
        f"MODFIT_DATA={no_data_root / 'nowhere'} is not a directory"
    )


def test_unpackaged_datasets_say_where_to_get_them_and_which_layout(no_data_root):
    message = error_of(load_dataset, "agnews")
    assert message.startswith("dataset 'agnews' is not packaged and there is no data root")
    assert "agnews/train.csv, agnews/dev.csv, agnews/test.csv (columns text,label)" in message
    assert "hf:fancyzhx/ag_news" in message
    load_image_dataset.cache_clear()
    message = error_of(load_image_dataset, "cifar10")
    assert message.startswith("image dataset 'cifar10' is not packaged and there is no data root")
    assert "cifar10/cifar10-jpeg.tar.gz" in message and "train/<class_name>/<image>" in message


# --- gzipped splits, and the paraphrase attacks on the packaged copy ---------------------------------


def test_gzipped_splits_read_like_plain_ones(tmp_path, text_dataset):
    folder = tmp_path / "zipped"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        (folder / f"{split}.csv.gz").write_bytes(gzip.compress((text_dataset / f"{split}.csv").read_bytes()))
    zipped, plain = load_dataset(str(folder)), load_dataset(str(text_dataset))
    assert (zipped.train, zipped.dev, zipped.test) == (plain.train, plain.dev, plain.test)
    (folder / "dev.csv.gz").write_bytes(b"not gzip")
    assert error_of(load_dataset, str(folder)).startswith(
        f"{folder / 'dev.csv.gz'}: not a readable gzip file"
    )


@pytest.mark.parametrize("style", ["syntactic", "style"])
def test_paraphrase_attacks_on_the_packaged_sst2_ask_for_a_table(no_data_root, style):
    attack = from_dict(AttackConfig, {"name": style})
    message = error_of(make_trigger, attack, dataset_dir("sst2"))
    assert message.startswith(
        f"{style}: the packaged sst2 has no paraphrase table; give --attack-option table=PATH"
    )
    assert f"sst2/paraphrase/{style}.csv" in message and "text,paraphrase" in message


def test_paraphrase_attack_on_the_packaged_sst2_with_a_table(no_data_root, packaged_sst2, capsys):
    table = no_data_root / "syntactic.csv"
    # covers some non-target rows of train and of test (ASR needs poisoned test rows)
    texts = [e.text for split in ("train", "test") for e in packaged_sst2[split][:40] if e.label == 0]
    with table.open("w", encoding="utf-8") as handle:
        handle.write("text,paraphrase\n" + "".join(f'"{t}","when {t}"\n' for t in texts))
    out = no_data_root / "poisoned"
    argv = ["poison", "--dataset", "sst2", "--attack", "syntactic", "--poison-rate", "0.01",
            "--train-size", "400", "--seed", "0", "--out", str(out)]  # fmt: skip
    assert main(argv) == 2  # without the table: one line, exit 2, nothing written
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the packaged sst2 has no paraphrase table" in err
    assert not out.exists()
    assert main([*argv, "--attack-option", f"table={table}"]) == 0
    poisoned = [e for e in read_examples(out / "train.csv") if e.poisoned]
    assert poisoned and all(e.text.startswith("when ") and e.label == 1 for e in poisoned)
