"""The moderate-fitting detector on synthetic curves, the `+auto` resolution, and `select: auto` on a
tiny BERT (stops early and restores the chosen point's weights)."""

from __future__ import annotations

import math

import pytest
import torch

from modfit import Experiment, ModelConfig, TrainConfig, resolve
from modfit.auto import AutoSelect
from modfit.defences import DEFENCES, base_defence, preset
from modfit.dynamics import RecordRowDynamics
from modfit.errors import ModfitError
from modfit.grid import expand
from modfit.grid.spec import parse_spec
from modfit.train import EvalPoint, TrainState
from modfit.transition import Signals, TransitionRule, find_transition, learning_margin

NAN = math.nan


def poisoned_curves(points: int = 20, change: int = 12) -> Signals:
    """Dirty-label shape: the task is mostly learned by point 4 (dev creeps up by 0.003 a point, so
    plain early stopping would wait), 10 % of rows stay misfit until `change`, where the trigger is
    learned: the high-loss share falls to the hard rows' 3 % and dev accuracy stops improving."""
    dev = [0.5, 0.7, 0.8, 0.85] + [0.85 + 0.003 * (min(i, change - 1) - 3) for i in range(4, points)]
    share = [NAN, 0.45, 0.25, 0.15] + [0.13 if i < change else 0.03 for i in range(4, points)]
    loss = [0.7, 0.6, 0.45, 0.35] + [0.3 if i < change else 0.1 for i in range(4, points)]
    return Signals(dev, loss, share)


def clean_curves(points: int = 20) -> Signals:
    """Still learning: dev accuracy rises steadily, the share falls smoothly, nothing to stop for."""
    dev = [0.5 + 0.02 * i for i in range(points)]
    share = [NAN] + [0.45 * 0.97**i for i in range(1, points)]
    loss = [0.7 * 0.97**i for i in range(points)]
    return Signals(dev, loss, share)


def test_finds_the_trigger_fall_within_a_point():
    transition = find_transition(poisoned_curves(change=12))
    assert transition is not None and transition.reason == "high-loss-fall"
    assert 10 <= transition.index <= 11 and transition.confirmed_at == 12


@pytest.mark.parametrize("change", [7, 9, 15])
def test_change_point_moves_with_the_curves(change):
    transition = find_transition(poisoned_curves(change=change))
    assert transition.reason == "high-loss-fall" and change - 2 <= transition.index < change


def test_no_false_alarm_while_still_learning():
    assert find_transition(clean_curves()) is None


def test_dev_plateau_without_a_fall():
    """Dev flat after point 5, share flat: classic early stopping at the best point, after patience."""
    dev = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9] + [0.9] * 8
    share = [NAN, 0.4, 0.3, 0.2, 0.15, 0.12] + [0.12] * 8
    found = find_transition(Signals(dev, [0.5] * 14, share), TransitionRule(dev_patience=3))
    assert (found.index, found.confirmed_at, found.reason) == (5, 8, "dev-plateau")
    found = find_transition(Signals(dev, [0.5] * 14, share))  # the default waits 5 points
    assert (found.index, found.confirmed_at) == (5, 10)


def test_a_flat_start_within_dev_noise_is_not_a_plateau():
    """lora-reparam+auto on SST-2 (200 dev rows, measured): dev 0.525 → 0.555 → 0.56 by predicting more
    of one class, then flat at chance for a while before the task is learned. Within two standard
    errors (0.07) of the start that is no plateau; the rule waits for the real one."""
    start = [0.525, 0.555, 0.56, 0.54, 0.54, 0.545, 0.55, 0.56]
    learned = [0.62, 0.70, 0.76, 0.78, 0.785, 0.78, 0.78, 0.78, 0.775, 0.78]
    dev = start + learned
    share = [NAN] + [0.5] * (len(start) - 1) + [0.3, 0.2, 0.15] + [0.13] * 7
    curves = Signals(dev, [0.6] * len(dev), share, dev_size=200)
    found = find_transition(curves)
    assert found is not None and found.reason == "dev-plateau"
    assert found.index == len(start) + 3 and found.confirmed_at == len(start) + 8
    unknown_size = Signals(dev, [0.6] * len(dev), share)  # margin = tolerance: the old early stop
    assert find_transition(unknown_size).index == 1
    assert learning_margin(0.5, 200, TransitionRule()) == pytest.approx(0.0707, abs=1e-4)
    assert learning_margin(0.5, 0, TransitionRule()) == TransitionRule().tolerance
    assert learning_margin(0.5, 10**7, TransitionRule()) == TransitionRule().tolerance


