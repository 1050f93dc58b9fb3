"""A report from a small hand-filled store: its tables hold the stored numbers, its images are PNGs."""

from __future__ import annotations

import re
import shutil

import numpy
import pytest

from modfit.cli import main
from modfit.config import AttackConfig, Experiment
from modfit.grid import Cell, Coordinates
from modfit.report.tables import main_table, percent, spread
from modfit.representations import RepresentationSnapshot
from modfit.store import CellOutcome, StoredCell, open_store

PNG = b"\x89PNG\r\n\x1a\n"

# (defence, rate, seed) → (cacc, asr)
NUMBERS = {
    ("none", 0.1, 0): (0.90, 0.98),
    ("none", 0.1, 1): (0.92, 1.00),
    ("fewer-epochs", 0.1, 0): (0.88, 0.20),
    ("fewer-epochs", 0.1, 1): (0.86, 0.30),
    ("none", 0.2, 0): (0.89, 1.00),
    ("none", 0.2, 1): (0.91, 1.00),
    ("fewer-epochs", 0.2, 0): (0.87, 0.60),
    ("fewer-epochs", 0.2, 1): (0.85, 0.70),
}


def history(cacc: float, asr: float) -> list[dict]:
    return [
        {"step": 0, "epoch": 0.0, "train_loss": None, "dev_acc": 0.5, "cacc": 0.5, "asr": 0.5, "asr_floor": 0.5,
         "seconds": 0.0},
        {"step": 10, "epoch": 1.0, "train_loss": 0.3, "dev_acc": cacc, "cacc": cacc, "asr": asr, "asr_floor": 0.1,
         "seconds": 5.0},
    ]  # fmt: skip


def snapshot(step: int) -> RepresentationSnapshot:
    vectors = numpy.random.default_rng(step).normal(size=(12, 8)).astype("float32")
    return RepresentationSnapshot(step, vectors, [i % 2 for i in range(12)], [i < 4 for i in range(12)])


@pytest.fixture
def small_store(tmp_path):
    path = tmp_path / "study.sqlite"
    with open_store(path, create=True) as store:
        store.set_meta("name", "small")
        cells = []
        for defence, rate, seed in NUMBERS:
            attack = AttackConfig(name="badnet", rate=rate)
            experiment = Experiment(dataset="sst2", attack=attack, defence=defence, seed=seed)
            cells.append(Cell(Coordinates("sst2", "badnet", defence, rate, "dirty", seed), experiment))
        failing = Cell(
            Coordinates("sst2", "style", "none", 0.1, "dirty", 0),
            Experiment(dataset="sst2", attack=AttackConfig(name="style"), seed=0),
        )
        store.sync([*cells, failing])
        for cell, (cacc, asr) in zip(cells, NUMBERS.values(), strict=True):
            store.claim(cell.hash)
            maps = [snapshot(0), snapshot(10)] if cell is cells[0] else []
            metrics = {"cacc": cacc, "asr": asr, "asr_floor": 0.1}
            store.finish(cell.hash, CellOutcome(metrics, history(cacc, asr), 22_370, 60.0, maps))
        store.claim(failing.hash)
        store.fail(failing.hash, "ModfitError: no paraphrase table")
    return path


def test_the_report_tables_hold_the_stored_numbers(small_store, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(small_store), "--out", str(out), "--projection", "pca"]) == 0
    markdown = (out / "report.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| none |"))
    # rate 10 %, undefended: CACC (0.90, 0.92), ASR (0.98, 1.00), floor 0.1, then the failed style cell
    assert row.startswith("| none | 91.0 ± 1.4 | 99.0 ± 1.4 | 10.0 ± 0.0 | – | – | – | 22,370 | 60 s |")
    fewer = next(line for line in markdown.splitlines() if line.startswith("| fewer-epochs |"))
    assert "| 87.0 ± 1.4 | **25.0 ± 7.1** |" in fewer  # the lowest ASR of the column is marked
    assert "| **65.0 ± 7.1** |" in markdown  # rate 20 %
    assert "ModfitError: no paraphrase table" in markdown and "1 failed" in markdown
    html = (out / "report.html").read_text()
    assert "<strong>25.0 ± 7.1</strong>" in html and "91.0 ± 1.4" in html


def test_the_report_images_are_pngs_embedded_in_the_html(small_store, tmp_path):
    out = tmp_path / "report"
    main(["report", str(small_store), "--out", str(out), "--projection", "pca"])
    markdown = (out / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", markdown)
    names = {p.name for p in out.glob("*.png")}
    assert set(linked) == names
    assert any(n.startswith("dynamics-") for n in names) and any(n.startswith("rates-") for n in names)
    assert any(n.startswith("map-") for n in names)
    for name in names:
        assert (out / name).read_bytes().startswith(PNG)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(names) and ".png" not in html


def test_a_missing_store_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "r")]) == 2
    assert "no such study store" in capsys.readouterr().err


def test_spread_and_percent():
    assert percent(spread([0.9, 0.92])) == "91.0 ± 1.4"
    assert percent(spread([0.5, None, float("nan")]), expected=3) == "50.0 (n=1)"
    assert percent(spread([])) == "–"


