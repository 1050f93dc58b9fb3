"""Study specs expand to cells; the grid runs them into a store, resumes, and survives failures."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from modfit.cli import main
from modfit.data import Example
from modfit.encoding import encode
from modfit.errors import ModfitError
from modfit.grid import config_hash, expand, parse_spec, run_grid
from modfit.grid.reuse import TokenCache
from modfit.store import open_store


def tiny_spec(model: Path, dataset: Path, **extra) -> dict:
    """A study of tiny runs: 64 training rows, 4 steps, 12 evaluation rows."""
    return {
        "name": "tiny",
        "dataset": str(dataset),
        "model": {"name": str(model), "pooling": "mean"},
        "train": {"epochs": 1, "lr": 1e-3, "batch_size": 16, "eval_every": 2},
        "eval_size": 12,
        "attacks": ["badnet"],
        **extra,
    }


def test_spec_expands_the_cross_product_less_the_excluded_cells():
    spec = parse_spec(
        {
            "datasets": ["sst2", "hsol"],
            "attacks": [
                "badnet",
                {"name": "addsent", "options": {"sentence": "I watch"}, "label": "addsent-short"},
            ],
            "defences": [
                "none",
                "fewer-epochs",
                {"name": "slow", "preset": "lower-lr", "train": {"lr": 1e-6}},
            ],
            "rates": [0.05, 0.1],
            "seeds": [0, 1],
            "train": {"epochs": 2.0},
            "train_size": 500,
            "exclude": [{"dataset": "hsol", "attack": "addsent-short"}, {"rate": 0.05, "defence": ["slow"]}],
        }
    )
    cells = expand(spec)
    # 2 × 2 × 3 × 2 × 2 = 48, less hsol × addsent (12), less rate 0.05 × slow on what is left (2 × 3 = 6)
    assert len(cells) == 48 - 12 - 6
    assert not [
        c for c in cells if c.coordinates.dataset == "hsol" and c.coordinates.attack == "addsent-short"
    ]
    assert not [c for c in cells if c.coordinates.rate == 0.05 and c.coordinates.defence == "slow"]
    by_defence = {c.coordinates.defence: c.experiment for c in cells if c.coordinates.seed == 1}
    assert by_defence["none"].train.epochs == 2.0  # the shared setting
    # a preset overrides the shared settings: 0.373 of the packaged baseline's 2 epochs, to 0.05
    assert by_defence["fewer-epochs"].train.epochs == 0.75
    assert by_defence["slow"].train.lr == 1e-6 and by_defence["slow"].defence == "lower-lr"
    addsent = next(c.experiment for c in cells if c.coordinates.attack == "addsent-short")
    assert addsent.attack.options == {"sentence": "I watch"} and addsent.train_size == 500
    assert {c.experiment.seed for c in cells} == {0, 1}
    assert [c.coordinates.dataset for c in cells][:1] == ["sst2"]  # run order: dataset outermost


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"attack": "badnet", "atacks": ["badnet"]}, "unknown key 'atacks'"),
        ({"defences": ["none", "no-such-defence"]}, "unknown defence 'no-such-defence'"),
        ({"attacks": ["badnet", "nope"]}, "unknown attack 'nope'"),
        ({"datasets": []}, "'datasets' must be a non-empty list"),
        ({"modes": ["filthy"]}, "mode 'filthy'"),
        ({"seeds": [0, 0]}, "seeds lists 0 twice"),
        ({"exclude": [{"attack": "addsent"}]}, "exclude[0] {'attack': 'addsent'} matches no cell"),
        ({"exclude": [{"atack": "badnet"}]}, "exclude[0]: unknown key 'atack'"),
        ({"train": {"epoch": 1}}, "unknown key 'epoch'"),
        ({"train": 3, "eval_size": 10}, "'train' must be a mapping"),
        ({"exclude": [{"attack": "badnet"}]}, "every cell is excluded"),
    ],
)
def test_bad_specs_fail_with_one_line_naming_the_problem(change, message):
    data = {"name": "s", "datasets": ["sst2"], "attacks": ["badnet"], **change}
    with pytest.raises(ModfitError) as caught:
        expand(parse_spec(data, "study.yaml"))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_settings_added_later_stay_out_of_the_hash_at_their_default():
    def cell(**train):
        return expand(parse_spec({"datasets": ["sst2"], "attacks": ["badnet"], "train": train}))[0]

    default = cell().config()["experiment"]
    assert "defence_options" not in default and "head_lr_scale" not in default["train"]
    assert cell(head_lr_scale=10.0).config()["experiment"]["train"]["head_lr_scale"] == 10.0
    assert cell(head_lr_scale=10.0).hash != cell().hash == cell(head_lr_scale=1.0).hash


def test_the_hash_does_not_depend_on_key_order():
    one = {"experiment": {"dataset": "sst2", "train": {"lr": 2e-5, "epochs": 3.0}}, "representations": None}
    other = {"representations": None, "experiment": {"train": {"epochs": 3.0, "lr": 2e-5}, "dataset": "sst2"}}
    assert config_hash(one) == config_hash(other)
    assert config_hash(one) != config_hash({**one, "representations": {"sample": 10}})
    spec = {"datasets": ["sst2"], "attacks": ["badnet"], "train": {"lr": 1e-3, "epochs": 1}, "seeds": [0, 1]}
    reordered = {
        "seeds": [0, 1],
        "train": {"epochs": 1, "lr": 1e-3},
        "attacks": ["badnet"],
        "datasets": ["sst2"],
    }
    assert [c.hash for c in expand(parse_spec(spec))] == [c.hash for c in expand(parse_spec(reordered))]


def test_the_token_cache_gives_what_encode_gives(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    rows = [Example("the good movie", 1), Example("a bad plot cf", 0), Example("the good movie", 1)]
    cache = TokenCache()
    first = cache.encode(rows[:2], tokenizer, 16)
    again = cache.encode(rows, tokenizer, 16)
    assert cache.tokenised == 2  # each distinct text once
    assert again.columns == encode(rows, tokenizer, 16).columns and again.labels == [1, 0, 1]
    assert first.columns == encode(rows[:2], tokenizer, 16).columns


def test_identical_cells_run_once_and_rerun_adds_only_new_cells(tiny_bert, text_dataset, tmp_path):
    # without an attack, rate means nothing: both rates are one cell
    spec = tiny_spec(tiny_bert, text_dataset, attacks=["none"], rates=[0.1, 0.2])
    cells = expand(parse_spec(spec))
    assert len(cells) == 2 and len({c.hash for c in cells}) == 1
    with open_store(tmp_path / "study.sqlite", create=True) as store:
        first = run_grid(cells, store, progress=False, log=lambda line: None)
        assert (first.distinct, first.ran) == (1, 1)
        bigger = expand(parse_spec({**spec, "seeds": [0, 1]}))
        second = run_grid(bigger, store, progress=False, log=lambda line: None)
        assert (second.already_done, second.ran) == (1, 1)
        stored = store.cells()
    assert len(stored) == 4 and {c.status for c in stored} == {"done"}
    assert {c.hash: c.attempts for c in stored} == {bigger[0].hash: 1, bigger[2].hash: 1}


def test_a_failing_cell_is_recorded_and_the_next_cell_runs(tiny_bert, text_dataset, tmp_path, capsys):
    # the toy dataset has no paraphrase table, so `syntactic` fails before training
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(tiny_bert, text_dataset, attacks=["syntactic", "badnet"])))
    store_file = tmp_path / "study.sqlite"
    assert main(["grid", str(spec_file), "--store", str(store_file), "--quiet"]) == 1
    with open_store(store_file) as store:
        by_attack = {c.attack: c for c in store.cells()}
    assert by_attack["syntactic"].status == "failed"
    assert "no paraphrase table" in by_attack["syntactic"].error
    assert by_attack["badnet"].status == "done" and 0.0 <= by_attack["badnet"].metrics["cacc"] <= 1.0
    assert len(by_attack["badnet"].history) == 3  # steps 0, 2, 4
    out = capsys.readouterr()
    assert "failed toy · syntactic" in out.out and "done toy · badnet" in out.out


def test_a_bad_spec_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text("datasets: [sst2]\ndefences: [nope]\n")
    assert main(["grid", str(spec_file), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("modfit grid: error:") and "unknown defence 'nope'" in err and "\n" not in err
    assert not (tmp_path / "s.sqlite").exists()


KILLING_GRID = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from modfit.grid import expand, read_spec, run_grid
    from modfit.store import open_store

    class KillMidCell:
        '''SIGKILL this process (no clean-up of any kind) at step 2 of the seed-1 cell.'''
        def __init__(self, cell):
            self.cell = cell
        def on_step(self, state):
            if state.step == 2 and self.cell.coordinates.seed == 1:
                os.kill(os.getpid(), signal.SIGKILL)
        def on_end(self, state):
            pass

    cells = expand(read_spec(sys.argv[1]))
    with open_store(sys.argv[2], create=True) as store:
        run_grid(cells, store, progress=False, callbacks=lambda cell: [KillMidCell(cell)])
    """
)