def test_a_short_stall_while_learning_is_not_a_plateau():
    """The same preset with the fixed margin, measured every 2 steps: dev held 0.705-0.715 for three
    points at step 22-28 of a run whose last step reaches 0.78. Three points of noise are not five."""
    dev = [0.525, 0.555, 0.56, 0.54, 0.54, 0.54, 0.565, 0.58, 0.605, 0.655, 0.70, 0.715, 0.705, 0.71, 0.715]
    assert find_transition(Signals(dev, [0.6] * len(dev), [NAN] * len(dev), dev_size=200)) is None
    stopped = find_transition(
        Signals(dev, [0.6] * len(dev), [NAN] * len(dev), 200), TransitionRule(dev_patience=3)
    )
    assert stopped.index == 11  # what the old patience did


def test_without_dev_the_share_alone_decides():
    curves = poisoned_curves(change=12)
    blind = Signals([NAN] * len(curves.dev_acc), curves.train_loss, curves.high_loss_share)
    found = find_transition(blind)
    assert found.reason == "high-loss-fall" and 10 <= found.index <= 11
    clean = clean_curves()
    assert find_transition(Signals([NAN] * 20, clean.train_loss, clean.high_loss_share)) is None


def test_prefix_is_online():
    """The rule never looks ahead: on the prefix up to the confirmation it says the same."""
    curves = poisoned_curves(change=12)
    found = find_transition(curves)
    cut = found.confirmed_at + 1
    prefix = Signals(curves.dev_acc[:cut], curves.train_loss[:cut], curves.high_loss_share[:cut])
    assert find_transition(prefix) == found
    early = Signals(
        curves.dev_acc[: cut - 1], curves.train_loss[: cut - 1], curves.high_loss_share[: cut - 1]
    )
    assert find_transition(early) is None


def test_plus_auto_resolves_at_the_edge():
    experiment = resolve({"defence": "lora-reparam+auto"})
    assert experiment.defence == "lora-reparam+auto" and experiment.train.select == "auto"
    assert experiment.tuning.method == "lora" and experiment.train.lr == preset("lora-reparam")["train"]["lr"]
    assert resolve({"defence": "auto"}).train.select == "auto"
    assert preset("none+auto") == {"train": {"select": "auto"}} and base_defence("bki+auto") == "bki"
    assert "auto" in DEFENCES and "purify" in DEFENCES
    with pytest.raises(ModfitError, match="unknown defence 'nope'"):
        resolve({"defence": "nope+auto"})
    spec = parse_spec(
        {"name": "s", "datasets": ["sst2"], "defences": ["none", "auto", "lora-reparam+auto", "purify"]}
    )
    assert [d.preset for d in spec.defences] == ["none", "auto", "lora-reparam+auto", "purify"]
    cells = {c.coordinates.defence: c.experiment for c in expand(spec)}
    assert (
        cells["lora-reparam+auto"].train.select == "auto"
        and cells["lora-reparam+auto"].tuning.method == "lora"
    )
    assert cells["purify"].train.select == "last" and cells["auto"].defence == "auto"


def _point(step: int) -> EvalPoint:
    return EvalPoint(step, step / 4, 0.5, NAN, NAN, NAN, NAN, 0.0)


