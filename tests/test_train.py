"""The training loop on a tiny BERT built in the test: learning, evaluation points, selection, seeds."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch

from conftest import separable_rows, write_split
from modfit import (
    AttackConfig,
    EvalSet,
    Example,
    Experiment,
    ModelConfig,
    TrainConfig,
    fit,
    load_classifier,
    make_trigger,
    poison_test,
    predict,
    run,
)
from modfit.callbacks import Evaluate, KeepBestDev
from modfit.data import Splits
from modfit.encoding import encode
from modfit.errors import NoTaskWarning
from modfit.metrics import accuracy, learned_nothing, majority_share
from modfit.prepare import PoisonedData, eval_subset
from modfit.train import plan_steps
from modfit.tuning import apply_tuning

MAX_LENGTH = 32


def rows(count: int, seed: int, flip: bool = False) -> list[Example]:
    return [Example(t, 1 - y if flip else y) for t, y in separable_rows(count, seed)]


def new_model(folder, seed: int = 0):
    return load_classifier(ModelConfig(name=str(folder), pooling="mean", max_length=MAX_LENGTH), 2, seed)


def eval_set(tokenizer, dev: list[Example], test: list[Example]) -> EvalSet:
    return EvalSet(
        dev=encode(dev, tokenizer, MAX_LENGTH),
        test=encode(test, tokenizer, MAX_LENGTH),
        poison=None,
        sources=None,
        target=1,
    )


class RecordLosses:
    """Keeps every step's loss (the loop's own list) for checks after training."""

    def on_step(self, state) -> None:
        self.losses = state.losses

    def on_end(self, state) -> None:
        pass


class RecordDevPredictions:
    """Dev predictions at every evaluation point, keyed by step."""

    def __init__(self, dev) -> None:
        self.dev = dev
        self.by_step: dict[int, list[int]] = {}

    def on_step(self, state) -> None:
        pass

    def on_evaluate(self, state, point) -> None:
        self.by_step[point.step] = predict(state.model, self.dev)

    def on_end(self, state) -> None:
        pass


class StopAt:
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, state) -> None:
        state.stop = state.step >= self.step

    def on_end(self, state) -> None:
        pass


def comparable(history) -> list[tuple]:
    """Every field but the wall-clock seconds; NaN written as a string so that equal means equal."""
    return [
        tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in dataclasses.astuple(p)[:-1])
        for p in history
    ]


def test_tiny_tokenizer_knows_the_toy_words(tiny_bert):
    _, tokenizer = new_model(tiny_bert)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("good movie cf")["input_ids"])
    assert tokens == ["[CLS]", "good", "movie", "cf", "[SEP]"]


@pytest.mark.parametrize(
    "num_rows, batch_size, epochs, expected",
    [
        (64, 8, 1, (8, 8)),
        (64, 8, 1.5, (8, 12)),
        (65, 8, 1, (9, 9)),
        (64, 8, 0.3, (8, 3)),
        (10, 32, 0.01, (1, 1)),
    ],
)
def test_plan_steps(num_rows, batch_size, epochs, expected):
    assert plan_steps(num_rows, TrainConfig(epochs=epochs, batch_size=batch_size)) == expected


def test_loss_falls_and_the_model_learns_the_separable_task(tiny_bert):
    model, tokenizer = new_model(tiny_bert)
    data = eval_set(tokenizer, rows(24, 1), rows(24, 2))
    history = fit(
        model,
        encode(rows(64, 0), tokenizer, MAX_LENGTH),
        TrainConfig(epochs=4, lr=1e-2, batch_size=8),
        seed=0,
        callbacks=[Evaluate(data, every=8)],
    )
    assert [p.step for p in history] == [0, 8, 16, 24, 32]
    first_epoch, last_epoch = history[1].train_loss, history[-1].train_loss
    assert first_epoch > 0.6
    assert last_epoch < first_epoch / 3
    assert history[0].cacc <= 0.65
    assert history[-1].dev_acc >= 0.9 and history[-1].cacc >= 0.9


@pytest.mark.parametrize(
    "epochs, every, steps, epoch_marks",
    [
        (1, 4, [0, 4, 8], [0.0, 0.5, 1.0]),
        (1.5, 5, [0, 5, 10, 12], [0.0, 0.625, 1.25, 1.5]),
        (0.5, 3, [0, 3, 4], [0.0, 0.375, 0.5]),
        (0.3, 8, [0, 3], [0.0, 0.375]),
    ],
)
def test_history_rows_at_step_zero_every_n_steps_and_the_end(tiny_bert, epochs, every, steps, epoch_marks):
    model, tokenizer = new_model(tiny_bert)
    losses = RecordLosses()
    history = fit(
        model,
        encode(rows(64, 0), tokenizer, MAX_LENGTH),  # 8 steps per epoch at batch size 8
        TrainConfig(epochs=epochs, lr=1e-3, batch_size=8),
        seed=0,
        callbacks=[Evaluate(eval_set(tokenizer, rows(8, 1), rows(8, 2)), every), losses],
    )
    assert [p.step for p in history] == steps
    assert [p.epoch for p in history] == epoch_marks
    assert math.isnan(history[0].train_loss)  # nothing trained yet
    assert len(losses.losses) == steps[-1]
    for previous, point in itertools.pairwise(history):  # the mean loss since the previous point
        window = losses.losses[previous.step : point.step]
        assert point.train_loss == pytest.approx(sum(window) / len(window))
    assert all(math.isnan(p.asr) for p in history)  # no poisoned rows were given


def test_a_callback_can_stop_training_and_the_end_is_still_evaluated(tiny_bert):
    model, tokenizer = new_model(tiny_bert)
    history = fit(
        model,
        encode(rows(64, 0), tokenizer, MAX_LENGTH),
        TrainConfig(epochs=2, lr=1e-3, batch_size=8),
        seed=0,
        callbacks=[Evaluate(eval_set(tokenizer, rows(8, 1), rows(8, 2)), every=5), StopAt(3)],
    )
    assert [p.step for p in history] == [0, 3]


def test_only_parameters_that_require_gradients_change(tiny_bert):
    model, tokenizer = new_model(tiny_bert)
    model.encoder.requires_grad_(False)
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head_before = model.head.weight.detach().clone()
    fit(model, encode(rows(16, 0), tokenizer, MAX_LENGTH), TrainConfig(epochs=1, lr=1e-2, batch_size=8), 0)
    assert all(torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())
    assert not torch.equal(model.head.weight, head_before)


@pytest.mark.parametrize("tuning, scale", [("full", 1.0), ("full", 10.0), ("lora", 10.0)])
def test_the_head_steps_at_lr_times_head_lr_scale(tiny_bert, tuning, scale):
    # Adam's first step moves every parameter with a gradient by its group's lr (weight decay aside).
    model, tokenizer = new_model(tiny_bert)
    model = apply_tuning(model, tuning, {}, seed=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = TrainConfig(epochs=1, lr=1e-4, batch_size=16, weight_decay=0.0, head_lr_scale=scale)
    fit(model, encode(rows(16, 0), tokenizer, MAX_LENGTH), config, 0)
    moved = {name: (p - before[name]).abs().max().item() for name, p in model.named_parameters()}
    head = [v for name, v in moved.items() if name.endswith("head.weight")]
    body = [v for name, v in moved.items() if not name.endswith(("head.weight", "head.bias")) and v > 0]
    assert head == [pytest.approx(1e-4 * scale, rel=1e-3)]
    assert body and max(body) == pytest.approx(1e-4, rel=1e-3)


def test_a_generated_head_is_not_scaled(tiny_bert):
    # prefix-reparam generates the head from a network named `head`: it trains at lr like every generator.
    model, tokenizer = new_model(tiny_bert)
    model = apply_tuning(model, "prefix", {"tokens": 2, "reparam": {"in_dim": 2, "mid_dim": 2}}, seed=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    config = TrainConfig(epochs=1, lr=1e-4, batch_size=16, weight_decay=0.0, head_lr_scale=10.0)
    fit(model, encode(rows(16, 0), tokenizer, MAX_LENGTH), config, 0)
    moved = [(p - before[name]).abs().max().item() for name, p in model.named_parameters() if p.requires_grad]
    assert max(moved) == pytest.approx(1e-4, rel=1e-3)


@pytest.mark.parametrize("evaluate_first", [True, False])
def test_best_dev_restores_the_weights_of_the_best_dev_point(tiny_bert, evaluate_first):
    """Dev labels are flipped, so dev accuracy falls as the model learns: the best point is early.
    The callbacks' order in the list does not matter: points reach them through `on_evaluate`."""
    model, tokenizer = new_model(tiny_bert)
    dev = encode(rows(24, 1, flip=True), tokenizer, MAX_LENGTH)
    data = EvalSet(
        dev=dev, test=encode(rows(24, 2), tokenizer, MAX_LENGTH), poison=None, sources=None, target=1
    )
    recorder, selector = RecordDevPredictions(dev), KeepBestDev()
    history = fit(
        model,
        encode(rows(64, 0), tokenizer, MAX_LENGTH),
        TrainConfig(epochs=3, lr=1e-2, batch_size=8),
        seed=0,
        callbacks=[Evaluate(data, every=4), recorder, selector][:: 1 if evaluate_first else -1],
    )
    best = max(history, key=lambda p: p.dev_acc)  # the first of equal maxima
    assert selector.best == best
    assert best.step < history[-1].step and best.dev_acc > history[-1].dev_acc
    restored = predict(model, dev)
    assert restored == recorder.by_step[best.step]
    assert accuracy(restored, dev.labels) == best.dev_acc


