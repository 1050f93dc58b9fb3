"""`safe` on a tiny BERT and a separable toy task with a planted BadNet trigger ("cf"): the scanner is
fitted on dev only, cleanlab flags the rows whose label it disputes, the flagged rows are relabelled or
dropped, and nothing before the detection numbers reads the hidden `poisoned` marks."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json

import pytest
import torch

from conftest import scanner_rows, separable_rows, write_split
from modfit import AttackConfig, Experiment, ModelConfig, TrainConfig, prepare_data, resolve, run
from modfit.baselines import safe
from modfit.baselines.safe import LabelVerdict, corrected_rows, label_verdict, row_decisions
from modfit.cli import main
from modfit.data import Example, stratified_sample
from modfit.defences import procedures
from modfit.encoding import encode
from modfit.errors import ModfitError
from modfit.metrics import detection_scores
from modfit.output import write_run

needs_cleanlab = pytest.mark.skipif(
    importlib.util.find_spec("cleanlab") is None, reason="pip install cleanlab"
)
DETECTION = ("flagged_poisoned", "precision", "recall", "f1", "auroc")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("safe-toy")
    for split, count, seed in (("train", 80, 0), ("dev", 48, 1), ("test", 32, 2)):
        write_split(folder / f"{split}.csv", separable_rows(count, seed))
    return folder


def experiment(dataset, model_dir, **options) -> Experiment:
    return Experiment(
        dataset=str(dataset),
        attack=AttackConfig(name="badnet", rate=0.2, options={"triggers": "cf"}),
        defence="safe",
        defence_options={"scanner_lr": 1e-2, "scanner_epochs": 8, "scanner_batch_size": 8, **options},
        model=ModelConfig(name=str(model_dir), pooling="mean", max_length=32),
        train=TrainConfig(epochs=2, lr=1e-2, batch_size=8, eval_every=1000),
    )


@pytest.fixture(scope="module")
def relabelled(toy, tiny_bert):
    return run(experiment(toy, tiny_bert), progress=False)


def test_safe_is_a_registered_procedure_and_preset():
    assert "safe" in procedures()
    assert resolve({"defence": "safe"}).defence == "safe"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"action": "keep"}, "safe action 'keep': use auto, relabel or drop"),
        ({"filter_by": "vote"}, "safe filter_by 'vote': use one of prune_by_noise_rate"),
        ({"scanner_epochs": 0}, "safe scanner_epochs 0.0: use a positive number"),
        ({"scanner_lr": -1.0}, "safe scanner_lr -1.0: use a positive learning rate"),
        ({"scaner_lr": 1e-3}, "safe options: unknown key 'scaner_lr'"),
    ],
)
def test_options_are_validated_in_one_line(options, message):
    with pytest.raises(ModfitError, match=message) as error:
        resolve({"defence": "safe", "defence_options": options})
    assert "\n" not in str(error.value)


@needs_cleanlab
def test_the_verdict_flags_rows_the_scanner_confidently_disputes():
    probs = torch.tensor([[0.95, 0.05]] * 10 + [[0.05, 0.95]] * 10)
    labels = [0] * 10 + [1] * 8 + [0, 0]  # the last two contradict a confident scanner
    verdict = label_verdict(probs, labels, "prune_by_noise_rate")
    assert verdict.flagged == [False] * 18 + [True, True]
    assert verdict.suggested[-2:] == [1, 1]
    assert verdict.scores[-1] == pytest.approx(0.95) and verdict.scores[0] == pytest.approx(0.05)


@needs_cleanlab
def test_a_single_label_cannot_be_disputed():
    with pytest.raises(ModfitError, match="safe needs training rows of at least two labels"):
        label_verdict(torch.tensor([[0.2, 0.8]] * 4), [1] * 4, "prune_by_noise_rate")


def test_relabel_keeps_every_row_and_drop_removes_the_flagged_ones():
    rows = [Example("a", 0), Example("b", 1, poisoned=True), Example("c", 1)]
    verdict = LabelVerdict([0.1, 0.9, 0.2], [False, True, False], [0, 0, 1])
    relabelled = corrected_rows(rows, row_decisions(rows, verdict, "relabel"))
    assert relabelled == [rows[0], Example("b", 0, poisoned=True), rows[2]]
    assert corrected_rows(rows, row_decisions(rows, verdict, "drop")) == [rows[0], rows[2]]


@needs_cleanlab
def test_relabel_reports_its_flags_and_detection(relabelled, toy, tiny_bert):
    measured = relabelled.metrics()
    flagged = relabelled.defence.details["flagged"]
    assert measured["flagged_rows"] == len(flagged) > 0 and measured["removed_rows"] == 0
    assert relabelled.defence.removed == ()
    truth = [e.poisoned for e in prepare_data(experiment(toy, tiny_bert)).train]
    assert measured["flagged_poisoned"] == sum(truth[i] for i in flagged)
    assert measured["recall"] > 0.5  # the scanner never saw "cf", yet the contradicted labels stand out
    assert 0.0 <= measured["scanner_cacc"] <= 1.0


@needs_cleanlab
def test_drop_removes_exactly_the_flagged_rows(toy, tiny_bert):
    dropped = run(experiment(toy, tiny_bert, action="drop"), progress=False)
    assert dropped.defence.removed == dropped.defence.details["flagged"]
    assert dropped.metrics()["removed_rows"] == len(dropped.defence.removed) > 0
    assert dropped.metrics()["relabelled_rows"] == 0


@needs_cleanlab
def test_safe_never_reads_the_poisoned_marks(relabelled, toy, tiny_bert):
    chosen = experiment(toy, tiny_bert)
    data = prepare_data(chosen)
    hidden = dataclasses.replace(data, train=[dataclasses.replace(e, poisoned=False) for e in data.train])
    blind = run(chosen, progress=False, data=hidden)
    assert blind.defence.details == relabelled.defence.details
    seen, known = blind.metrics(), relabelled.metrics()
    assert seen["flagged_poisoned"] == 0  # the marks were erased, so no row counts as found
    for name in set(known) - set(DETECTION) - {"seconds"}:
        assert seen[name] == pytest.approx(known[name], nan_ok=True), name


@needs_cleanlab
def test_detection_is_scored_after_the_choice(monkeypatch, toy, tiny_bert):
    order = []
    verdict, score, train = safe.label_verdict, safe.detection_scores, safe.Context.train
    monkeypatch.setattr(safe, "label_verdict", lambda *a: order.append("verdict") or verdict(*a))
    monkeypatch.setattr(safe, "detection_scores", lambda *a: order.append("detection") or score(*a))
    monkeypatch.setattr(
        safe.Context, "train", lambda self, *a, **k: order.append("train") or train(self, *a, **k)
    )
    result = run(experiment(toy, tiny_bert), progress=False)
    assert order == ["verdict", "train", "detection"]
    flagged = set(result.defence.details["flagged"])
    truth = [e.poisoned for e in prepare_data(experiment(toy, tiny_bert)).train]
    expected = detection_scores([i in flagged for i in range(len(truth))], [0.0] * len(truth), truth)
    assert (
        result.metrics()["recall"] == expected["recall"]
        and result.metrics()["precision"] == expected["precision"]
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trusted": -1}, "safe trusted -1: give a number of trusted rows"),
        ({"trusted": 10, "trusted_file": "x.csv"}, "safe trusted and trusted_file: give one"),
    ],
)
def test_the_trusted_budget_is_validated_in_one_line(options, message):
    with pytest.raises(ModfitError, match=message) as error:
        resolve({"defence": "safe", "defence_options": options})
    assert "\n" not in str(error.value)


def test_a_stratified_sample_keeps_the_label_shares_and_every_label():
    rows = [Example(str(i), 0 if i < 90 else 1 if i < 98 else 2) for i in range(100)]
    sample = stratified_sample(rows, 10, seed=3)
    assert [sum(e.label == label for e in sample) for label in range(3)] == [8, 1, 1]
    assert sample == stratified_sample(rows, 10, seed=3) != stratified_sample(rows, 10, seed=4)
    assert sample == sorted(sample, key=rows.index)  # the split's own order
    assert stratified_sample(rows, 500, seed=0) == rows


@needs_cleanlab
def test_a_trusted_budget_trains_the_scanner_on_that_many_dev_rows(monkeypatch, toy, tiny_bert):
    dev = prepare_data(experiment(toy, tiny_bert)).splits.dev
    rows = scanner_rows(monkeypatch, experiment(toy, tiny_bert, trusted=12))
    assert len(rows) == 12 and all(e in dev for e in rows)
    assert {e.label for e in rows} == {0, 1}
    assert scanner_rows(monkeypatch, experiment(toy, tiny_bert)) == dev  # unset: the whole dev split


@needs_cleanlab
def test_a_trusted_file_is_the_only_thing_the_scanner_learns_from(monkeypatch, toy, tiny_bert, tmp_path):
    mine = [("checked good text", 1), ("checked bad text", 0)]
    write_split(tmp_path / "checked.csv", mine)
    rows = scanner_rows(monkeypatch, experiment(toy, tiny_bert, trusted_file=str(tmp_path / "checked.csv")))
    assert rows == [Example(text, label) for text, label in mine]
    write_split(tmp_path / "one.csv", mine[:1])
    one = str(tmp_path / "one.csv")
    with pytest.raises(ModfitError, match="the 1 trusted rows carry 1 label; the scanner needs rows of at"):
        run(experiment(toy, tiny_bert, trusted_file=one, scanner="probe"), progress=False)
    assert scanner_rows(monkeypatch, experiment(toy, tiny_bert, trusted_file=one)) == [Example(*mine[0])]


def test_each_row_decision_names_the_file_row_and_what_was_done():
    rows = [Example("a", 0, row=2), Example("b", 1, poisoned=True, row=3), Example("c", 1, row=4)]
    verdict = LabelVerdict([0.1, 0.9, 0.6], [False, True, True], [0, 0, 1])
    relabel = safe.row_decisions(rows, verdict, "relabel")
    assert [(d.row, d.action, d.corrected_label) for d in relabel] == [
        (2, "kept", 0), (3, "relabelled", 0), (4, "kept", 1)  # flagged, but the scanner agrees: kept
    ]  # fmt: skip
    assert [d.action for d in safe.row_decisions(rows, verdict, "drop")] == ["kept", "dropped", "dropped"]


def read_csv(path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@needs_cleanlab
@pytest.mark.parametrize("action", ["relabel", "drop"])
def test_cli_writes_the_rows_it_distrusted_and_the_corrected_set(toy, tiny_bert, tmp_path, capsys, action):
    out = tmp_path / "run"
    argv = ["train", "--dataset", str(toy), "--attack", "badnet", "--poison-rate", "0.2",
            "--attack-option", "triggers=cf", "--defence", "safe", "--defence-option", f"action={action}",
            "--defence-option", "scanner_lr=1e-2", "--defence-option", "scanner_epochs=8",
            "--defence-option", "scanner_batch_size=8", "--epochs", "2", "--lr", "1e-2", "--batch-size", "8",
            "--eval-every", "1000", "--model", str(tiny_bert), "--pooling", "mean", "--max-length", "32",
            "--quiet", "--write-corrected", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = read_csv(out / "rows.csv")
    assert list(rows[0]) == ["row", "text", "label", "scanner_label", "suspicion", "flagged", "action"]
    assert sorted(int(r["row"]) for r in rows) == list(range(2, 82))  # every training row, header = row 1
    assert sum(r["flagged"] == "1" for r in rows) == metrics["flagged_rows"] > 0
    assert f"flagged {metrics['flagged_rows']} rows" in capsys.readouterr().out
    file_rows = read_csv(toy / "train.csv")
    for r in rows:
        assert float(r["suspicion"]) >= 0 and r["action"] in ("kept", "relabelled", "dropped")
        if "cf" not in r["text"].split():  # not poisoned: the text and label the user's file holds there
            assert file_rows[int(r["row"]) - 2] == {"text": r["text"], "label": r["label"]}
    done = {r["action"] for r in rows if r["flagged"] == "1"}
    assert done <= ({"relabelled", "kept"} if action == "relabel" else {"dropped"})
    corrected = read_csv(out / "corrected.csv")
    by_row = {int(r["row"]): r for r in rows}
    expected = [by_row[n] for n in sorted(by_row) if by_row[n]["action"] != "dropped"]
    assert [(c["text"], c["label"]) for c in corrected] == [
        (r["text"], r["scanner_label"] if r["action"] == "relabelled" else r["label"]) for r in expected
    ]
    assert len(corrected) == 80 - metrics["removed_rows"]


def test_write_corrected_needs_a_defence_that_judges_rows(toy, tiny_bert, tmp_path, capsys):
    argv = ["train", "--dataset", str(toy), "--defence", "none", "--write-corrected", "--model", str(tiny_bert),
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    assert "--write-corrected: defence 'none' judges no training row; use it with --defence safe" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


# Heavy poison (issue 27, item 6): `unsure_below`, `rounds=2`; off at their defaults.


def test_an_earlier_safe_cell_keeps_its_hash_with_its_epochs_and_feature_z_pinned():
    """The heavy-poison options left unset stay out of the hash; a cell of `safe` as it ran before its
    final dose became 0.75 epochs and `feature_z` 6 keeps its hash when its spec pins `epochs: 2` and
    `feature_z: 0` (value before the changes); the present defaults make a new cell."""
    from modfit.grid.cells import Cell, Coordinates

    settings = {"dataset": "hsol", "defence": "safe", "train_size": 3000, "seed": 0, "train": {"epochs": 2},
                "attack": {"name": "syntactic", "rate": 0.2, "target": 0}}  # fmt: skip
    where = Coordinates("-", "-", "-", 0.0, "dirty", 0)

    def cell(options: dict) -> Cell:
        return Cell(where, resolve({**settings, "defence_options": options}))

    assert cell({"feature_z": 0}).hash == "e23986b6841508ad278991a2e67106bbe0364504ac151cedf28750102ad15cd4"
    assert cell({}).hash == cell({"feature_z": 6.0}).hash != cell({"feature_z": 0}).hash


def test_safe_trains_its_final_model_at_the_baseline_schedule_unless_the_user_sets_epochs():
    """benchmarks/safe_heavy/'s fourth rule took the moderate dose back (it cost clean accuracy on
    SST-2): the final model trains as the undefended one does, or at the user's epochs."""
    assert resolve({"defence": "safe"}).train == resolve({"defence": "none"}).train
    assert resolve({"defence": "safe", "train": {"epochs": 0.75}}).train.epochs == 0.75
    assert (
        resolve({"dataset": "cifar10", "defence": "safe"}).train.epochs
        == resolve({"dataset": "cifar10"}).train.epochs
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"unsure_below": 1.0}, r"safe unsure_below 1.0: use a probability in \[0, 1\)"),
        ({"unsure_below": -0.1}, r"safe unsure_below -0.1: use a probability in \[0, 1\)"),
        ({"rounds": 3}, "safe rounds 3: use 1 or 2"),
        ({"refit_share": 0}, r"safe refit_share 0.0: use a share in \(0, 1\]"),
        ({"refit_epochs": 0}, "safe refit_epochs 0.0: use a positive number"),
    ],
)
def test_the_heavy_poison_options_are_validated_in_one_line(options, message):
    with pytest.raises(ModfitError, match=message) as error:
        resolve({"defence": "safe", "defence_options": options})
    assert "\n" not in str(error.value)


