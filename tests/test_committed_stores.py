"""The grid stores committed under benchmarks/ keep their cells: the hashing of today's
`Cell.config()` reproduces every stored cell's hash from its stored config, and re-deriving a study
from its committed spec finds every cell it ran under the same hash — no new cell to run. Each store
is copied to a temporary folder and opened read-only."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import astuple
from pathlib import Path

import pytest
import yaml

from modfit.baselines.safe import SafeOptions
from modfit.config import Experiment, from_dict
from modfit.defences import base_defence
from modfit.experiment import resolve
from modfit.grid import expand, parse_spec
from modfit.grid.cells import ADDED_LATER, OPTIONS_BEFORE, Cell, Coordinates
from modfit.representations import RepresentationOptions

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
STORES = sorted(BENCHMARKS.rglob("*.sqlite"))


def read_only_copy(store: Path, tmp_path: Path) -> sqlite3.Connection:
    copy = tmp_path / store.name
    shutil.copyfile(store, copy)
    return sqlite3.connect(f"file:{copy}?mode=ro", uri=True)


def rebuilt(config: dict) -> Cell:
    """The cell a stored config describes; a setting left out of the hash was at its ADDED_LATER value,
    and a defence option left out at its OPTIONS_BEFORE value."""
    experiment = config["experiment"]
    for (*parents, key), value in ADDED_LATER.items():
        holder = experiment
        for parent in parents[:2]:
            holder = holder[parent]
        if parents[:2] == ["tuning", "options"]:
            continue  # a method's options are stored as written: an absent option ran at its earlier value
        holder.setdefault(key, value)
    for (defence, key), before in OPTIONS_BEFORE.items():
        if base_defence(experiment["defence"]) == defence:
            experiment["defence_options"] = {key: before, **experiment["defence_options"]}
    maps = config.get("representations")
    where = Coordinates("-", "-", "-", 0.0, "dirty", 0)  # not part of the hash
    return Cell(
        where, from_dict(Experiment, experiment), from_dict(RepresentationOptions, maps) if maps else None
    )


def test_there_are_committed_stores():
    assert any(store.name == "safe_clean_baseline.sqlite" for store in STORES)


@pytest.mark.parametrize("store", STORES, ids=lambda p: str(p.relative_to(BENCHMARKS)))
def test_every_stored_cell_keeps_its_hash(store, tmp_path):
    with read_only_copy(store, tmp_path) as db:
        rows = db.execute("SELECT hash, config FROM cells").fetchall()
    assert rows
    changed = [digest for digest, config in rows if rebuilt(json.loads(config)).hash != digest]
    assert not changed, f"{len(changed)} of {len(rows)} cells would get a new hash"


def committed_spec(name: str) -> Path:
    """The spec file under benchmarks/ whose study is `name` (found by name, wherever it lives)."""
    specs = [
        p for p in BENCHMARKS.rglob("*.yaml") if (yaml.safe_load(p.read_text()) or {}).get("name") == name
    ]
    assert len(specs) == 1, f"{len(specs)} committed specs name the study {name!r}"
    return specs[0]


# The stores whose spec fixes every size (no --train-size on the command line), so that re-deriving the
# committed spec must find each stored cell under its stored hash: a preset that changed since (issue 26's
# recipe) is pinned back in the spec.
RESUMABLE = [
    "safe_clean_baseline.sqlite", "paper_table.sqlite", "authors_recipe.sqlite", "safe_budget.sqlite",
    "safe_heavy.sqlite", "safe_heavy_target1_hsol.sqlite", "safe_heavy_target1_sst2.sqlite",
    "safe_dose.sqlite",
]  # fmt: skip


@pytest.mark.parametrize("store", RESUMABLE)
def test_the_committed_spec_finds_every_stored_cell_under_its_hash(store, tmp_path):
    (path,) = BENCHMARKS.rglob(store)
    with read_only_copy(path, tmp_path) as db:
        name = dict(db.execute("SELECT key, value FROM meta"))["name"]
        where = {tuple(row[:6]): row[6] for row in db.execute(
            "SELECT dataset, attack, defence, rate, mode, seed, hash FROM coordinates")}  # fmt: skip
        status = dict(db.execute("SELECT hash, status FROM cells"))
    spec = committed_spec(name)
    cells = expand(parse_spec(yaml.safe_load(spec.read_text()), name))
    derived = {astuple(cell.coordinates): cell.hash for cell in cells}
    assert set(where) <= set(derived)
    assert {k: derived[k] for k in where} == where
    if name == "safe_clean_baseline":  # complete; the paper table is not
        assert all(status[where[k]] == "done" for k in where)


def test_a_changed_option_default_makes_a_new_cell_and_the_earlier_value_keeps_its_hash():
    where = Coordinates("sst2", "badnet", "safe", 0.1, "dirty", 0)

    def cell(options: dict) -> Cell:
        return Cell(where, resolve({"defence": "safe", "defence_options": options}))

    listed = {key: before for (defence, key), before in OPTIONS_BEFORE.items() if defence == "safe"}
    added = {key: before for key, before in listed.items() if before == getattr(SafeOptions(), key)}
    changed = {key: before for key, before in listed.items() if key not in added}
    present = {key: getattr(SafeOptions(), key) for key in changed}
    assert set(changed) == {"scanner_lr", "feature_z"} and set(added) == {"feature_select"}
    assert cell(added).hash == cell({}).hash  # an option added at its earlier value, written out
    assert cell({}).hash == cell(present).hash  # the present defaults, written in
    assert cell({}).config()["experiment"]["defence_options"] == present
    for key, before in changed.items():  # one option pinned to its earlier value leaves the hash
        assert cell({key: before}).hash != cell({}).hash
        assert cell({key: before}).config()["experiment"]["defence_options"] == {
            k: v for k, v in present.items() if k != key
        }
    assert "defence_options" not in cell(changed).config()["experiment"]  # as stored before both