def test_a_grid_killed_mid_cell_resumes_with_every_cell_once(tiny_bert, text_dataset, tmp_path):
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(tiny_spec(tiny_bert, text_dataset, seeds=[0, 1, 2])))
    store_file = tmp_path / "study.sqlite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLING_GRID, str(spec_file), str(store_file)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with sqlite3.connect(store_file) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with open_store(store_file) as store:
        assert [c.status for c in store.cells()] == ["done", "running", "pending"]
        summary = run_grid(expand(parse_spec(yaml.safe_load(spec_file.read_text()))), store, progress=False,
                           log=lambda line: None)  # fmt: skip
        cells = store.cells()
        rows = store.connection.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    assert summary.ran == 2 and rows == 3
    assert [(c.seed, c.status, c.attempts) for c in cells] == [(0, "done", 1), (1, "done", 2), (2, "done", 1)]


def test_representations_are_recorded_at_start_middle_and_end(tiny_bert, text_dataset, tmp_path):
    spec = tiny_spec(tiny_bert, text_dataset, representations={"sample": 10, "cells": [{"defence": "none"}]},
                     defences=["none", "fewer-epochs"])  # fmt: skip
    cells = expand(parse_spec(spec))
    assert [c.representations is not None for c in cells] == [True, False]
    with open_store(tmp_path / "study.sqlite", create=True) as store:
        run_grid(cells, store, progress=False, log=lambda line: None)
        snapshots = store.snapshots(cells[0].hash)
        assert store.snapshots(cells[1].hash) == []
    assert [s.step for s in snapshots] == [0, 2, 4]
    first = snapshots[0]
    assert (
        first.vectors.shape == (10, 32) and sum(first.poisoned) == 5
    )  # 64 rows × 10 % = 6 poisoned, 5 sampled
    assert (snapshots[0].vectors != snapshots[-1].vectors).any()