def test_unsure_rows_are_dropped_and_flagged_but_confident_ones_are_left():
    rows = [Example(t, 0) for t in "abcd"]
    verdict = LabelVerdict([0.1, 0.6, 0.45, 0.9], [False, False, False, True], [0, 1, 0, 1])
    decisions = safe.drop_unsure(row_decisions(rows, verdict, "relabel"), below=0.5)
    assert [(d.flagged, d.action) for d in decisions] == [
        (False, "kept"), (True, "dropped"), (False, "kept"), (True, "relabelled")  # p(given) 0.4 < 0.5
    ]  # fmt: skip
    assert corrected_rows(rows, decisions) == [rows[0], rows[2], Example("d", 1)]


def test_round_two_trains_on_the_least_suspicious_unflagged_rows_in_two_disjoint_folds():
    rows = [Example(str(i), i % 2) for i in range(10)]
    suspicion = [0.05 * i for i in range(10)]
    flagged = [i in (0, 3) for i in range(10)]
    decisions = row_decisions(rows, LabelVerdict(suspicion, flagged, [1 - e.label for e in rows]), "drop")
    first, second = safe.refit_folds(decisions, share=0.5, seed=0)  # 8 rows left, so 4 trusted rows
    assert sorted(first + second) == [1, 2, 4, 5] and not set(first) & set(second)
    assert len(first) == len(second) == 2
    assert (first, second) == safe.refit_folds(decisions, share=0.5, seed=0)


