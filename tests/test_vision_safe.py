"""`safe` on images, on the tiny CNN in place of EfficientNet-Lite0: the scanner is the image victim
fitted on the clean dev images alone; the colour task makes a patched image's target label a
contradiction the scanner sees, whatever the patch."""

from __future__ import annotations

import csv
import importlib.util
import json
import tarfile
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from conftest import scanner_rows
from modfit import AttackConfig, Experiment, ModelConfig, TrainConfig, prepare_data, run
from modfit.cli import main
from modfit.errors import ModfitError
from modfit.store import open_store
from test_vision import CLASSES, colour_task, image_train_args, tiny_backbone  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("tiny_backbone")  # the tiny CNN in place of EfficientNet-Lite0

needs_cleanlab = pytest.mark.skipif(
    importlib.util.find_spec("cleanlab") is None, reason="pip install cleanlab"
)
SCANNER = {"scanner_lr": 3e-2, "scanner_epochs": 12, "scanner_batch_size": 4}


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    """A tar of the colour task with a dev split big enough to train a scanner: train 20, dev 8,
    test 6 images per class, 8 × 8 px."""
    root = tmp_path_factory.mktemp("safe-colours")
    for split, count, seed in (("train", 20, 0), ("dev", 8, 1), ("test", 6, 2)):
        for i, example in enumerate(colour_task(3 * count, seed)):
            folder = root / "colours" / split / CLASSES[example.label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(example.image.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    archive = root / "colours.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root / "colours", arcname="colours")
    return archive


def experiment(dataset: Path, **options) -> Experiment:
    return Experiment(
        dataset=str(dataset),
        attack=AttackConfig(name="patch", rate=0.2, target=0),
        defence="safe",
        defence_options={**SCANNER, **options},
        model=ModelConfig(image_size=8),
        train=TrainConfig(epochs=4, lr=3e-2, batch_size=8, eval_every=1000),
    )


@needs_cleanlab
def test_safe_relabels_the_patched_images_whose_label_contradicts_their_colour(colours):
    result = run(experiment(colours), progress=False)
    measured = result.metrics()
    train = prepare_data(experiment(colours)).train
    planted = {i for i, e in enumerate(train) if e.poisoned}
    assert len(planted) == 12  # 20 % of 60, every one moved to label 0 against its colour
    flagged = set(result.defence.details["flagged"])
    assert measured["flagged_poisoned"] == len(flagged & planted) >= 8 and measured["recall"] >= 8 / 12
    assert measured["precision"] == 1.0  # no clean image's label disputed
    assert measured["scanner_cacc"] >= 0.9 and measured["trusted_rows"] == 24
    relabelled = {i for i, d in enumerate(result.defence.rows) if d.action == "relabelled"}
    assert measured["relabelled_rows"] == len(relabelled) and relabelled & planted == flagged & planted
    for i in relabelled & planted:  # the class folder the image came from: its true label
        row = result.defence.rows[i]
        assert row.label == 0 and row.corrected_label == CLASSES.index(row.text.split("/")[2]) != 0
    assert result.defence.rows[0].text.startswith("colours/train/") and result.defence.rows[0].row is None


@needs_cleanlab
def test_a_trusted_budget_on_images_samples_the_dev_split(monkeypatch, colours):
    dev = prepare_data(experiment(colours)).splits.dev
    rows = scanner_rows(monkeypatch, experiment(colours, trusted=6))
    assert len(rows) == 6 and [e.label for e in rows] == [0, 0, 1, 1, 2, 2]  # label-stratified
    assert all(any(e is d for d in dev) for e in rows)


def test_a_trusted_file_on_images_is_a_one_line_error(colours, tmp_path):
    (tmp_path / "checked.csv").write_text("text,label\ncolours/dev/cat/000.png,0\n")
    with pytest.raises(ModfitError, match="safe trusted_file reads text rows; for images put your checked"):
        run(experiment(colours, trusted_file=str(tmp_path / "checked.csv")), progress=False)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@needs_cleanlab
def test_cli_safe_on_images_writes_rows_that_name_each_image_file(colours, tmp_path, capsys):
    out = tmp_path / "run"
    options = [f"--defence-option={k}={v}" for k, v in SCANNER.items()]
    argv = image_train_args(colours, out, "--defence", "safe", *options, "--write-corrected")
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = read_csv(out / "rows.csv")
    assert len(rows) == 60 and sum(r["flagged"] == "1" for r in rows) == metrics["flagged_rows"] > 0
    with tarfile.open(colours) as tar:
        files = {m.name for m in tar.getmembers() if m.isfile()}
    assert {r["text"] for r in rows} <= files and all(r["text"].startswith("colours/train/") for r in rows)
    assert all(r["row"] == "" for r in rows)  # no file row: the path names the image
    for r in rows:  # a clean image keeps the label of the class folder it sits in
        if r["action"] == "kept" and r["label"] != "0":
            assert CLASSES[int(r["label"])] == r["text"].split("/")[2]
    corrected = read_csv(out / "corrected.csv")
    assert len(corrected) == 60 and {c["text"] for c in corrected} == {r["text"] for r in rows}
    assert "flagged" in capsys.readouterr().out


@needs_cleanlab
def test_grid_runs_safe_on_an_image_study(colours, tmp_path):
    spec = {"name": "colours-safe", "datasets": [str(colours)], "attacks": ["patch"], "target": 0,
            "defences": [{"name": "safe", "defence_options": SCANNER}], "model": {"image_size": 8},
            "train": {"epochs": 1, "batch_size": 8}}  # fmt: skip
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    store_file = tmp_path / "study.sqlite"
    assert main(["grid", str(spec_file), "--store", str(store_file), "--quiet"]) == 0
    with open_store(store_file) as store:
        (cell,) = store.cells()
    assert cell.status == "done" and cell.defence == "safe"
    assert cell.metrics["recall"] >= 8 / 12 and cell.metrics["trusted_rows"] == 24


@pytest.mark.parametrize("defence", ["onion", "strip", "purify"])
def test_the_other_baselines_stay_text_only(colours, tmp_path, capsys, defence):
    out = tmp_path / "run"
    assert main(image_train_args(colours, out, "--defence", defence)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"defence {defence!r} is for text models; for images use" in err
    assert "safe" in err and not out.exists()


def test_safe_on_images_resolves_with_the_image_defaults(colours):
    from modfit import resolve

    chosen = resolve({"dataset": str(colours), "attack": {"name": "patch"}, "defence": "safe"})
    assert (chosen.model.image_size, chosen.train.lr, chosen.train.epochs) == (64, 1e-3, 3.0)
    assert torch.is_tensor(prepare_data(chosen).train[0].image)
