"""The documentation's examples run, and its pages stay readable (docs/development.md, "The documentation").

Every fenced example of README.md, docs/**/*.md and the study READMEs under benchmarks/ runs here, one
page at a time, in order, in a temporary folder: `python` blocks are executed in one namespace per page,
`bash` blocks line by line through `modfit.cli.main`, `yaml` blocks with a `name:` are parsed as study
specs, and a block with `title="FILE"` is also written to FILE for the blocks after it. They run small
and offline: the default model is a tiny random BERT, `MODFIT_DATA` a toy data root, and every training
set at most SIZE rows. A block that cannot run here says why on the line before its fence:
`<!-- not run: REASON -->`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import separable_rows, write_split

ROOT = Path(__file__).resolve().parents[1]
NEW_README = ROOT / "README.new.md"  # the short README, until the lead swaps it in as README.md
PAGES = sorted(
    {ROOT / "README.md", *ROOT.glob("README.new.md"), *(ROOT / "docs").rglob("*.md"),
     *(ROOT / "benchmarks").glob("README.md"), *(ROOT / "benchmarks").glob("*/README.md")}
)  # fmt: skip
SIZE = 200  # training rows at most, for every example
SIZED_COMMANDS = {"poison", "train", "scan", "grid", "demo"}  # the commands that take --train-size
QUIET_COMMANDS = {"train", "scan", "grid", "demo"}
SHELL = {"bash", "sh", "shell"}
FENCE = re.compile(r"^(```+)\s*([\w+-]*)(.*)$")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(\S.*?)\s*-->$")
MARKER = re.compile(r"^<!--\s*not run\b")
TITLE = re.compile(r'title="([^"]+)"')
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts (1-based line of its fence), its language, the file it names, its
    code, and why it is not run (None: it runs)."""

    line: int
    language: str
    title: str | None
    code: str
    not_run: str | None


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def parse(page: Path) -> tuple[list[Block], list[str], list[int]]:
    """The page's fenced blocks, its headings outside them, and the lines of markers no fence follows."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, headings, stray = [], [], []
    pending: tuple[int, str | None] | None = None  # a marker seen, waiting for its fence
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            ticks, language, info = fence.groups()
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith(ticks)), len(lines))
            title = TITLE.search(info)
            reason = pending[1] if pending else None
            blocks.append(
                Block(
                    i + 1, language.lower(), title and title.group(1), "\n".join(lines[i + 1 : end]), reason
                )
            )
            pending, i = None, end + 1
            continue
        if MARKER.match(line):  # at the start of a line: an indented one is an example of a mark
            if pending:
                stray.append(pending[0])
            found = NOT_RUN.match(line.rstrip())
            pending = (i + 1, found.group(1) if found else None)
        elif line.strip() and pending:
            stray.append(pending[0])
            pending = None
        heading = HEADING.match(line)
        if heading:
            headings.append(heading.group(2))
        i += 1
    if pending:
        stray.append(pending[0])
    return blocks, headings, stray


def skip_the_old_readme(page: Path) -> None:
    if page.name == "README.md" and page.parent == ROOT and NEW_README.exists():
        pytest.skip("README.md is the old, long README: README.new.md replaces it at merge, and then this "
                    "test reads the new one as README.md")  # fmt: skip


# --- the pages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_heading_twice_in_a_page(page):
    skip_the_old_readme(page)
    _, headings, _ = parse(page)
    twice = sorted(heading for heading, count in Counter(headings).items() if count > 1)
    assert not twice, f"{page_id(page)}: headings that appear more than once: {twice}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_not_run_mark_gives_a_reason_and_stands_before_a_fence(page):
    blocks, _, stray = parse(page)
    assert not stray, (
        f"{page_id(page)}: a `<!-- not run: REASON -->` mark on line(s) {stray} has no reason or no fence after it"
    )
    assert all(block.not_run is None or block.not_run.strip() for block in blocks)


def test_the_readme_is_short():
    readme = NEW_README if NEW_README.exists() else ROOT / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 200, f"{readme.name} is over 200 lines"


def test_a_repeated_heading_and_a_stray_mark_are_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A\n\n## B\n\n<!-- not run: slow -->\n\ntext\n\n## B\n\n<!-- not run: x -->\n```bash\nls\n```\n"
    )
    blocks, headings, stray = parse(page)
    assert headings == ["A", "B", "B"] and stray == [5]  # the first mark has text, not a fence, after it
    assert [(b.line, b.language, b.not_run, b.code) for b in blocks] == [(12, "bash", "x", "ls")]


# --- the generated references ------------------------------------------------------------------------


def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_has_every_command_and_flag():
    import argparse

    from modfit.cli import build_parser

    text = hooks().cli_markdown()
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in commands.choices.items():
        assert f"## modfit {name}\n" in text
        for action in parser._actions:
            for flag in [] if isinstance(action, argparse._HelpAction) else action.option_strings:
                assert f"`{flag}`" in text, f"modfit {name} {flag} is missing from the CLI reference"


def test_the_api_reference_has_every_exported_name():
    import modfit

    text = hooks().api_markdown()
    for name in set(modfit.__all__) - set(hooks().ALIASES):
        where = hooks()._defined_at(name)
        assert where.startswith("modfit.") and where.endswith(name)
        assert f"::: {where}\n" in text + "\n", f"modfit.{name} is missing from the API reference"


# --- the examples ------------------------------------------------------------------------------------


def toy_rows(count: int, seed: int, labels: int) -> list[tuple[str, int]]:
    """Separable rows; with more than two labels, the label is the row's index modulo `labels`."""
    rows = separable_rows(count, seed)
    return (
        rows
        if labels == 2
        else [(f"{text} {'abcd'[i % labels]}", i % labels) for i, (text, _) in enumerate(rows)]
    )