@needs_cleanlab
def test_round_two_never_scores_a_row_with_a_scanner_that_trained_on_it(monkeypatch, toy, tiny_bert):
    """Each fake scanner calls its own training rows label 0 with certainty, every other row 50/50: a
    row scored by the scanner that trained on it would show p = 1."""
    trained: list[list[Example]] = []
    seen = {}

    def fitted(context, rows, config, label):
        trained.append(list(rows))
        assert config.epochs == 1.0
        return len(trained) - 1

    def scored(context, scanner, rows, batch_size):
        return torch.tensor([[1.0, 0.0] if e in trained[scanner] else [0.5, 0.5] for e in rows])

    def verdict(probs, labels, filter_by):
        seen["probs"] = probs
        return LabelVerdict([0.0] * len(labels), [False] * len(labels), [0] * len(labels))

    monkeypatch.setattr(safe, "fine_tune", fitted)
    monkeypatch.setattr(safe, "class_probabilities", scored)
    monkeypatch.setattr(safe, "label_verdict", verdict)
    chosen = experiment(toy, tiny_bert, rounds=2)
    context = safe.Context(chosen, prepare_data(chosen), False, (), encode)
    rows = context.data.train
    unflagged = LabelVerdict([0.1] * len(rows), [False] * len(rows), [e.label for e in rows])
    first = row_decisions(rows, unflagged, "relabel")
    trusted = [Example("trusted row", 1)]
    assert safe.second_round(context, safe.SafeOptions(rounds=2), rows, trusted, first) == first
    assert len(trained) == 2 and all(t[0] == trusted[0] for t in trained)
    assert len(trained[0]) + len(trained[1]) == 2 + len(rows) // 2  # the least suspicious half, split
    assert seen["probs"].shape == (len(rows), 2) and float(seen["probs"].max()) < 1.0


