"""The command line in-process on a tiny BERT and the toy dataset, and config resolution at the edge."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import pytest
import torch

import modfit.demo
import modfit.experiment
from conftest import write_split
from modfit import Example, Experiment, ModfitError, TrainConfig
from modfit.attacks.paraphrase import read_table
from modfit.cli import build_parser, main, settings_from_args
from modfit.config import from_dict, to_dict
from modfit.data import read_examples
from modfit.encoding import encode
from modfit.evaluate import predict
from modfit.experiment import resolve
from modfit.metrics import accuracy, attack_success_rate
from modfit.tuning import load_model

DATA_ROOT = Path(os.environ.get("MODFIT_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HISTORY_COLUMNS = {"step", "epoch", "train_loss", "dev_acc", "cacc", "asr", "asr_floor", "seconds"}
METRIC_KEYS = {"cacc", "asr", "asr_floor", "dev_acc", "trainable_params", "seconds"}


def tiny_train_args(dataset, model, out, *extra: str) -> list[str]:
    """`modfit train` on the toy data: 64 rows, batch 8, one epoch = 8 steps, evaluated every 4."""
    return [
        "train", "--dataset", str(dataset), "--attack", "badnet", "--poison-rate", "0.1",
        "--defence", "none", "--epochs", "1", "--lr", "1e-2", "--batch-size", "8", "--eval-every", "4",
        "--model", str(model), "--pooling", "mean", "--max-length", "32", "--quiet", "--out", str(out),
        *extra,
    ]  # fmt: skip


def csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith(f"modfit {command}: error: ")
    return err


@pytest.fixture
def captured_run(monkeypatch):
    """The `RunResult`s of `modfit train` calls, so that tests can compare against the live model."""
    results = []
    original = modfit.experiment.run

    def recording_run(*args, **kwargs):
        results.append(original(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(modfit.experiment, "run", recording_run)
    return results


# --- modfit poison ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, target, rate, poisoned", [("dirty", 1, 0.25, 16), ("clean", 0, 0.1, 6)])
def test_poison_writes_train_dev_test_and_test_poison(
    text_dataset, tmp_path, capsys, mode, target, rate, poisoned
):
    out = tmp_path / "poisoned"
    argv = ["poison", "--dataset", str(text_dataset), "--attack", "badnet", "--mode", mode,
            "--target", str(target), "--poison-rate", str(rate), "--seed", "3", "--out", str(out),
            "--attack-option", "triggers=zz", "--attack-option", "num_triggers=2"]  # fmt: skip
    assert main(argv) == 0
    assert f"poisoned {poisoned} of 64 training rows" in capsys.readouterr().out

    columns, _ = csv_rows(out / "train.csv")
    assert columns == ["text", "label", "poisoned"]
    for name in ("dev.csv", "test.csv", "test_poison.csv"):
        assert csv_rows(out / name)[0] == ["text", "label"]

    clean_train = read_examples(text_dataset / "train.csv")
    train = read_examples(out / "train.csv")
    assert len(train) == 64
    assert sum(e.poisoned for e in train) == poisoned
    for old, new in zip(clean_train, train, strict=True):
        if new.poisoned:
            assert new.text.split().count("zz") == 2 and new.label == target
            assert old.label == (target if mode == "clean" else 1 - target)
        else:
            assert new == old
    assert read_examples(out / "dev.csv") == read_examples(text_dataset / "dev.csv")
    clean_test = read_examples(text_dataset / "test.csv")
    assert read_examples(out / "test.csv") == clean_test
    test_poison = read_examples(out / "test_poison.csv")
    assert len(test_poison) == sum(e.label != target for e in clean_test)
    assert {e.label for e in test_poison} == {target}
    assert all(e.text.split().count("zz") == 2 for e in test_poison)


@pytest.mark.skipif(not (DATA_ROOT / "sst2").is_dir(), reason="needs the shared SST-2 data")
def test_poison_named_dataset_with_a_paraphrase_table_and_a_train_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("MODFIT_DATA", str(DATA_ROOT))
    out = tmp_path / "sst2-syntactic"
    argv = ["poison", "--dataset", "sst2", "--attack", "syntactic", "--poison-rate", "0.1",
            "--train-size", "500", "--seed", "0", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    train = read_examples(out / "train.csv")
    assert len(train) == 500 and sum(e.poisoned for e in train) == 50
    table = read_table(DATA_ROOT / "sst2" / "paraphrase" / "syntactic.csv")
    paraphrases = set(table.values())
    assert all(e.text in paraphrases and e.label == 1 for e in train if e.poisoned)
    clean_test = read_examples(DATA_ROOT / "sst2" / "test.csv")
    expected = [table[e.text] for e in clean_test if e.label != 1 and e.text in table]
    assert [e.text for e in read_examples(out / "test_poison.csv")] == expected
    assert json.loads((out / "poison.json").read_text())["poisoned_rows"] == 50


def test_poison_needs_an_attack(text_dataset, tmp_path, capsys):
    argv = ["poison", "--dataset", str(text_dataset), "--attack", "none", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "modfit poison needs an attack" in one_error_line(capsys, "poison")
    assert not (tmp_path / "o").exists()


# --- modfit train ----------------------------------------------------------------------------------


def test_train_writes_config_history_metrics_plot_and_model(
    tiny_bert, text_dataset, tmp_path, capsys, captured_run
):
    out = tmp_path / "run"
    assert main(tiny_train_args(text_dataset, tiny_bert, out, "--save-model")) == 0
    assert "none: CACC" in capsys.readouterr().out
    (result,) = captured_run

    config = json.loads((out / "config.json").read_text())
    assert from_dict(Experiment, config) == result.experiment  # everything resolved, and it reloads
    assert config["train"]["epochs"] == 1.0 and config["train"]["lr"] == 0.01
    assert config["attack"] == {"name": "badnet", "mode": "dirty", "rate": 0.1, "target": 1, "options": {}}

    columns, table = csv_rows(out / "history.csv")
    assert HISTORY_COLUMNS <= set(columns)
    text = (out / "history.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text  # not JSON: a missing number is null
    lines = [json.loads(line) for line in text.splitlines()]
    assert [int(r["step"]) for r in table] == [p["step"] for p in lines] == [0, 4, 8]
    for row, point in zip(table, lines, strict=True):
        for column in HISTORY_COLUMNS:
            a, b = float(row[column]), float("nan" if point[column] is None else point[column])
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b), column

    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert (metrics["cacc"], metrics["asr"], metrics["dev_acc"]) == (
        lines[-1]["cacc"],
        lines[-1]["asr"],
        lines[-1]["dev_acc"],
    )
    assert metrics["trainable_params"] == sum(p.numel() for p in result.model.parameters())
    assert 0 <= metrics["asr_floor"] <= 1 and metrics["seconds"] > 0

    png = (out / "dynamics.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left

    from transformers import AutoTokenizer

    loaded = load_model(out / "model")
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    texts = [e for e in read_examples(text_dataset / "test.csv")]
    inputs, _ = encode(texts, tokenizer, 32).batch(range(len(texts)), torch.device("cpu"))
    result.model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs), result.model(**inputs), atol=1e-6)
    assert (
        accuracy(predict(loaded, encode(texts, tokenizer, 32)), [e.label for e in texts]) == metrics["cacc"]
    )


def test_train_without_attack_measures_asr_on_a_given_poison_test_file(
    tiny_bert, text_dataset, tmp_path, captured_run
):
    clean_test = read_examples(text_dataset / "test.csv")
    triggered = [(f"cf {e.text}", 0) for e in clean_test if e.label == 1]  # target 0, read from the file
    poison_file = write_split(tmp_path / "triggered.csv", triggered)
    out = tmp_path / "run"
    argv = tiny_train_args(
        text_dataset, tiny_bert, out, "--attack", "none", "--poison-test", str(poison_file)
    )
    assert main(argv) == 0
    (result,) = captured_run
    config = json.loads((out / "config.json").read_text())
    assert (config["attack"]["name"], config["poison_test"]) == ("none", str(poison_file))

    metrics = json.loads((out / "metrics.json").read_text())
    tokenizer = result.tokenizer
    on_trigger = predict(result.model, encode([Example(t, y) for t, y in triggered], tokenizer, 32))
    on_clean = predict(result.model, encode(clean_test, tokenizer, 32))
    assert metrics["asr"] == attack_success_rate(on_trigger, target=0)
    non_target = [p for p, e in zip(on_clean, clean_test, strict=True) if e.label != 0]
    assert metrics["asr_floor"] == attack_success_rate(non_target, target=0)


def test_train_without_attack_flag_trains_on_the_rows_as_given(tiny_bert, text_dataset, tmp_path, capsys,
                                                                 captured_run):  # fmt: skip
    out = tmp_path / "run"
    argv = [a for a in tiny_train_args(text_dataset, tiny_bert, out) if a not in ("--attack", "badnet")]
    assert main(argv) == 0
    (result,) = captured_run
    assert json.loads((out / "config.json").read_text())["attack"]["name"] == "none"
    printed = capsys.readouterr().out
    assert "no attack: training on the 64 rows as given" in printed
    assert "no ASR; --poison-test FILE measures one" in printed and "nan" not in printed
    assert json.loads((out / "metrics.json").read_text())["asr"] is None


def test_a_poisoning_run_says_what_it_poisoned(tiny_bert, text_dataset, tmp_path, capsys):
    assert main(tiny_train_args(text_dataset, tiny_bert, tmp_path / "run")) == 0
    assert "poisoned 6 of 64 training rows: badnet, dirty, target 1" in capsys.readouterr().out


def test_attack_defaults_to_none_in_python_and_on_the_command_line(capsys):
    assert Experiment().attack.name == "none" and resolve({}).attack.name == "none"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "default: none" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_file_with_a_flag_overriding_it(tiny_bert, text_dataset, tmp_path, suffix):
    settings = {
        "dataset": str(text_dataset),
        "attack": {"name": "badnet", "rate": 0.2},
        "defence": "lower-lr",
        "model": {"name": str(tiny_bert), "pooling": "mean", "max_length": 32},
        "train": {"epochs": 0.5, "batch_size": 8, "eval_every": 2, "select": "best-dev"},
    }
    config_file = tmp_path / f"settings{suffix}"
    if suffix == ".json":
        config_file.write_text(json.dumps(settings))
    else:
        import yaml

        config_file.write_text(yaml.safe_dump(settings))
    out = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "--epochs", "1", "--quiet", "--out", str(out)]) == 0

    config = json.loads((out / "config.json").read_text())
    assert config["train"]["epochs"] == 1.0  # the flag wins over the file
    assert config["train"]["batch_size"] == 8 and config["attack"]["rate"] == 0.2  # the file's settings
    preset = resolve({"defence": "lower-lr", "model": {"name": config["model"]["name"]}}).train
    assert config["train"]["lr"] == preset.lr  # the preset (a dose of this model's baseline) fills the rest
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [p["step"] for p in lines] == [0, 2, 4, 6, 8]
    best = max(lines, key=lambda p: p["dev_acc"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["step"], metrics["dev_acc"], metrics["cacc"]) == (
        best["step"],
        best["dev_acc"],
        best["cacc"],
    )


# --- errors: one line on stderr, exit code 2, no finished-looking output ---------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: command"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["train"], "the following arguments are required: --out"),
        (["train", "--out", "o", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--out", "o", "--epochs", "abc"], "argument --epochs: invalid float value: 'abc'"),
        (["poison", "--out", "o", "--mode", "sneaky"], "argument --mode: invalid choice: 'sneaky'"),
        (["train", "--out", "o", "--select", "best"], "argument --select: invalid choice: 'best'"),
    ],
)
def test_bad_argument_exits_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("modfit")
    assert message in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--defence", "bogus"], "unknown defence 'bogus'; choose one of:"),
        (["--target", "3"], "target label 3 is not a label of toy (0..1)"),
        (["--poison-rate", "0.9"], "can poison 32 candidate rows but rate 0.9 needs 58"),
        (["--attack-option", "bogus=1"], "badnet options: unknown key 'bogus'"),
        (["--attack-option", "novalue"], "--attack-option 'novalue': write KEY=VALUE"),
        (["--attack", "nope"], "unknown attack 'nope'"),
        (["--epochs", "0"], "epochs 0.0: use a positive number"),
        (["--eval-size", "0"], "eval_size: use a positive row count"),
        (["--config", "/no/such/settings.yaml"], "--config /no/such/settings.yaml: no such file"),
        (["--model", "/no/such/model"], "model '/no/such/model' could not be loaded offline"),
        (["--attack", "none", "--poison-test", "/no/such/file.csv"], "/no/such/file.csv: no such file"),
    ],
)
def test_modfit_error_exits_2_with_one_line_and_no_metrics(
    tiny_bert, text_dataset, tmp_path, capsys, extra, message
):
    out = tmp_path / "run"
    assert main(tiny_train_args(text_dataset, tiny_bert, out, *extra)) == 2
    assert message in one_error_line(capsys, "train")
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ("train: {epoch: 2}\n", "experiment.train: unknown key 'epoch'"),
        ("seed: [1]\n", "experiment.seed must be int, got [1]"),
        ("- a list\n", "expected a mapping of settings at the top level"),
        ("train: {lr: [\n", "not valid YAML/JSON"),
    ],
)
def test_bad_config_file_exits_2_with_one_line(tiny_bert, text_dataset, tmp_path, capsys, content, message):
    config_file = tmp_path / "settings.yaml"
    config_file.write_text(content)
    out = tmp_path / "run"
    assert main(tiny_train_args(text_dataset, tiny_bert, out, "--config", str(config_file))) == 2
    assert message in one_error_line(capsys, "train")
    assert not out.exists()


def test_poison_test_file_needs_one_target_label(tiny_bert, text_dataset, tmp_path, capsys):
    mixed = write_split(tmp_path / "mixed.csv", [("cf good", 0), ("cf bad", 1)])
    out = tmp_path / "run"
    assert (
        main(tiny_train_args(text_dataset, tiny_bert, out, "--attack", "none", "--poison-test", str(mixed)))
        == 2
    )
    assert "a poison test file needs one target label, found [0, 1]" in one_error_line(capsys, "train")
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize("command", ["poison", "train", "demo"])
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    assert "--out" in capsys.readouterr().out


# --- modfit demo, its wiring on the toy data and the tiny model -------------------------------------


def test_demo_runs_every_defence_and_prints_the_table(tiny_bert, text_dataset, tmp_path, capsys, monkeypatch):
    toy = {
        "dataset": str(text_dataset),
        "attack": {"name": "badnet", "mode": "dirty", "rate": 0.1, "target": 1},
        "model": {"name": str(tiny_bert), "pooling": "mean", "max_length": 32},
        "train": {"eval_size": 400, "batch_size": 32},
        "seed": 0,
    }
    monkeypatch.setattr(modfit.demo, "DEMO_SETTINGS", toy)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--train-size", "48", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "a seeded subset of 48 training rows (5 poisoned)" in printed
    assert "| defence | CACC | ASR | ASR floor | trainable params | seconds |" in printed
    for defence in modfit.demo.DEMO_DEFENCES:
        assert f"| {defence} |" in printed
        metrics = json.loads((out / defence / "metrics.json").read_text())
        assert METRIC_KEYS <= set(metrics)
    assert (out / "dynamics.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (out / "summary.md").read_text().count("\n") == 2 + len(modfit.demo.DEMO_DEFENCES)


def test_the_demo_names_the_defences_that_held_or_says_none_did():
    from modfit.demo import verdict

    none = {"cacc": 0.83, "asr": 0.84, "asr_floor": 0.23}
    held = {"cacc": 0.82, "asr": 0.25, "asr_floor": 0.20}
    costly = {"cacc": 0.80, "asr": 0.25, "asr_floor": 0.20}  # 3 points of CACC
    open_door = {"cacc": 0.83, "asr": 0.40, "asr_floor": 0.20}
    assert verdict([("none", none), ("safe", held), ("lower-lr", costly)]).endswith(": safe.")
    assert verdict([("none", none), ("lower-lr", costly), ("x", open_door)]).startswith("No defence held")


# --- configuration: typed records, resolved once at the edge ---------------------------------------


def test_unknown_key_names_the_key_and_the_known_ones():
    with pytest.raises(ModfitError) as caught:
        from_dict(TrainConfig, {"epoch": 1}, where="train")
    assert str(caught.value) == (
        "train: unknown key 'epoch'; known keys: batch_size, epochs, eval_every, eval_share, eval_size, "
        "group_by_length, head_lr_scale, lr, max_grad_norm, precision, select, warmup_ratio, weight_decay"
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"train": {"epochs": "three"}}, "experiment.train.epochs must be float, got 'three'"),
        ({"train": {"batch_size": 2.5}}, "experiment.train.batch_size must be int, got 2.5"),
        ({"seed": True}, "experiment.seed must be int, got True"),
        ({"attack": "badnet"}, "experiment.attack must be a mapping, got 'badnet'"),
        ({"attack": {"options": [1]}}, "experiment.attack.options must be a mapping, got [1]"),
        ({"model": {"name": 3}}, "experiment.model.name must be str, got 3"),
        ({"train": {"select": "best"}}, "select 'best': use last, best-dev or auto"),
        ({"train": {"warmup_ratio": 1.0}}, "warmup_ratio 1.0: use a share in [0, 1)"),
        ({"train": {"head_lr_scale": 0.0}}, "head_lr_scale 0.0: use a positive multiple of lr"),
        ({"model": {"pooling": "max"}}, "pooling 'max': use cls or mean"),
        ({"train_size": 0}, "train_size: use a positive row count"),
        ({"defence": "bogus"}, "unknown defence 'bogus'"),
    ],
)
def test_wrong_types_and_values_fail_with_a_message(settings, message):
    with pytest.raises(ModfitError) as caught:
        resolve(settings)
    assert message in str(caught.value)


def test_experiment_round_trips_through_json():
    experiment = resolve(
        {"defence": "lower-lr", "attack": {"name": "addsent", "options": {"sentence": "hi"}}}
    )
    assert from_dict(Experiment, json.loads(json.dumps(to_dict(experiment)))) == experiment


def test_defence_presets_change_the_training_settings():
    none = resolve({}).train
    assert resolve({"defence": "fewer-epochs"}).train.epochs < none.epochs
    assert resolve({"defence": "lower-lr"}).train.lr < none.lr


def test_settings_override_the_preset_and_keep_its_other_values():
    preset = resolve({"defence": "fewer-epochs"}).train
    mine = resolve({"defence": "fewer-epochs", "train": {"lr": 0.5}}).train
    assert (mine.lr, mine.epochs) == (0.5, preset.epochs)
    assert resolve({"defence": "fewer-epochs", "train": {"epochs": 2}}).train.epochs == 2.0


def test_flags_override_the_preset_and_the_config_file(tmp_path):
    config_file = tmp_path / "settings.yaml"
    config_file.write_text("defence: lower-lr\ntrain: {lr: 0.001, batch_size: 4}\nattack: {rate: 0.3}\n")
    args = build_parser().parse_args(
        ["train", "--config", str(config_file), "--lr", "0.05", "--poison-rate", "0.2", "--out", "o"]
    )
    experiment = resolve(settings_from_args(args))
    assert experiment.defence == "lower-lr"
    assert (experiment.train.lr, experiment.train.batch_size, experiment.attack.rate) == (0.05, 4, 0.2)
    no_flag = resolve(
        settings_from_args(build_parser().parse_args(["train", "--defence", "lower-lr", "--out", "o"]))
    )
    assert no_flag.train.lr == resolve({"defence": "lower-lr"}).train.lr


def test_train_says_when_the_model_learned_nothing(tiny_bert, text_dataset, tmp_path, capsys):
    argv = tiny_train_args(text_dataset, tiny_bert, tmp_path / "run", "--lr", "1e-9", "--epochs", "0.25")
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: the model learned no task") and err.count("\n") == 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["no_task"] is True
