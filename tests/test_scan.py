"""`modfit scan` and `--defence purify` on a tiny BERT and a toy dataset with a planted BadNet trigger
("cf", dirty labels): the ranking finds the poisoned rows without reading their marks, erasing the marks
changes nothing, and purify retrains on exactly the rows it kept."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import pytest
import torch

import modfit.baselines.base
from conftest import NEGATIVE, POSITIVE, save_tiny_model, separable_rows, write_split
from modfit import AttackConfig, Experiment, ModelConfig, TrainConfig, prepare_data, run
from modfit.cli import main
from modfit.errors import ModfitError
from modfit.metrics import auroc
from modfit.report.detection import detection_table
from modfit.scan import detection, scan
from modfit.store import StoredCell
from modfit.suspicion import Cut, ranking
from modfit.training_run import DEFAULT_EVAL_POINTS, RULE_EVAL_POINTS


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan-toy")
    for split, count, seed in (("train", 160, 0), ("dev", 32, 1), ("test", 32, 2)):
        write_split(folder / f"{split}.csv", separable_rows(count, seed))
    return folder


@pytest.fixture(scope="module")
def sentiment_bert(tmp_path_factory):
    """The tiny BERT with a sentiment direction planted in its word embeddings, so that — as with a
    pre-trained model — the task is learned in a few steps and the trigger only later: a random tiny
    model learns the trigger word as fast as the sentiment words and has no moderate-fitting stage."""
    from transformers import AutoModel, AutoTokenizer

    folder = save_tiny_model(tmp_path_factory.mktemp("sentiment-bert"))
    model, tokenizer = AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    direction = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for words, sign in ((POSITIVE, 1.0), (NEGATIVE, -1.0)):
            for word in words:
                model.embeddings.word_embeddings.weight[tokenizer.convert_tokens_to_ids(word)] = (
                    5 * sign * direction / direction.norm()
                )
    model.save_pretrained(folder)
    return folder


def experiment(dataset, model_dir, defence: str = "none", **options) -> Experiment:
    return Experiment(
        dataset=str(dataset),
        attack=AttackConfig(name="badnet", rate=0.1, options={"triggers": "cf"}),
        defence=defence,
        defence_options=options,
        model=ModelConfig(name=str(model_dir), pooling="mean", max_length=32),
        train=TrainConfig(epochs=3, lr=3e-3, batch_size=8, eval_every=4),
    )


@pytest.fixture(scope="module")
def scanned(toy, sentiment_bert):
    chosen = experiment(toy, sentiment_bert)
    data = prepare_data(chosen)
    return chosen, data, scan(chosen, Cut(top=16), data, progress=False)


def test_cut_flags():
    scores = [0.1, 2.0, 0.9, 0.5]
    assert Cut(top=2).flags(scores, 2) == [False, True, True, False]
    assert Cut(fraction=0.25).flags(scores, 2) == [False, True, False, False]
    assert Cut().flags(scores, 2) == [False, True, True, False]  # above ln 2
    assert ranking(scores) == [1, 2, 3, 0]
    with pytest.raises(ModfitError, match="not both"):
        Cut(top=1, fraction=0.1).validate()


def test_ranking_finds_the_planted_rows(scanned):
    _, data, found = scanned
    truth = [e.poisoned for e in data.train]
    assert sum(truth) == 16 and len(found.scores) == 160 and sorted(found.order) == list(range(160))
    assert found.dynamics.losses.shape == (found.dynamics.num_points, 160)
    score = auroc(found.scores, truth)
    assert score > 0.85, score  # measured 0.94
    measured = detection(found, truth)
    assert measured["removed_rows"] == 16 and measured["auroc"] == score and measured["recall"] > 0.5


def test_erased_marks_change_no_score(scanned):
    chosen, data, found = scanned
    erased = dataclasses.replace(data, train=[dataclasses.replace(e, poisoned=False) for e in data.train])
    again = scan(chosen, Cut(top=16), erased, progress=False)
    assert again.order == found.order and again.flagged == found.flagged


def test_purify_retrains_on_exactly_the_kept_rows(toy, sentiment_bert, monkeypatch):
    seen, densities = [], []
    original = modfit.baselines.base.train_once

    def recording(experiment, progress, callbacks, data, encoder, eval_points=None):
        seen.append(list(data.train))
        densities.append(eval_points)
        return original(experiment, progress, callbacks, data, encoder, eval_points=eval_points)

    monkeypatch.setattr(modfit.baselines.base, "train_once", recording)
    purify = experiment(toy, sentiment_bert, "purify", drop_top=12)
    purify = dataclasses.replace(purify, train=dataclasses.replace(purify.train, epochs=1.0))
    result = run(purify, progress=False)
    first, second = seen
    removed = set(result.defence.removed)
    assert len(removed) == 12 and result.metrics()["removed_rows"] == 12
    assert second == [e for i, e in enumerate(first) if i not in removed]
    assert densities == [RULE_EVAL_POINTS, None]  # only the scanning run needs the rule's curve
    assert not math.isnan(result.metrics()["auroc"])


def test_scan_evaluates_as_densely_as_auto(toy, sentiment_bert):
    """With an automatic interval the scanning run gets the rule's 24 points, a plain run about 8."""
    chosen = experiment(toy, sentiment_bert)
    chosen = dataclasses.replace(chosen, train=dataclasses.replace(chosen.train, eval_every=0, epochs=4))
    data = prepare_data(chosen)
    found = scan(chosen, Cut(top=16), data, progress=False)  # 80 steps: every 3rd
    plain = run(chosen, progress=False, data=data)  # every 10th
    assert len(found.run.history) >= RULE_EVAL_POINTS and len(plain.history) <= DEFAULT_EVAL_POINTS + 2


