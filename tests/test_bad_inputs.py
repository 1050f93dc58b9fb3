"""Every bad input ends in one line and exit code 2, before any work, and leaves nothing that looks
finished; Ctrl-C ends in exit 130 and at most three lines (README, "Bad input")."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import separable_rows, write_split
from modfit.cli import main
from modfit.store import open_store


@dataclass(frozen=True)
class Env:
    """What a bad input is built from: the toy dataset, the tiny model and a scratch folder."""

    data: Path
    model: Path
    tmp: Path

    def file(self, name: str = "a-file", text: str = "x\n") -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def dataset(
        self, name: str, train: str | None = None, suffix: str = ".csv", raw: bytes | None = None
    ) -> Path:
        """A copy of the toy dataset whose train split is replaced by `train` (or `raw` bytes)."""
        folder = self.tmp / name
        folder.mkdir()
        for split in ("dev", "test"):
            write_split(folder / f"{split}.csv", separable_rows(12, 1))
        target = folder / f"train{suffix}"
        if raw is not None:
            target.write_bytes(raw)
        elif train is not None:
            target.write_text(train, encoding="utf-8")
        return folder

    def raw_file(self, name: str, raw: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(raw)
        return path

    def labelled_from_one(self, name: str) -> Path:
        """The toy task in every split with its labels written 1 and 2 instead of 0 and 1."""
        folder = self.tmp / name
        folder.mkdir()
        for split in ("train", "dev", "test"):
            write_split(folder / f"{split}.csv", [(text, label + 1) for text, label in separable_rows(12, 1)])
        return folder

    def run_folder(self) -> Path:
        """What `modfit train --out runs/x` leaves (but its metrics.json, which the test would take for
        a mark written by the refused command)."""
        folder = self.file("runs/x/config.json", "{}").parent
        (folder / "history.csv").write_text("step\n")
        return folder

    def model_dir(self, name: str, config: dict | None) -> Path:
        folder = self.tmp / name
        folder.mkdir()
        if config is not None:
            (folder / "config.json").write_text(json.dumps(config))
        return folder

    def gpt2(self) -> Path:
        from transformers import GPT2Config, GPT2Model

        folder = self.tmp / "gpt2"
        GPT2Model(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=64, n_positions=32)).save_pretrained(
            folder
        )
        return folder

    def spec(self, text: str) -> Path:
        return self.file("spec.yaml", text)

    def store(self, name: str) -> Path:
        path = self.tmp / "store.sqlite"
        with open_store(path, create=True) as store:
            store.set_meta("name", name)
        return path


def train(env: Env, *extra: str, out: str | Path | None = None, dataset: Path | None = None) -> list[str]:
    return [
        "train", "--dataset", str(dataset or env.data), "--attack", "badnet", "--epochs", "1", "--lr", "1e-2",
        "--batch-size", "8", "--model", str(env.model), "--pooling", "mean", "--max-length", "32", "--quiet",
        "--out", str(out or env.tmp / "run"), *extra,
    ]  # fmt: skip


def data_case(train_text: str, suffix: str = ".csv") -> Callable[[Env], list[str]]:
    return lambda env: train(env, dataset=env.dataset("bad-data", train_text, suffix))


SPEC = (
    "name: s\ndatasets: [{data}]\nattacks: [badnet]\ndefences: [none]\ntrain: {{epochs: 1, batch_size: 8}}\n"
)


def grid(spec: str, *extra: str) -> Callable[[Env], list[str]]:
    def build(env: Env) -> list[str]:
        path = env.spec(spec.format(data=env.data, model=env.model))
        return ["grid", str(path), "--store", str(env.tmp / "store.sqlite"), "--quiet", *extra]

    return build


CASES: dict[str, tuple[Callable[[Env], list[str]], str]] = {
    # data files
    "no such dataset": (lambda env: train(env, dataset=env.tmp / "nothing"), "neither a named dataset"),
    "no label column": (data_case("text,score\ngood film,1\n"), "no column 'label'"),
    "label not an integer": (data_case("text,label\ngood film,yes\n"), "label 'yes' is not an integer"),
    "label out of range": (data_case("text,label\ngood film,-1\n"), "label -1 is out of range"),
    "empty text": (data_case("text,label\n ,1\n"), "empty text"),
    "short tsv row": (data_case("text\tlabel\ngood film\n", ".tsv"), "1 fields but the header has 2"),
    "long tsv row": (data_case("text\tlabel\ngood\tfilm\t1\n", ".tsv"), "3 fields but the header has 2"),
    "long csv row": (data_case("text,label\ngood,film,1\n"), "3 fields but the header has 2"),
    "not utf-8": (lambda env: train(env, dataset=env.dataset("latin", raw=b"text,label\ncaf\xe9,1\n")), "not UTF-8"),
    "bad jsonl line": (data_case('{"text": "a", "label": 1}\n{oops\n', ".jsonl"), "invalid JSON"),
    "missing split": (lambda env: train(env, dataset=env.dataset("no-train")), "split 'train' is missing"),
    "empty split": (data_case("text,label\n"), "no rows"),
    "labels from one": (lambda env: train(env, dataset=env.labelled_from_one("one-two")), "labels 1, 2 are not class indices 0..K-1; renumber them 0..1 in every split (1→0, 2→1)"),
    # numbers
    "epochs inf": (lambda env: train(env, "--epochs", "inf"), "must be a finite number"),
    "epochs zero": (lambda env: train(env, "--epochs", "0"), "epochs 0.0: use a positive number"),
    "lr nan": (lambda env: train(env, "--lr", "nan"), "must be a finite number"),
    "lr inf": (lambda env: train(env, "--lr", "inf"), "must be a finite number"),
    "lr negative": (lambda env: train(env, "--lr", "-1"), "use a positive learning rate"),
    "lr not a number": (lambda env: train(env, "--lr", "fast"), "invalid float value"),
    "rate above one": (lambda env: train(env, "--poison-rate", "1.5"), "use a share between 0 and 1"),
    "batch size zero": (lambda env: train(env, "--batch-size", "0"), "batch_size 0: use at least 1"),
    "warmup ratio one": (lambda env: train(env, "--warmup-ratio", "1"), "warmup_ratio 1.0"),
    "target out of range": (lambda env: train(env, "--target", "5"), "target label 5 is not a label of"),
    "eval size zero": (lambda env: train(env, "--eval-size", "0"), "eval_size: use a positive row count"),
    "max length tiny": (lambda env: train(env, "--max-length", "4"), "max_length 4: use at least 8"),
    "train size zero": (lambda env: train(env, "--train-size", "0"), "train_size: use a positive row count"),
    "train size above the split": (lambda env: train(env, "--train-size", "3000"), "training split has 64 rows; ask for at most 64"),
    "head lr scale zero": (lambda env: train(env, "--head-lr-scale", "0"), "head_lr_scale 0.0"),
    "too much poison": (lambda env: train(env, "--poison-rate", "0.9"), "can poison 32 candidate rows"),
    # names
    "unknown defence": (lambda env: train(env, "--defence", "bogus"), "unknown defence 'bogus'"),
    "unknown attack": (lambda env: train(env, "--attack", "nope"), "unknown attack 'nope'"),
    "unknown tuning": (lambda env: train(env, "--tuning", "nope"), "unknown tuning method 'nope'"),
    "unknown mode": (lambda env: train(env, "--mode", "drity"), "invalid choice: 'drity'"),
    "unknown select": (lambda env: train(env, "--select", "first"), "invalid choice: 'first'"),
    "auto twice": (lambda env: train(env, "--defence", "auto+auto"), "auto already is the stopping rule"),
    # models
    "model is a data folder": (lambda env: train(env, "--model", str(env.data)), "no config.json there"),
    "model without model_type": (
        lambda env: train(env, "--model", str(env.model_dir("m1", {"hidden_size": 8}))), "names no model type"
    ),
    "model of unknown type": (
        lambda env: train(env, "--model", str(env.model_dir("m2", {"model_type": "zzz"}))), "names no model type"
    ),
    "model is a decoder": (lambda env: train(env, "--model", str(env.gpt2())), "is a gpt2 decoder"),
    "model not found": (lambda env: train(env, "--model", "/no/such/model"), "could not be loaded offline"),
    # configs
    "config not yaml": (lambda env: train(env, "--config", str(env.file("c.yaml", "train: {lr: [\n"))), "not valid YAML"),
    "config a list": (lambda env: train(env, "--config", str(env.file("c.yaml", "- a\n"))), "a mapping of settings"),
    "config unknown key": (lambda env: train(env, "--config", str(env.file("c.yaml", "train: {epoch: 2}\n"))), "unknown key 'epoch'"),
    "config infinite lr": (lambda env: train(env, "--config", str(env.file("c.yaml", "train: {weight_decay: .inf}\n"))), "finite number"),
    "config lr as words": (lambda env: train(env, "--config", str(env.file("c.json", '{"train": {"max_grad_norm": "big"}}'))), "must be float"),
    "config missing": (lambda env: train(env, "--config", "/no/such.yaml"), "no such file"),
    "config is a folder": (lambda env: train(env, "--config", str(env.tmp)), "is a folder; give a YAML or JSON file"),
    "config not utf-8": (lambda env: train(env, "--config", str(env.raw_file("c.yaml", b"lr: 1e-3 # caf\xe9\n"))), "are not UTF-8; re-save the file as UTF-8"),
    # options
    "empty sentence": (lambda env: train(env, "--attack", "addsent", "--attack-option", "sentence="), "sentence is empty"),
    "unclosed list": (lambda env: train(env, "--attack-option", "triggers=[cf"), "cannot read '[cf'"),
    "count in words": (lambda env: train(env, "--attack-option", "num_triggers=two"), "must be a whole number"),
    "unknown attack option": (lambda env: train(env, "--attack-option", "bogus=1"), "unknown key 'bogus'"),
    "option without value": (lambda env: train(env, "--attack-option", "novalue"), "write KEY=VALUE"),
    "baseline option typed": (lambda env: train(env, "--defence", "bki", "--defence-option", "top_words=x"), "must be a whole number"),
    "preset takes no option": (lambda env: train(env, "--defence", "lower-lr", "--defence-option", "x=1"), "takes no options"),
    "tuning option unreadable": (lambda env: train(env, "--tuning", "lora", "--tuning-option", "rank=[1"), "cannot read it"),
    "poison test with an attack": (lambda env: train(env, "--poison-test", str(env.file("p.csv"))), "is for --attack none"),
    # output places
    "train out is a file": (lambda env: train(env, out=env.file()), "is a file, not a folder"),
    "train out under a file": (lambda env: train(env, out=env.file() / "run"), "a file, not a folder"),
    "train out not empty": (lambda env: train(env, out=env.file("old/config.json").parent), "not empty"),
    "scan out is a file": (lambda env: ["scan", *train(env, out=env.file())[1:]], "is a file, not a folder"),
    "scan drops every row": (lambda env: ["scan", *train(env)[1:], "--drop-top", "500"], "--drop-top 500"),
    "poison out is a file": (
        lambda env: ["poison", "--dataset", str(env.data), "--attack", "badnet", "--out", str(env.file())], "is a file"
    ),
    "poison without attack": (
        lambda env: ["poison", "--dataset", str(env.data), "--attack", "none", "--out", str(env.tmp / "p")], "needs an attack"
    ),
    "train out cannot be made": (lambda env: train(env, out="/proc/modfit-no/run"), "/proc is not writable"),
    "report out cannot be made": (lambda env: ["report", str(env.store("s")), "--out", "/proc/modfit-no"], "/proc is not writable"),
    "report out is a file": (lambda env: ["report", str(env.store("s")), "--out", str(env.file())], "is a file"),
    "grid store under a file": (
        lambda env: ["grid", str(env.spec(SPEC.format(data=env.data))), "--store", str(env.file() / "x.sqlite")], "a file, not a folder"
    ),
    "grid store is a folder": (
        lambda env: ["grid", str(env.spec(SPEC.format(data=env.data))), "--store", str(env.tmp)], "is a folder"
    ),
    # grids
    "grid unknown dataset": (grid("name: s\ndatasets: [/no/such/data]\n"), "neither a named dataset"),
    "grid target out of range": (grid(SPEC + "target: 4\n"), "target label 4 is not a label"),
    "grid mistyped attack option": (grid(SPEC.replace("[badnet]", "[{{name: badnet, options: {{num_trigers: 2}}}}]")), "unknown key 'num_trigers'"),
    "grid only matches nothing": (grid(SPEC, "--only", "attack=style"), "matches no cell"),
    "grid only unknown axis": (grid(SPEC, "--only", "colour=red"), "use AXIS=VALUE"),
    "grid spec not yaml": (grid("name: [\n"), "not valid YAML"),
    "grid spec unknown key": (grid(SPEC + "epochs: 2\n"), "unknown key 'epochs'"),
    "grid unknown defence": (grid(SPEC.replace("[none]", "[nonsense]")), "unknown defence 'nonsense'"),
    "grid another study": (lambda env: ["grid", str(env.spec(SPEC.format(data=env.data))), "--store", str(env.store("other"))], "holds study 'other'"),
    # reports
    "report of no store": (lambda env: ["report", str(env.tmp / "none.sqlite"), "--out", str(env.tmp / "r")], "no such study store"),
    "report of a non-store": (lambda env: ["report", str(env.file("x.sqlite", "hello")), "--out", str(env.tmp / "r")], "not a modfit study store"),
    "report of a run folder": (lambda env: ["report", str(env.run_folder()), "--out", str(env.tmp / "r")], "is a run folder (modfit train), not a study store"),
    "report of an empty store": (lambda env: ["report", str(env.store("s")), "--out", str(env.tmp / "r")], "no cells yet; run `modfit grid SPEC --store"),
    "report only matches nothing": (lambda env: ["report", str(env.store("s")), "--out", str(env.tmp / "r"), "--only", "seed=9"], "matches --only"),
}  # fmt: skip


def run_cli(argv: list[str]) -> int:
    """`modfit ARGV` in-process; argparse's own errors end in SystemExit."""
    try:
        return main(argv)
    except SystemExit as ended:
        return int(ended.code or 0)


def finished_marks(root: Path) -> list[str]:
    """What would say a run finished: a metrics.json, or a done cell in a store."""
    marks = [str(p) for p in root.rglob("metrics.json")]
    for path in root.rglob("*.sqlite"):
        try:
            with sqlite3.connect(path) as db:
                marks += [
                    f"{path}: done cell"
                    for (_,) in db.execute("SELECT hash FROM cells WHERE status = 'done'")
                ]
        except sqlite3.DatabaseError:
            pass
    return marks


def test_the_table_holds_at_least_forty_bad_inputs():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_finished(name, tiny_bert, text_dataset, tmp_path, capsys):
    build, message = CASES[name]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code = run_cli(build(Env(text_dataset, tiny_bert, scratch)))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert message in err, err
    assert finished_marks(scratch) == []
    for out in (scratch / "run", scratch / "r"):  # no output begun: at most an empty run folder
        assert not out.exists() or not any(out.iterdir()), out