def test_a_model_without_features_is_skipped_with_a_note():
    import torch

    from modfit.representations import Representations
    from modfit.train import TrainState

    recorder = Representations(rows=None, poisoned=[], checkpoints=(0.0, 1.0))
    state = TrainState(torch.nn.Linear(2, 2), step=0, total_steps=4, steps_per_epoch=4)
    recorder.on_step(state)
    recorder.on_end(state)
    assert recorder.snapshots == [] and "Linear has no features method" in recorder.note


def test_only_runs_a_part_of_the_study(tmp_path, capsys):
    spec_file = tmp_path / "study.yaml"
    spec = {"name": "parts", "datasets": ["sst2"], "attacks": ["badnet", "addsent", "style"],
            "defences": ["none", "fewer-epochs"], "seeds": [0, 1]}  # fmt: skip
    spec_file.write_text(yaml.safe_dump(spec))
    argv = ["grid", str(spec_file), "--store", str(tmp_path / "s.sqlite"), "--dry-run"]
    assert main([*argv, "--only", "attack=addsent,style", "--only", "seed=1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "4 cells, 4 distinct"
    assert all(" · seed 1" in line and ("addsent" in line or "style" in line) for line in lines[:-1])
    assert main([*argv, "--only", "colour=red"]) == 2
    assert "--only 'colour=red': use AXIS=VALUE" in capsys.readouterr().err