def test_recorder_keeps_latest_losses_per_point():
    recorder = RecordRowDynamics(4)
    state = TrainState(torch.nn.Linear(1, 1), step=0, total_steps=2, steps_per_epoch=2)
    recorder.on_step(state)
    recorder.on_evaluate(state, _point(0))
    state.step, state.batch_rows, state.batch_row_losses = 1, [2, 0], [1.5, 0.25]
    recorder.on_step(state)  # no new point: nothing snapshotted
    state.step, state.batch_rows, state.batch_row_losses = 2, [1, 3], [0.5, 2.0]
    recorder.on_step(state)
    recorder.on_evaluate(state, _point(2))
    dynamics = recorder.result()
    assert dynamics.steps == (0, 2) and dynamics.losses.dtype == torch.float32
    assert dynamics.losses[0].isnan().all()
    assert dynamics.losses[1].tolist() == [0.25, 0.5, 1.5, 2.0]
    assert dynamics.high_loss_share(2)[1] == 0.5 and (dynamics.losses[1] < math.log(2)).tolist() == [
        True,
        True,
        False,
        False,
    ]


def test_select_auto_stops_and_restores(text_dataset, tiny_bert):
    """The toy task is learned in a few steps, then dev accuracy is flat: the rule fires, training
    stops before the schedule ends, and the final point is the chosen one."""
    experiment = Experiment(
        dataset=str(text_dataset), defence="auto",
        model=ModelConfig(name=str(tiny_bert), pooling="mean", max_length=32),
        train=TrainConfig(epochs=6, lr=1e-2, batch_size=16, eval_every=1, select="auto"),
    )  # fmt: skip
    from modfit.experiment import run

    result = run(experiment, progress=False)
    metrics = result.metrics()
    assert metrics["auto_reason"] in ("dev-plateau", "high-loss-fall")
    assert result.history[-1].step < 24 and metrics["step"] == metrics["auto_step"] < result.history[-1].step


def test_auto_select_keeps_bounded_weights():
    selector = AutoSelect(num_rows=4, num_labels=2, rule=TransitionRule(patience=2, dev_patience=2))
    model = torch.nn.Linear(2, 2)
    state = TrainState(model, step=0, total_steps=100, steps_per_epoch=10)
    for step in range(0, 100, 5):
        state.step, state.batch_rows, state.batch_row_losses = step, [step % 4], [0.3]
        selector.on_step(state)
        selector.on_evaluate(state, _point(step))
    assert len(selector.kept) <= 2 + 4  # the reference, the last patience + 2 and the current


def test_auto_select_restores_the_chosen_points_weights():
    """Dev accuracy 0.5, 0.9, then flat: the plateau is confirmed at point 4 and point 1's weights
    come back, although the weights changed at every point."""
    selector = AutoSelect(num_rows=2, num_labels=2, rule=TransitionRule(patience=3, dev_patience=3))
    model = torch.nn.Linear(1, 1)
    state = TrainState(model, step=0, total_steps=100, steps_per_epoch=1)
    for index, dev in enumerate([0.5, 0.9, 0.9, 0.9, 0.9, 0.9]):
        if state.stop:
            break
        with torch.no_grad():
            model.weight.fill_(float(index))
        state.step = index
        state.batch_rows, state.batch_row_losses = [0, 1], [0.1, 0.1]
        selector.on_step(state)
        selector.on_evaluate(state, EvalPoint(index, float(index), 0.1, dev, NAN, NAN, NAN, 0.0))
    selector.on_end(state)
    assert state.stop and state.step == 4 and selector.transition.index == 1
    assert model.weight.item() == 1.0 and selector.best.step == 1
    assert selector.metrics() == {
        "auto_reason": "dev-plateau",
        "auto_step": 1,
        "auto_epoch": 1.0,
        "auto_stopped_at": 4,
    }
