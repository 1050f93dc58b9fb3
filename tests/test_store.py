"""The SQLite study store: statuses, round trips, WAL reads during writes, and clear errors."""

from __future__ import annotations

import math

import numpy
import pytest

from modfit.config import AttackConfig, Experiment
from modfit.errors import ModfitError
from modfit.grid import Cell, Coordinates
from modfit.representations import RepresentationSnapshot
from modfit.store import CellOutcome, exclusive_writer, open_store


def make_cell(seed: int = 0, defence: str = "none") -> Cell:
    experiment = Experiment(dataset="sst2", attack=AttackConfig(name="badnet"), defence=defence, seed=seed)
    return Cell(Coordinates("sst2", "badnet", defence, 0.1, "dirty", seed), experiment)


def outcome(cacc: float, asr: float = math.nan, **extra) -> CellOutcome:
    metrics = {"cacc": cacc, "asr": asr, "asr_floor": 0.1}
    return CellOutcome(metrics, [{"step": 0, "cacc": cacc}], trainable_params=123, seconds=4.5, **extra)


def test_cells_move_from_pending_to_done_or_failed(tmp_path):
    cells = [make_cell(0), make_cell(1)]
    with open_store(tmp_path / "s.sqlite", create=True) as store:
        summary = store.sync(cells)
        assert (summary.cells, summary.distinct, summary.new) == (2, 2, 2)
        assert set(store.statuses().values()) == {"pending"}
        assert store.claim(cells[0].hash)
        store.finish(cells[0].hash, outcome(0.9))
        assert not store.claim(cells[0].hash)  # done cells are not claimed again
        assert store.claim(cells[1].hash)
        store.fail(cells[1].hash, "RuntimeError: out of memory", "Traceback ...")
        assert store.sync(cells).new == 0
        done, failed = store.cells()
    assert (done.status, done.metrics["cacc"], done.metrics["asr"], done.trainable_params) == (
        "done",
        0.9,
        None,
        123,
    )
    assert done.config["experiment"]["seed"] == 0 and done.history == [{"step": 0, "cacc": 0.9}]
    assert (failed.status, failed.error, failed.attempts) == ("failed", "RuntimeError: out of memory", 1)


def test_representation_snapshots_round_trip_in_half_precision(tmp_path):
    cell = make_cell()
    vectors = numpy.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    snapshot = RepresentationSnapshot(
        3, vectors, [0, 1, 0, 1, 1, 1], [False, False, False, False, True, True]
    )
    with open_store(tmp_path / "s.sqlite", create=True) as store:
        store.sync([cell])
        store.claim(cell.hash)
        store.finish(cell.hash, outcome(0.8, snapshots=[snapshot]))
        (back,) = store.snapshots(cell.hash)
        assert store.cells()[0].has_representations
    assert back.step == 3 and back.labels == snapshot.labels and back.poisoned == snapshot.poisoned
    assert numpy.allclose(back.vectors, vectors, atol=1e-2)


def test_a_reader_sees_committed_cells_while_a_writer_holds_a_transaction(tmp_path):
    path = tmp_path / "s.sqlite"
    cell = make_cell()
    with open_store(path, create=True) as writer:
        assert writer.connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        writer.sync([cell])
        with writer.transaction() as db:  # a grid in the middle of a write
            db.execute("UPDATE cells SET status = 'running'")
            with open_store(path) as reader:
                assert [c.status for c in reader.cells()] == ["pending"]


def test_a_coordinate_whose_config_changed_points_at_the_new_cell(tmp_path):
    old, new = make_cell(0, "none"), make_cell(0, "none")
    new = Cell(new.coordinates, Experiment(dataset="sst2", train_size=200))
    with open_store(tmp_path / "s.sqlite", create=True) as store:
        store.sync([old])
        store.sync([new])
        (listed,) = store.cells()
    assert listed.hash == new.hash


def test_opening_what_is_not_a_store_is_one_line(tmp_path):
    with pytest.raises(ModfitError, match="no such study store"):
        open_store(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database at all, just text " * 100)
    with pytest.raises(ModfitError, match="not a modfit study store"):
        open_store(junk)


def test_one_grid_at_a_time_runs_a_store(tmp_path):
    path = tmp_path / "s.sqlite"
    with exclusive_writer(path):
        with pytest.raises(ModfitError, match=r"a grid is already running on this store \(pid \d+\)"):
            with exclusive_writer(path):
                pass
    with exclusive_writer(path):  # released when the first grid ends
        pass
