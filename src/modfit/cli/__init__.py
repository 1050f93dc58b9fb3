"""The command line: flags and config files become one `Experiment` here, and only here.

`settings` reads flags and files into settings, `parser` declares the commands, and one module per kind of
command runs them: `runs` (poison, train, scan, demo), `studies` (grid, report), `models` (export, predict)."""

from __future__ import annotations

import sys

from modfit.cli.models import command_export, command_predict
from modfit.cli.parser import build_parser
from modfit.cli.runs import command_demo, command_poison, command_scan, command_train
from modfit.cli.settings import settings_from_args
from modfit.cli.studies import command_grid, command_report
from modfit.errors import ModfitError

__all__ = ["build_parser", "main", "settings_from_args"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"poison": command_poison, "train": command_train, "scan": command_scan, "demo": command_demo,
                "grid": command_grid, "report": command_report, "export": command_export,
                "predict": command_predict}  # fmt: skip
    try:
        code = handlers[args.command](args)
    except ModfitError as err:
        print(f"modfit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line; the finish markers (metrics.json, done cells) are absent
        print(f"modfit {args.command}: interrupted; what was running is not marked finished", file=sys.stderr)
        return 130
    return code or 0
