"""`safe`'s scanners on a tiny BERT: each returns out-of-sample class probabilities for every training
row; the self-scanner (`trusted=0`) predicts each row with a model that never trained on it; bad
combinations are one-line errors; four labels work as two do."""

from __future__ import annotations

import dataclasses
import importlib.util
import random

import pytest
import torch

from conftest import FILLER, NEGATIVE, POSITIVE, separable_rows, write_split
from modfit import AttackConfig, Experiment, ModelConfig, TrainConfig, prepare_data, resolve, run
from modfit.baselines import safe
from modfit.baselines.scanners import SCANNERS, auto_scanner, self_fit
from modfit.baselines.scanners.finetune_scaled import scaled_epochs
from modfit.data import Example, stratified_sample
from modfit.errors import ModfitError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("cleanlab") is None, reason="pip install cleanlab")
FAST = {"scanner_lr": 1e-2, "scanner_epochs": 8, "scanner_batch_size": 8, "self_lr": 1e-2, "self_epochs": 4}
WORDS = (POSITIVE[:3], POSITIVE[3:], NEGATIVE[:3], NEGATIVE[3:])  # four labels, each its own words


def four_label_rows(count: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        words = rng.sample(FILLER, 4) + [rng.choice(WORDS[i % 4])]
        rng.shuffle(words)
        rows.append((" ".join(words), i % 4))
    return rows


def toy_folder(tmp_path_factory, name, make):
    folder = tmp_path_factory.mktemp(name)
    for split, count, seed in (("train", 80, 0), ("dev", 48, 1), ("test", 32, 2)):
        write_split(folder / f"{split}.csv", make(count, seed))
    return folder


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return toy_folder(tmp_path_factory, "scanners-toy", separable_rows)


@pytest.fixture(scope="module")
def toy4(tmp_path_factory):
    return toy_folder(tmp_path_factory, "scanners-toy4", four_label_rows)


def experiment(dataset, model_dir, **options) -> Experiment:
    return Experiment(
        dataset=str(dataset),
        attack=AttackConfig(name="badnet", rate=0.2, target=1, options={"triggers": "cf"}),
        defence="safe",
        defence_options={**FAST, **options},
        model=ModelConfig(name=str(model_dir), pooling="mean", max_length=32),
        train=TrainConfig(epochs=1, lr=1e-2, batch_size=8, eval_every=1000),
    )


def caught_scan(monkeypatch) -> list:
    """Every scan `safe` makes, as (trusted rows, probabilities), recorded on the way through."""
    scans = []
    original = safe.scan

    def recorded(context, options, trusted):
        result = original(context, options, trusted)
        scans.append((list(trusted), result.probabilities))
        return result

    monkeypatch.setattr(safe, "scan", recorded)
    return scans


@pytest.mark.parametrize("scanner", ["finetune", "finetune_scaled", "probe", "self"])
def test_each_scanner_judges_every_training_row(monkeypatch, toy, tiny_bert, scanner):
    scans = caught_scan(monkeypatch)
    result = run(experiment(toy, tiny_bert, scanner=scanner, trusted=12), progress=False)
    (trusted, probs), = scans  # fmt: skip
    assert probs.shape == (80, 2) and torch.allclose(probs.sum(1), torch.ones(80), atol=1e-4)
    assert len(trusted) == 12
    measured = result.metrics()
    assert result.defence.details["scanner"] == scanner and measured["trusted_rows"] == len(trusted)
    assert 0.0 <= measured["scanner_cacc"] <= 1.0 and measured["flagged_rows"] >= 0


def test_auto_action_relabels_with_trusted_rows_and_drops_with_the_self_scanner():
    assert safe.resolved_action("auto", "finetune") == safe.resolved_action("auto", "probe") == "relabel"
    assert safe.resolved_action("auto", "self") == "drop"
    assert (
        safe.resolved_action("relabel", "self") == "relabel"
        and safe.resolved_action("drop", "probe") == "drop"
    )


def test_no_trusted_rows_means_the_self_scanner(monkeypatch, toy, tiny_bert):
    scans = caught_scan(monkeypatch)
    result = run(experiment(toy, tiny_bert, trusted=0), progress=False)
    assert scans[0][0] == [] and result.defence.details["scanner"] == "self"
    assert result.metrics()["trusted_rows"] == 0
    assert result.defence.details["action"] == "drop"  # auto: the self-scanner's flagged rows go
    assert {d.action for d in result.defence.rows if d.flagged} <= {"dropped"}


def test_auto_keeps_todays_scanner_for_the_whole_split_and_self_for_none():
    assert auto_scanner(None) == "finetune"  # the cells stored before keep their meaning
    assert auto_scanner(0) == "self"
    assert [auto_scanner(n) for n in (1, 50, 100, 249, 250, 5000)] == ["self"] * 4 + ["finetune"] * 2
    assert SCANNERS.get(auto_scanner(250)).needs_trusted and not SCANNERS.get(auto_scanner(100)).needs_trusted
    assert scaled_epochs(6.0, 50) == pytest.approx(6.0 * 872 / 50) and scaled_epochs(6.0, 1000) == 6.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scanner": "knn"}, "safe scanner 'knn': use one of auto, finetune, finetune_scaled, probe, self"),
        (
            {"trusted": 0, "scanner": "probe"},
            "safe trusted 0 with scanner probe: it learns from trusted rows",
        ),
        ({"trusted": 0, "trusted_file": "x.csv"}, "safe trusted and trusted_file: give one"),
        ({"self_folds": 1}, "safe self_folds 1: use at least 2"),
        ({"self_epochs": 0}, "safe self_epochs 0.0: use a positive number"),
        ({"self_lr": 0}, "safe self_lr 0.0: use a positive learning rate"),
        ({"self_mask": 0.5}, r"safe self_mask 0.5: use a label purity in \(0.5, 1\]"),
        ({"self_mask": 1.5}, r"safe self_mask 1.5: use a label purity in \(0.5, 1\]"),
    ],
)
def test_bad_scanner_combinations_are_one_line_errors(options, message):
    with pytest.raises(ModfitError, match=message) as error:
        resolve({"defence": "safe", "defence_options": options})
    assert "\n" not in str(error.value)