@needs_cleanlab
def test_unsure_rows_are_removed_from_a_relabelling_run(toy, tiny_bert):
    result = run(
        experiment(toy, tiny_bert, unsure_below=0.9, feature_z=0.0), progress=False
    )  # its drops only
    measured = result.metrics()
    unsure = [i for i, d in enumerate(result.defence.rows) if d.action == "dropped"]
    assert measured["unsure_dropped"] == measured["removed_rows"] == len(unsure) > 0
    assert result.defence.removed == tuple(unsure)
    assert all(result.defence.rows[i].flagged for i in unsure)
    assert "second_round_changed" not in measured


@needs_cleanlab
def test_a_second_round_can_only_add_flags_and_reports_what_it_changed(toy, tiny_bert, relabelled):
    result = run(experiment(toy, tiny_bert, rounds=2), progress=False)
    measured = result.metrics()
    assert set(relabelled.defence.details["flagged"]) <= set(result.defence.details["flagged"])
    assert measured["flagged_rows"] >= relabelled.metrics()["flagged_rows"]
    changed = sum(a != b for a, b in zip(relabelled.defence.rows, result.defence.rows, strict=True))
    assert measured["second_round_changed"] == changed and "unsure_dropped" not in measured
    assert measured["removed_rows"] == 0  # relabel: nothing is dropped


