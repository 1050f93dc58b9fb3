"""README "Your own data", run as written: the commands are read from the section's code blocks, so
the README cannot drift from what modfit does. Only the size changes: each `modfit train` gets flags
appended that put a tiny random BERT and a few steps in place of the packaged MiniLM's defaults."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import re
import shlex
from pathlib import Path

import pytest

from conftest import separable_rows, write_split
from modfit.cli import build_parser, main

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "Your own data"
needs_cleanlab = pytest.mark.skipif(
    importlib.util.find_spec("cleanlab") is None, reason="pip install cleanlab"
)


def code_blocks(language: str) -> list[str]:
    """The `language` code blocks of the README section HEADING."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {HEADING}\n")
    end = text.index("\n## ", start + 1)
    return [
        code for lang, code in re.findall(r"```(\w+)\n(.*?)```", text[start:end], re.S) if lang == language
    ]


def modfit_commands() -> list[list[str]]:
    """Each `modfit ...` line of the section's shell blocks, as argv without the program name."""
    lines = [line.strip() for block in code_blocks("bash") for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("modfit ")]


def subcommands() -> set[str]:
    parser = build_parser()
    return set(parser._subparsers._group_actions[0].choices)  # argparse keeps them only there


def tiny_flags(model: Path) -> list[str]:
    """What the test appends to `modfit train`: the tiny model and a schedule it learns the toy task in."""
    return [
        "--model", str(model), "--pooling", "mean", "--max-length", "32", "--epochs", "2", "--lr", "1e-2",
        "--batch-size", "8", "--eval-every", "1000", "--quiet", "--defence-option", "scanner_lr=1e-2",
        "--defence-option", "scanner_epochs=8", "--defence-option", "scanner_batch_size=8",
    ]  # fmt: skip


def write_user_data(folder: Path) -> list[int]:
    """A user's CSV folder (the README's `mydata`) whose training split has a few wrong labels; their
    row numbers as a spreadsheet counts them (header = row 1)."""
    folder.mkdir()
    train = separable_rows(80, 0)
    wrong = [5, 17, 33, 48, 61, 72]
    for i in wrong:
        train[i] = (train[i][0], 1 - train[i][1])
    write_split(folder / "train.csv", train)
    write_split(folder / "dev.csv", separable_rows(48, 1))
    write_split(folder / "test.csv", separable_rows(32, 2))
    return [i + 2 for i in wrong]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_section_names_the_commands_it_promises():
    names = [argv[0] for argv in modfit_commands()]
    assert names == ["train", "predict"]
    assert "--attack" not in modfit_commands()[0]  # the user's own rows, as given
    assert any("pipeline(" in block for block in code_blocks("python"))


@pytest.fixture(scope="module")
def own_run(tiny_bert, tmp_path_factory):
    """The section's `modfit train` in a scratch folder holding the user's `mydata`: (folder, its
    output folder, the wrongly labelled rows, what it printed)."""
    folder = tmp_path_factory.mktemp("own-data")
    train_argv = modfit_commands()[0]
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()) as printed:
        patch.chdir(folder)
        wrong = write_user_data(Path(train_argv[train_argv.index("--dataset") + 1]))
        assert main([*train_argv, *tiny_flags(tiny_bert)]) == 0
    return folder, folder / train_argv[train_argv.index("--out") + 1], wrong, printed.getvalue()


@needs_cleanlab
def test_training_on_your_own_data_as_written(own_run):
    _, out, wrong, printed = own_run
    assert json.loads((out / "config.json").read_text())["attack"]["name"] == "none"
    assert "no attack: training on the 80 rows as given" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    rows = read_csv(out / "rows.csv")
    flagged = {int(r["row"]) for r in rows if r["flagged"] == "1"}
    assert len(rows) == 80 and len(flagged) == metrics["flagged_rows"] > 0
    assert flagged & set(wrong)  # the scanner disputes labels written wrong in the user's file
    assert len(read_csv(out / "corrected.csv")) == 80 - metrics["removed_rows"]
    features = (out / "trigger_features.csv").read_text(encoding="utf-8").splitlines()
    assert features[0] == "feature,label,z,rows,flagged" and "feature_dropped" in metrics


@needs_cleanlab
def test_predicting_with_your_model_as_written(own_run, monkeypatch):
    if "predict" not in subcommands():
        # `modfit predict` and the pipeline-loadable model directory come from the export work (issue
        # 30, items 2-3), merged separately; the lead enables this test once they are in.
        pytest.skip("modfit predict is not on this branch yet")
    monkeypatch.chdir(own_run[0])
    Path("new.csv").write_text("text\nthe film was good\nthe plot was awful\n", encoding="utf-8")
    for argv in modfit_commands()[1:]:
        assert main(argv) == 0, argv
    for block in code_blocks("python"):
        exec(compile(block, "README.md", "exec"), {})