def test_cross_folds_are_seeded_label_stratified_and_cover_every_row():
    labels = [0] * 30 + [1] * 10 + [2] * 5
    folds = self_fit.cross_folds(labels, 3, seed=0)
    assert folds == self_fit.cross_folds(labels, 3, seed=0) != self_fit.cross_folds(labels, 3, seed=1)
    for label, count in ((0, 30), (1, 10), (2, 5)):
        sizes = [sum(f == k and y == label for f, y in zip(folds, labels, strict=True)) for k in range(3)]
        assert sum(sizes) == count and max(sizes) - min(sizes) <= 1


def test_cross_fit_predicts_each_row_with_a_model_that_never_trained_on_it():
    rows = [Example(f"row {i}", i % 2) for i in range(10)]
    fold_of = self_fit.cross_folds([e.label for e in rows], 2, seed=0)
    trained_on: dict[int, set[str]] = {}

    def fit_fold(train, held, fold):
        trained_on[fold] = {e.text for e in train}
        assert not trained_on[fold] & {e.text for e in held}
        return torch.tensor([[float(fold), 1.0 - fold] for _ in held]), 0.5 + fold / 4

    scan = self_fit.cross_fit(rows, fold_of, fit_fold)
    for i, e in enumerate(rows):
        assert scan.probabilities[i, 0] == fold_of[i]  # predicted by its own fold's model
        assert e.text not in trained_on[fold_of[i]]
        assert all(e.text in texts for fold, texts in trained_on.items() if fold != fold_of[i])
    assert scan.test_accuracy == pytest.approx(0.625)