def test_without_selection_the_last_weights_stay(tiny_bert):
    model, tokenizer = new_model(tiny_bert)
    dev = encode(rows(24, 1, flip=True), tokenizer, MAX_LENGTH)
    data = EvalSet(
        dev=dev, test=encode(rows(24, 2), tokenizer, MAX_LENGTH), poison=None, sources=None, target=1
    )
    recorder = RecordDevPredictions(dev)
    history = fit(
        model,
        encode(rows(64, 0), tokenizer, MAX_LENGTH),
        TrainConfig(epochs=3, lr=1e-2, batch_size=8),
        seed=0,
        callbacks=[Evaluate(data, every=4), recorder],
    )
    assert predict(model, dev) == recorder.by_step[history[-1].step]


# --- run(): the loop inside an experiment ----------------------------------------------------------


@pytest.fixture(scope="module")
def flipped_dev_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flipped")
    write_split(folder / "train.csv", separable_rows(64, 0))
    write_split(folder / "dev.csv", [(t, 1 - y) for t, y in separable_rows(24, 1)])
    write_split(folder / "test.csv", separable_rows(24, 2))
    return folder


def experiment(dataset, model_dir, **train) -> Experiment:
    settings = dict(epochs=2, lr=1e-2, batch_size=8, eval_every=4) | train
    return Experiment(
        dataset=str(dataset),
        attack=AttackConfig(name="badnet", rate=0.1),
        model=ModelConfig(name=str(model_dir), pooling="mean", max_length=MAX_LENGTH),
        train=TrainConfig(**settings),
    )


