"""Syntactic (HiddenKiller) and Style (StyleBkd) attacks: the trigger is a paraphrase looked up in a table.

The generators (SCPN, STRAP) are large models; their outputs are stored as `text,paraphrase` CSVs in
`<dataset>/paraphrase/{syntactic,style}.csv`. A user may bring their own table with `table=PATH`.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from modfit.attacks.base import ATTACKS
from modfit.errors import ModfitError


class ParaphraseTrigger:
    kind = "text"

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    def covers(self, text: str) -> bool:
        return text in self.table

    def apply(self, text: str, rng: random.Random) -> str:
        return self.table[text]


def read_table(path: Path) -> dict[str, str]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"text", "paraphrase"} <= set(reader.fieldnames):
                raise ModfitError(f"{path}: a paraphrase table needs the columns text,paraphrase")
            return {row["text"]: row["paraphrase"] for row in reader}
    except FileNotFoundError:
        raise ModfitError(
            f"{path}: no paraphrase table; give one with the attack option table=PATH"
        ) from None


def _factory(style: str):
    def build(options: dict[str, Any], dataset_folder: Path | None) -> ParaphraseTrigger:
        table = options.pop("table", None)
        if options:
            raise ModfitError(f"{style}: unknown option {sorted(options)[0]!r}; use table")
        if table is None:
            if dataset_folder is None:
                raise ModfitError(f"{style}: no dataset folder to find the table in; give table=PATH")
            table = dataset_folder / "paraphrase" / f"{style}.csv"
        return ParaphraseTrigger(read_table(Path(table)))

    return build


ATTACKS.register("syntactic")(_factory("syntactic"))
ATTACKS.register("style")(_factory("style"))