def test_several_stores_make_one_report(small_store, tmp_path):
    def cell(attack: str, defence: str) -> Cell:
        experiment = Experiment(
            dataset="sst2", attack=AttackConfig(name=attack, rate=0.1), defence=defence, seed=0
        )
        return Cell(Coordinates("sst2", attack, defence, 0.1, "dirty", 0), experiment)

    other = tmp_path / "other.sqlite"
    with open_store(other, create=True) as store:
        store.set_meta("name", "other")
        # a new defence; the first store's undefended seed-0 cell again (listed once); the cell that
        # failed in the first store, done here (the done one is reported)
        numbers = {
            ("badnet", "bki"): (0.8, 0.15),
            ("badnet", "none"): (0.90, 0.98),
            ("style", "none"): (0.7, 0.5),
        }
        cells = {key: cell(*key) for key in numbers}
        store.sync(list(cells.values()))
        for key, (cacc, asr) in numbers.items():
            store.claim(cells[key].hash)
            outcome = CellOutcome(
                {"cacc": cacc, "asr": asr, "asr_floor": 0.1}, history(cacc, asr), 22_370, 90.0, []
            )
            store.finish(cells[key].hash, outcome)
    with open_store(small_store) as first:
        assert cells["badnet", "none"].hash in {c.hash for c in first.cells()}
    out = tmp_path / "report"
    assert main(["report", str(small_store), str(other), "--out", str(out), "--projection", "pca"]) == 0
    markdown = (out / "report.md").read_text()
    assert "Study: small + other" in markdown
    bki = next(line for line in markdown.splitlines() if line.startswith("| bki |"))
    assert bki.startswith("| bki | 80.0 (n=1) | **15.0 (n=1)** |")  # beside the first store's defences
    assert any(line.startswith("| fewer-epochs |") for line in markdown.splitlines())
    none = next(line for line in markdown.splitlines() if line.startswith("| none |"))
    # badnet: seeds 0 and 1 (seed 0 not twice); style: the done cell, not the failed one
    assert none.startswith("| none | 91.0 ± 1.4 | 99.0 ± 1.4 | 10.0 ± 0.0 | 70.0 (n=1) | **50.0 (n=1)** |")
    assert "ModfitError: no paraphrase table" not in markdown


def test_parts_of_one_study_name_it_once(small_store, tmp_path):
    with open_store(small_store) as store:
        store.set_meta("spec", "name: small-spec-text")
    part = tmp_path / "part.sqlite"
    shutil.copy(small_store, part)
    out = tmp_path / "report"
    assert main(["report", str(small_store), str(part), "--out", str(out), "--projection", "pca"]) == 0
    markdown = (out / "report.md").read_text()
    assert "Study: small\n" in markdown and "small + small" not in markdown
    assert markdown.count("small-spec-text") == 1


def test_only_reports_the_chosen_cells_and_names_their_stores(small_store, tmp_path, capsys):
    """A study's baseline taken from another study's store: `--only` keeps the wanted cells, and a
    store that contributes none is not named."""
    other = tmp_path / "other.sqlite"
    with open_store(other, create=True) as store:
        store.set_meta("name", "other")
        experiment = Experiment(dataset="sst2", attack=AttackConfig(name="badnet", rate=0.1), defence="bki")
        bki = Cell(Coordinates("sst2", "badnet", "bki", 0.1, "dirty", 0), experiment)
        store.sync([bki])
        store.claim(bki.hash)
        store.finish(bki.hash, CellOutcome({"cacc": 0.8, "asr": 0.15, "asr_floor": 0.1}, [], 5, 9.0, []))
    out = tmp_path / "report"
    argv = ["report", str(small_store), str(other), "--out", str(out), "--projection", "pca"]
    assert main([*argv, "--only", "defence=none", "--only", "rate=0.1"]) == 0
    markdown = (out / "report.md").read_text()
    assert "Study: small\n" in markdown
    lines = markdown.splitlines()
    assert any(line.startswith("| none | 91.0 ± 1.4 | **99.0 ± 1.4** |") for line in lines)
    assert not any(line.startswith(("| bki |", "| fewer-epochs |")) for line in lines)
    assert "rate 20%" not in markdown
    assert main([*argv, "--only", "defence=purify"]) == 2
    assert "no cell in" in capsys.readouterr().err


def test_a_floor_near_one_is_marked_no_task():
    def cell(defence: str, floor: float) -> StoredCell:
        return StoredCell(
            hash=defence, dataset="sst2", attack="badnet", defence=defence, rate=0.1, mode="dirty", seed=0,
            config={}, status="done", attempts=1, error=None, note=None,
            metrics={"cacc": 0.5, "asr": 0.99, "asr_floor": floor}, history=[], trainable_params=1,
            seconds=1.0, has_representations=False,
        )  # fmt: skip

    table = main_table([cell("none", 0.3), cell("lower-lr", 0.95)])
    floors = {row[0].text: row[3].text for row in table.rows}
    assert floors == {"none": "30.0", "lower-lr": "95.0 (no task)"}
    assert "(no task)" in table.caption