@pytest.mark.parametrize("select", ["best-dev", "last"])
def test_run_reports_the_selected_point(tiny_bert, flipped_dev_dataset, select):
    result = run(experiment(flipped_dev_dataset, tiny_bert, select=select, eval_size=16), progress=False)
    history = result.history
    assert [p.step for p in history] == [0, 4, 8, 12, 16]
    if select == "best-dev":
        assert result.final == max(history, key=lambda p: p.dev_acc)
        assert result.final.step < history[-1].step
    else:
        assert result.final == history[-1]
    metrics = result.metrics()
    assert (metrics["step"], metrics["cacc"], metrics["asr"]) == (
        result.final.step,
        result.final.cacc,
        result.final.asr,
    )
    assert metrics["eval_subset"] == 16
    assert metrics["trainable_params"] == sum(p.numel() for p in result.model.parameters())


def test_same_seed_gives_an_identical_history_whatever_the_global_state(tiny_bert, text_dataset):
    torch.manual_seed(1)
    first = run(experiment(text_dataset, tiny_bert), progress=False)
    torch.manual_seed(2)
    torch.rand(7)
    second = run(experiment(text_dataset, tiny_bert), progress=False)
    assert comparable(second.history) == comparable(first.history)
    other = run(dataclasses.replace(experiment(text_dataset, tiny_bert), seed=1), progress=False)
    assert [p.train_loss for p in other.history[1:]] != [p.train_loss for p in first.history[1:]]


