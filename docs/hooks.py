"""mkdocs hooks: pages generated from the code and files from outside `docs/`, so that none can drift.

- `reference/cli.md`: every command and flag of `modfit.cli.build_parser()`;
- `reference/api.md`: one mkdocstrings entry per name in `modfit.__all__`;
- `architecture.md`: the repository's ARCHITECTURE.md;
- `benchmarks/**`: the studies' READMEs, results and report figures; a page's `` `benchmarks/...` `` (a
  study folder or a file of one) becomes a link to it, so that the text stays readable on GitHub and
  the site links into the studies.
"""

from __future__ import annotations

import argparse
import html
import posixpath
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

API_GROUPS = {
    "Running an experiment": ["resolve", "run", "prepare_data", "RunResult"],
    "Settings": ["Experiment", "AttackConfig", "TrainConfig", "ModelConfig", "TuningConfig"],
    "Data and attacks": ["Example", "Splits", "load_dataset", "read_examples", "make_trigger", "poison", "poison_test"],
    "Models, training and evaluation": [
        "load_classifier", "Classifier", "load_model", "fit", "EvalPoint", "evaluate", "predict", "EvalSet", "Scores",
    ],
    "Errors": ["ModfitError"],
}  # fmt: skip
ALIASES = {"train": "fit"}
STUDY_PATH = re.compile(r"(?<![\[`])`(benchmarks/[\w./-]*)`(?!\])")
FENCE = re.compile(r"^```")


def _flag_row(action: argparse.Action) -> str:
    names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.dest}`"
    if action.metavar:
        names += f" `{action.metavar}`"
    elif action.choices:
        names += " `" + "|".join(str(choice) for choice in action.choices) + "`"
    meaning = html.escape(action.help or "", quote=False).replace("|", "\\|").replace("\n", " ")
    if action.required:
        meaning += " (required)"
    if action.default not in (None, False, argparse.SUPPRESS) and "default" not in meaning:
        meaning += f" (default `{action.default}`)"
    return f"| {names} | {meaning} |"


def cli_markdown() -> str:
    """The command-line reference: one section per command, one table row per flag."""
    from modfit.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    lines = [
        "# Command line",
        "",
        "Generated from `modfit.cli.build_parser()` when the site is built: the same text as "
        "`modfit COMMAND --help`. `python -m modfit` is the same program.",
        "",
        f"`{parser.format_usage().strip().removeprefix('usage: ')}`",
    ]
    for name, sub in commands.choices.items():
        lines += [
            "",
            f"## modfit {name}",
            "",
            f"{helps.get(name) or ''}",
            "",
            "| flag | meaning |",
            "|---|---|",
        ]
        lines += [
            _flag_row(action) for action in sub._actions if not isinstance(action, argparse._HelpAction)
        ]
    return "\n".join(lines) + "\n"


def _defined_at(name: str) -> str:
    """Where `modfit.NAME` is defined: `modfit.evaluate` is also a module, so the reference names the
    function `modfit.evaluate.evaluate` rather than let the module stand for it."""
    import modfit

    found = getattr(modfit, name)
    module = getattr(found, "__module__", None)
    return f"{module}.{found.__qualname__}" if module and hasattr(found, "__qualname__") else f"modfit.{name}"


def api_markdown() -> str:
    """The Python API reference: every exported name once, in the groups above, the rest under "More"."""
    import modfit

    exported = [name for name in modfit.__all__ if name not in ALIASES]
    grouped = {name for names in API_GROUPS.values() for name in names}
    groups = {title: [n for n in names if n in exported] for title, names in API_GROUPS.items()}
    groups["More"] = [name for name in exported if name not in grouped]
    lines = [
        "# Python API",
        "",
        "Everything below is importable from `modfit` (its `__all__`, generated when the site is built). "
        "The API follows the data: `load_dataset` → `make_trigger` + `poison` → `load_classifier` → `fit` "
        "→ `evaluate`, with `run` doing all of it for one `Experiment` that `resolve` builds. "
        + ", ".join(f"`{alias}` is an alias of `{name}`" for alias, name in ALIASES.items())
        + ".",
    ]
    for title, names in groups.items():
        if names:
            lines += ["", f"## {title}"] + [f"\n::: {_defined_at(name)}" for name in names]
    return "\n".join(lines) + "\n"


def on_files(files, config):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "reference/cli.md", content=cli_markdown()))
    files.append(File.generated(config, "reference/api.md", content=api_markdown()))
    files.append(File.generated(config, "architecture.md", abs_src_path=str(ROOT / "ARCHITECTURE.md")))
    for path in sorted((ROOT / "benchmarks").rglob("*")):
        if path.suffix in (".md", ".png") and path.is_file():
            uri = path.relative_to(ROOT).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def _study_target(path: str, files) -> str | None:
    """The site file a `benchmarks/...` path names: the file itself, or a folder's README."""
    path = path.rstrip("/")
    for candidate in (path, f"{path}/README.md"):
        if files.get_file_from_path(candidate) is not None and candidate.endswith((".md", ".png")):
            return candidate
    return None


def on_page_markdown(markdown, page, config, files):
    """`` `benchmarks/x/results.md` `` outside code blocks becomes a link to that page of the site."""
    here = posixpath.dirname(page.file.src_uri)
    out, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        if not fenced and "`benchmarks/" in line:

            def link(match):
                target = _study_target(match.group(1), files)
                if target is None:
                    return match.group(0)
                return f"[`{match.group(1)}`]({posixpath.relpath(target, here or '.')})"

            line = STUDY_PATH.sub(link, line)
        out.append(line)
    return "\n".join(out)