@pytest.fixture(scope="session")
def toy_data_root(tmp_path_factory) -> Path:
    """`sst2`, `hsol` and `agnews` in the data root's layout, a few hundred separable rows each, with a
    paraphrase table for every text."""
    root = tmp_path_factory.mktemp("data-root")
    for name, labels in (("sst2", 2), ("hsol", 2), ("agnews", 4)):
        folder = root / name
        (folder / "paraphrase").mkdir(parents=True)
        texts = []
        for split, count, seed in (("train", SIZE + 40, 0), ("dev", 48, 1), ("test", 48, 2)):
            rows = toy_rows(count, seed, labels)
            write_split(folder / f"{split}.csv", rows)
            texts += [text for text, _ in rows]
        for style in ("syntactic", "style"):
            table = "\n".join(f"{text},when it is {text}" for text in dict.fromkeys(texts))
            (folder / "paraphrase" / f"{style}.csv").write_text(f"text,paraphrase\n{table}\n")
    return root


@pytest.fixture
def small_world(tiny_bert, toy_data_root, tmp_path, monkeypatch):
    """Examples run here: the tiny BERT as the default model, the toy data root, training sets capped."""
    import modfit
    import modfit.model

    monkeypatch.setattr(modfit.model, "default_model_path", lambda: str(tiny_bert))
    monkeypatch.setenv("MODFIT_DATA", str(toy_data_root))
    resolve = modfit.resolve

    def small(settings):
        experiment = resolve(settings)
        size = min(experiment.train_size or SIZE, SIZE)
        return dataclasses.replace(experiment, train_size=size)

    monkeypatch.setattr(modfit, "resolve", small)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def commands(code: str) -> list[tuple[int, list[str]]]:
    """(line within the block, argv) per command: `\\` joins lines, `#` comments, `&&` chains."""
    found, joined, start = [], "", 0
    for number, line in enumerate(code.splitlines(), 1):
        if not joined:
            start = number
        joined += line
        if line.rstrip().endswith("\\"):
            joined = joined.rstrip()[:-1] + " "
            continue
        tokens, command = shlex.split(joined, comments=True), []
        for token in [*tokens, "&&"]:
            if token == "&&":
                if command:
                    found.append((start, command))
                command = []
            else:
                command.append(token)
        joined = ""
    return found


def run_shell(block: Block, where: str, capsys) -> None:
    from modfit.cli import main

    for offset, argv in commands(block.code):
        line = f"{where}:{block.line + offset}"
        assert argv[0] == "modfit", (
            f"{line}: `{argv[0]}` is not a modfit command; only modfit commands run in the docs test, so "
            "mark the block with `<!-- not run: REASON -->` on the line before its fence"
        )
        extra = (["--train-size", str(SIZE)] if argv[1] in SIZED_COMMANDS else []) + (
            ["--quiet"] if argv[1] in QUIET_COMMANDS else []
        )
        code = main([*argv[1:], *extra])
        err = capsys.readouterr().err
        assert code == 0, f"{line}: `{shlex.join(argv)}` exited {code}: {err.strip()[-500:]}"


def run_block(block: Block, where: str, namespace: dict, capsys) -> None:
    if block.title:  # e.g. ```csv title="my_data/train.csv"```: a file the commands after it read
        Path(block.title).parent.mkdir(parents=True, exist_ok=True)
        Path(block.title).write_text(block.code + "\n", encoding="utf-8")
    if block.language in ("python", "py"):
        exec(compile(block.code, f"{where}:{block.line}", "exec"), namespace)
    elif block.language in SHELL:
        run_shell(block, where, capsys)
    elif block.language in ("yaml", "yml"):
        from modfit.grid import parse_spec

        data = yaml.safe_load(block.code)
        if isinstance(data, dict) and "name" in data:
            parse_spec(data, f"{where}:{block.line}")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_the_examples_run(page, small_world, capsys):
    skip_the_old_readme(page)
    blocks, _, _ = parse(page)
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks:
        if block.not_run is None:
            run_block(block, page_id(page), namespace, capsys)


def test_a_failing_example_fails_and_names_its_line(small_world, capsys):
    page = small_world / "page.md"
    page.write_text(
        "```bash\nmodfit train --dataset sst2 --attack nosuch --out runs/x\n```\n\n```bash\nls\n```\n"
    )
    blocks, _, _ = parse(page)
    with pytest.raises(AssertionError, match=r"page.md:2: .* exited 2: .*nosuch"):
        run_block(blocks[0], "page.md", {}, capsys)
    with pytest.raises(AssertionError, match="page.md:6: `ls` is not a modfit command"):
        run_block(blocks[1], "page.md", {}, capsys)


def test_an_example_runs_on_the_toy_data_and_the_tiny_model(small_world, tiny_bert, capsys):
    import json

    page = small_world / "page.md"
    page.write_text(
        "```bash\nmodfit train --dataset sst2 --attack badnet \\\n    --train-size 3000 --out runs/x  # a comment\n```\n"
    )
    run_block(parse(page)[0][0], "page.md", {}, capsys)
    config = json.loads((small_world / "runs/x/config.json").read_text())
    assert config["train_size"] == SIZE
    metrics = json.loads((small_world / "runs/x/metrics.json").read_text())
    assert metrics["trainable_params"] < 1_000_000  # the tiny BERT, not the packaged MiniLM (22.7M)