def test_the_evaluation_subset_keeps_poisoned_rows_aligned_with_their_sources():
    test = rows(40, 2)
    trigger = make_trigger(AttackConfig(name="badnet", options={"triggers": "cf"}))
    splits = Splits("toy", rows(20, 0), rows(30, 1), test, 2)
    data = PoisonedData(splits, splits.train, poison_test(test, trigger, 1, seed=0), target=1)

    dev, test_subset, poisoned = eval_subset(data, 15, seed=3)
    assert (len(dev), len(test_subset)) == (15, 15)
    assert eval_subset(data, 15, seed=3) == (dev, test_subset, poisoned)
    non_target = [i for i, e in enumerate(test_subset) if e.label != 1]
    assert poisoned.sources == non_target  # every kept non-target row, and only those
    for source, example in zip(poisoned.sources, poisoned.examples, strict=True):
        assert [w for w in example.text.split() if w != "cf"] == test_subset[source].text.split()
    assert test_subset == [e for e in test if e in test_subset]  # order kept

    assert eval_subset(data, None, seed=3) == (splits.dev, test, data.test_poison)


@pytest.mark.parametrize("architecture", ["tiny_bert", "tiny_roberta"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_run_learns_on_bert_and_roberta_with_either_pooling(request, text_dataset, architecture, pooling):
    folder = request.getfixturevalue(architecture)
    base = experiment(text_dataset, folder, epochs=4, eval_every=8)
    result = run(
        dataclasses.replace(base, model=ModelConfig(str(folder), pooling, MAX_LENGTH)), progress=False
    )
    assert [p.step for p in result.history] == [0, 8, 16, 24, 32]
    assert result.history[-1].train_loss < result.history[1].train_loss
    assert result.final.cacc >= 0.8  # chance is 0.5


def test_learned_nothing_is_no_better_than_one_label_or_a_floor_near_one():
    assert learned_nothing(0.5, float("nan"), majority_share([0, 1, 1, 0]))  # chance on a balanced set
    assert learned_nothing(0.7, 0.95, 0.5)  # calls nearly every clean non-target input the target
    assert not learned_nothing(0.8, 0.2, 0.5) and not learned_nothing(0.8, float("nan"), 0.5)


def test_run_warns_when_the_model_learned_nothing(tiny_bert, text_dataset):
    with pytest.warns(NoTaskWarning, match="the model learned no task"):
        idle = run(experiment(text_dataset, tiny_bert, lr=1e-9, epochs=0.25), progress=False)
    assert idle.metrics()["no_task"] and idle.learned_nothing
    learned = run(experiment(text_dataset, tiny_bert), progress=False)
    assert learned.metrics()["cacc"] > 0.6 and not learned.metrics()["no_task"]