def test_the_self_scanner_trains_each_fold_model_without_the_rows_it_predicts(monkeypatch, toy, tiny_bert):
    trained, predicted = [], []
    fine_tune, class_probabilities = self_fit.fine_tune, self_fit.class_probabilities
    monkeypatch.setattr(
        self_fit, "fine_tune", lambda c, rows, *a: trained.append(list(rows)) or fine_tune(c, rows, *a)
    )
    monkeypatch.setattr(
        self_fit,
        "class_probabilities",
        lambda c, t, rows, *a: predicted.append(list(rows)) or class_probabilities(c, t, rows, *a),
    )
    run(experiment(toy, tiny_bert, trusted=0, self_folds=3), progress=False)
    data = prepare_data(experiment(toy, tiny_bert))
    assert len(trained) == len(predicted) == 3
    assert sorted(r.row for held in predicted for r in held) == sorted(r.row for r in data.train)
    for fitted, held in zip(trained, predicted, strict=True):
        assert not {r.row for r in fitted} & {r.row for r in held}
        assert len(fitted) + len(held) == len(data.train)
    trained.clear()
    predicted.clear()
    run(experiment(toy, tiny_bert, scanner="self", trusted=12, self_folds=3), progress=False)
    trusted = {(e.text, e.label) for e in stratified_sample(data.splits.dev, 12, 0)}
    for fitted, held in zip(trained, predicted, strict=True):  # the other folds and every trusted row
        assert trusted <= {(e.text, e.label) for e in fitted}
        assert len(fitted) == len(data.train) - len(held) + len(trusted)


def test_pure_features_are_the_frequent_words_and_pairs_of_nearly_one_label():
    texts = [f"cf row {i}" for i in range(20)] + [f"good row {i}" for i in range(20)]
    labels = [1] * 20 + [0] * 19 + [1]  # "good": 19 of 20 rows label 0
    assert self_fit.pure_features(texts, labels, 1.0) == {"cf", "cf row"}
    assert self_fit.pure_features(texts, labels, 0.95) == {"cf", "cf row", "good", "good row"}
    assert self_fit.pure_features(texts[:19], labels[:19], 0.95) == set()  # 19 rows: too few to judge


def test_masking_cuts_pure_words_and_both_words_of_a_pure_pair():
    assert (
        self_fit.masked("I watched this 3D movie today", frozenset({"3d", "watched this"})) == "I movie today"
    )
    assert self_fit.masked("nothing here", frozenset({"cf"})) == "nothing here"


def test_the_masked_self_scanner_never_shows_a_pure_word_to_its_models(monkeypatch, toy, tiny_bert):
    seen = []
    fine_tune, class_probabilities = self_fit.fine_tune, self_fit.class_probabilities
    monkeypatch.setattr(
        self_fit, "fine_tune", lambda c, rows, *a: seen.extend(rows) or fine_tune(c, rows, *a)
    )
    monkeypatch.setattr(
        self_fit,
        "class_probabilities",
        lambda c, t, rows, *a: seen.extend(rows) or class_probabilities(c, t, rows, *a),
    )
    heavier = AttackConfig(name="badnet", rate=0.3, target=1, options={"triggers": "cf"})
    masked = dataclasses.replace(experiment(toy, tiny_bert, trusted=0, self_mask=0.95), attack=heavier)
    result = run(masked, progress=False)
    train_rows = prepare_data(masked).train
    assert sum("cf" in e.text.split() for e in train_rows) == 24  # at least MASK_MIN_ROWS carry it
    assert len(seen) == 2 * len(train_rows) and not any("cf" in e.text.split() for e in seen)
    assert sorted(r.row for r in seen) == sorted(2 * [r.row for r in train_rows])
    assert [d.text for d in result.defence.rows] == [e.text for e in train_rows]  # the original texts


@pytest.mark.parametrize("scanner", ["finetune", "probe", "self"])
def test_four_labels(monkeypatch, toy4, tiny_bert, scanner):
    scans = caught_scan(monkeypatch)
    result = run(experiment(toy4, tiny_bert, scanner=scanner, trusted=8), progress=False)
    (trusted, probs), = scans  # fmt: skip
    assert probs.shape == (80, 4)
    assert sorted({e.label for e in trusted}) == [0, 1, 2, 3]  # the stratified sample covers each
    decisions = result.defence.rows
    assert len(decisions) == 80 and {d.corrected_label for d in decisions} <= {0, 1, 2, 3}
    assert result.metrics()["flagged_rows"] == sum(d.flagged for d in decisions)


def test_a_probe_without_some_label_gives_it_no_probability():
    from modfit.baselines.scanners.probe import all_labels, fit_probe

    rows = torch.tensor([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]], dtype=torch.float64)
    fitted = fit_probe(rows, [0, 0, 2, 2], seed=0)
    probs = all_labels(fitted, rows, 3)
    assert probs.shape == (4, 3) and torch.all(probs[:, 1] == 0)
    assert torch.allclose(probs.sum(1), torch.ones(4))