# The trigger-feature lever (`feature_z`; its arithmetic: tests/test_trigger_features.py).


@needs_cleanlab
def test_the_lever_is_on_by_default_and_only_adds_drops_to_the_verdict(toy, tiny_bert, relabelled):
    """`relabelled` runs safe's defaults (feature_z 6); at 0 the lever is off and every row it did not
    drop has the same decision."""
    off = run(experiment(toy, tiny_bert, feature_z=0.0), progress=False)
    assert "feature_dropped" not in off.metrics() and "trigger_features" not in off.defence.details
    on = relabelled.defence
    dropped = {i for i, (a, b) in enumerate(zip(off.defence.rows, on.rows, strict=True)) if a != b}
    assert len(dropped) == relabelled.metrics()["feature_dropped"] and "trigger_features" in on.details
    assert all(on.rows[i].action == "dropped" and not off.defence.rows[i].flagged for i in dropped)


@needs_cleanlab
def test_a_safe_run_with_feature_z_drops_rows_names_its_features_and_writes_them(toy, tiny_bert, tmp_path):
    result = run(experiment(toy, tiny_bert, feature_z=1.0), progress=False)
    measured, details = result.metrics(), result.defence.details
    assert "feature_dropped" in measured
    assert details["trigger_features"] and set(details["trigger_features"][0]) == {
        "feature",
        "label",
        "z",
        "rows",
        "flagged",
    }
    zs = [f["z"] for f in details["trigger_features"]]
    assert zs == sorted(zs, reverse=True) and min(zs) >= 1.0
    dropped = [d for d in result.defence.rows if d.action == "dropped"]
    assert len(dropped) == measured["feature_dropped"] == measured["removed_rows"]  # relabel drops no other
    write_run(result, tmp_path / "run")
    with open(tmp_path / "run" / "trigger_features.csv", newline="") as file:
        written = list(csv.DictReader(file))
    assert [row["feature"] for row in written] == [f["feature"] for f in details["trigger_features"]]


@needs_cleanlab
def test_a_greedy_lever_drops_only_rows_carrying_a_feature_it_took(toy, tiny_bert):
    """`feature_select=greedy` end to end: every feature it names was at z ≥ Z when taken, and every
    row it dropped carries one of them with its own given label."""
    from modfit.baselines.trigger_features import text_features

    result = run(experiment(toy, tiny_bert, feature_z=1.0, feature_select="greedy"), progress=False)
    taken = result.defence.details["trigger_features"]
    assert taken and min(f["z"] for f in taken) >= 1.0
    names = {(f["feature"], f["label"]) for f in taken}
    dropped = [d for d in result.defence.rows if d.action == "dropped"]
    assert dropped and len(dropped) == result.metrics()["feature_dropped"] and len(taken) < 20  # all named
    assert all(any((f, d.label) in names for f in text_features(d.text)) for d in dropped)