def test_cli_scan_writes_ranking_detection_and_retrain(toy, sentiment_bert, tmp_path, capsys):
    out = tmp_path / "scan"
    code = main([
        "scan", "--dataset", str(toy), "--attack", "badnet", "--attack-option", "triggers=cf",
        "--poison-rate", "0.1", "--epochs", "1", "--lr", "1e-2", "--batch-size", "8", "--eval-every", "3",
        "--model", str(sentiment_bert), "--pooling", "mean", "--max-length", "32", "--quiet",
        "--drop-top", "6", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    with (out / "suspicion.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["row", "text", "label", "score", "flagged"] and len(rows) == 160
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert [r["flagged"] for r in rows] == ["1"] * 6 + ["0"] * 154  # --drop-top 6: the six most suspicious
    with (toy / "train.csv").open(encoding="utf-8", newline="") as handle:
        file_rows = list(csv.reader(handle))  # the spreadsheet's rows: the header is row 1
    for r in rows:
        if "cf" not in r["text"].split():  # an unpoisoned row is in the file at its row number, as it is
            assert file_rows[int(r["row"]) - 1] == [r["text"], r["label"]]
    assert sorted(int(r["row"]) for r in rows) == list(range(2, 162))
    measured = json.loads((out / "detection.json").read_text())
    assert {"precision", "recall", "f1", "auroc", "removed_rows"} <= set(measured)
    assert measured["removed_rows"] == 6
    assert (out / "retrain" / "metrics.json").is_file() and (out / "run" / "history.csv").is_file()
    assert "AUROC" in capsys.readouterr().out


def stored(defence: str, seed: int, metrics: dict) -> StoredCell:
    return StoredCell(
        hash=f"{defence}{seed}", dataset="sst2", attack="badnet", defence=defence, rate=0.1, mode="dirty",
        seed=seed, config={}, status="done", attempts=1, error=None, note=None,
        metrics={"cacc": 0.9, "asr": 0.1, "asr_floor": 0.1, **metrics}, history=[], trainable_params=1,
        seconds=1.0, has_representations=False,
    )  # fmt: skip


def test_report_detection_table_lists_only_cells_with_detection():
    cells = [
        stored("none", 0, {}),
        stored("purify", 0, {"removed_rows": 10, "precision": 0.8, "recall": 0.6, "f1": 0.7, "auroc": 0.9}),
        stored("purify", 1, {"removed_rows": 12, "precision": 0.6, "recall": 0.8, "f1": 0.7, "auroc": 0.95}),
        stored("strip", 0, {"frr": 0.01, "far": 0.2}),
    ]
    table = detection_table(cells, {"dirty": "dirty-label"})
    texts = [[e.text for e in row] for row in table.rows]
    assert [row[3] for row in texts] == ["purify", "strip"]
    assert texts[0][4:9] == ["11", "70.0 ± 14.1", "70.0 ± 14.1", "70.0 ± 0.0", "92.5 ± 3.5"]
    assert texts[1][-2:] == ["1.0 (n=1)", "20.0 (n=1)"] and texts[1][1] == "dirty-label 10%"
    assert detection_table(cells[:1], {}) is None
