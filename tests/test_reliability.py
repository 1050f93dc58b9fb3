"""Interruptions, owned output folders, typed options, the store's integrity and the Python API's
promise: the defect classes of the reliability issue, each pinned by a test."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import modfit.experiment
import modfit.training_run
from modfit import Experiment, ModfitError
from modfit.cli import build_parser, main, settings_from_args
from modfit.config import AttackConfig, TrainConfig, from_dict
from modfit.data import read_examples
from modfit.experiment import resolve
from modfit.store import exclusive_writer, open_store
from test_bad_inputs import finished_marks


def train_args(dataset, model, out, *extra: str) -> list[str]:
    return [
        "train", "--dataset", str(dataset), "--attack", "badnet", "--epochs", "1", "--lr", "1e-2",
        "--batch-size", "8", "--eval-every", "4", "--model", str(model), "--pooling", "mean",
        "--max-length", "32", "--quiet", "--out", str(out), *extra,
    ]  # fmt: skip


def interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


def assert_interrupted(code: int, capsys) -> None:
    err = capsys.readouterr().err
    assert code == 130
    assert err.count("\n") <= 3 and "Traceback" not in err, err


def test_ctrl_c_during_train_into_a_finished_folder_leaves_nothing_finished(
    tiny_bert, text_dataset, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    assert main(train_args(text_dataset, tiny_bert, out, "--save-model")) == 0
    assert (out / "metrics.json").exists() and (out / "model").is_dir()
    monkeypatch.setattr(modfit.training_run, "fit", interrupt)
    capsys.readouterr()
    assert_interrupted(main(train_args(text_dataset, tiny_bert, out, "--overwrite")), capsys)
    assert finished_marks(tmp_path) == [] and not (out / "model").exists()


def test_ctrl_c_during_scan_exits_130(tiny_bert, text_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(modfit.training_run, "fit", interrupt)
    argv = ["scan", *train_args(text_dataset, tiny_bert, tmp_path / "scan")[1:]]
    assert_interrupted(main(argv), capsys)
    assert finished_marks(tmp_path) == []


def test_ctrl_c_during_grid_leaves_the_cell_pending(tiny_bert, text_dataset, tmp_path, capsys, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: s\ndataset: {text_dataset}\nattacks: [badnet]\ndefences: [none]\n"
        f"model: {{name: {tiny_bert}, pooling: mean, max_length: 32}}\ntrain: {{epochs: 1, batch_size: 8}}\n"
    )
    monkeypatch.setattr(modfit.training_run, "fit", interrupt)
    store = tmp_path / "s.sqlite"
    assert_interrupted(main(["grid", str(spec), "--store", str(store), "--quiet"]), capsys)
    with open_store(store) as opened:
        assert set(opened.statuses().values()) == {"pending"}


def test_a_run_owns_its_folder(tiny_bert, text_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(text_dataset, tiny_bert, out, "--save-model")) == 0
    capsys.readouterr()
    assert main(train_args(text_dataset, tiny_bert, out)) == 2  # refused: it holds a run
    assert "not empty" in capsys.readouterr().err and (out / "model").is_dir()
    assert main(train_args(text_dataset, tiny_bert, out, "--overwrite")) == 0
    assert (out / "metrics.json").exists() and not (out / "model").exists()  # no old model beside new results


def test_saved_model_files_have_the_usual_permissions(tiny_bert, text_dataset, tmp_path):
    out = tmp_path / "run"
    assert main(train_args(text_dataset, tiny_bert, out, "--save-model")) == 0
    expected = stat.S_IMODE((out / "metrics.json").stat().st_mode)
    for path in (out / "model").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    assert stat.S_IMODE((out / "model").stat().st_mode) == 0o777 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_an_unwritable_out_is_refused_before_any_work(text_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(modfit.experiment, "prepare_data", interrupt)  # never reached
    monkeypatch.setattr("modfit.output.os.access", lambda *_: False)
    assert main(["poison", "--dataset", str(text_dataset), "--out", str(tmp_path / "p")]) == 2
    assert "is not writable" in capsys.readouterr().err


def _spec(tmp_path: Path, name: str, dataset: Path) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\ndataset: {dataset}\n")
    return path


def test_a_refused_grid_does_not_change_the_store(text_dataset, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    with open_store(store, create=True) as opened:
        opened.set_meta("name", "first")
        opened.set_meta("spec", "name: first\n")
    before = store.read_bytes()
    with exclusive_writer(store):  # another grid runs on it
        assert main(["grid", str(_spec(tmp_path, "first", text_dataset)), "--store", str(store)]) == 2
        assert "already running" in capsys.readouterr().err
    assert (
        main(["grid", str(_spec(tmp_path, "second", text_dataset)), "--store", str(store), "--dry-run"]) == 0
    )
    assert main(["grid", str(_spec(tmp_path, "second", text_dataset)), "--store", str(store)]) == 2
    assert "holds study 'first'" in capsys.readouterr().err
    assert store.read_bytes() == before
    with open_store(store) as opened:
        assert opened.meta()["name"] == "first" and opened.meta()["spec"] == "name: first\n"


def test_force_spec_runs_another_study_into_a_store(text_dataset, tmp_path, monkeypatch):
    import modfit.grid.runner

    store = tmp_path / "s.sqlite"
    with open_store(store, create=True) as opened:
        opened.set_meta("name", "first")
    monkeypatch.setattr(modfit.grid.runner.GridRun, "run_cell", interrupt)
    argv = ["grid", str(_spec(tmp_path, "second", text_dataset)), "--store", str(store), "--quiet"]
    assert main([*argv, "--force-spec"]) == 130  # accepted: it got as far as running a cell
    with open_store(store) as opened:
        assert opened.meta()["name"] == "second"


def test_key_value_options_are_read_as_their_type():
    parser = build_parser()

    def options(*pairs: str, attack: str = "addsent") -> dict:
        argv = ["train", "--out", "x", "--attack", attack]
        for pair in pairs:
            argv += ["--attack-option", pair]
        return settings_from_args(parser.parse_args(argv))["attack"]["options"]

    assert options("sentence=yes") == {"sentence": "yes"}
    assert options("sentence=None") == {"sentence": "None"}
    assert options("triggers=no", "num_triggers=3", attack="badnet") == {
        "triggers": ("no",),
        "num_triggers": 3,
    }
    assert options("triggers=[cf, mn]", attack="badnet") == {"triggers": ["cf", "mn"]}
    with pytest.raises(ModfitError, match="sentence is empty"):
        resolve({"attack": {"name": "addsent", "options": options("sentence=")}})


def test_a_yaml_or_json_lr_written_1e_5_is_a_float(tmp_path):
    for name, text in (("c.yaml", "train: {lr: 1e-5}\n"), ("c.json", '{"train": {"lr": 1e-5}}')):
        (tmp_path / name).write_text(text)
        args = build_parser().parse_args(["train", "--out", "x", "--config", str(tmp_path / name)])
        assert resolve(settings_from_args(args)).train.lr == 1e-5


def test_a_csv_with_a_utf8_bom_reads(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes("\ufefftext,label\ngood film,1\n".encode())
    assert [(e.text, e.label) for e in read_examples(path)] == [("good film", 1)]


def test_configs_are_valid_when_constructed():
    with pytest.raises(ModfitError, match="attack mode 'drity'"):
        AttackConfig(mode="drity")
    with pytest.raises(ModfitError, match="finite"):
        TrainConfig(epochs=float("inf"))
    with pytest.raises(ModfitError, match="finite"):
        from_dict(TrainConfig, {"lr": float("nan")})
    assert Experiment(attack={"rate": 0.2}).attack == AttackConfig(rate=0.2)


def test_run_applies_the_defence_preset_of_an_experiment_built_in_python(monkeypatch):
    seen = []
    learned = SimpleNamespace(learned_nothing=False)  # what `run` reads of the result it returns
    monkeypatch.setattr(
        modfit.experiment, "train_once", lambda experiment, *a, **k: seen.append(experiment) or learned
    )
    modfit.run(Experiment(defence="lower-lr"))
    modfit.run(Experiment(defence="lora-reparam", train=TrainConfig(batch_size=8)))
    modfit.run(resolve({"defence": "lower-lr", "train": {"lr": 3e-5}}))  # resolved: the user's lr stays
    assert [e.train.lr for e in seen] == [3.7e-5, 3e-4, 3e-5]
    assert seen[1].tuning.method == "lora" and seen[1].train.batch_size == 8
    with pytest.raises(ModfitError, match="unknown defence 'lowr-lr'"):
        modfit.run(Experiment(defence="lowr-lr"))


def test_hf_behind_an_unresponsive_proxy_fails_fast(monkeypatch):
    import modfit.data.hub

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections, never answers
    threading.Thread(target=silent.accept, daemon=True).start()
    proxy = f"http://127.0.0.1:{silent.getsockname()[1]}"
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, proxy)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(modfit.data.hub, "REACH_TIMEOUT_S", 0.5)
    with pytest.raises(ModfitError, match="did not answer within 0.5s"):
        modfit.data.hub._check_reachable("someone/something")  # what runs before `datasets` would retry
    silent.close()


def test_json_outputs_hold_null_for_missing_numbers(tiny_bert, text_dataset, tmp_path):
    out = tmp_path / "run"
    assert main(train_args(text_dataset, tiny_bert, out, "--attack", "none")) == 0
    for name in ("metrics.json", "config.json", "history.jsonl"):
        text = (out / name).read_text()
        assert "NaN" not in text and "Infinity" not in text, name
    assert json.loads((out / "metrics.json").read_text())["asr"] is None
