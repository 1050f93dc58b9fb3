"""Syntactic (HiddenKiller) and Style (StyleBkd) attacks: the trigger is a paraphrase looked up in a table.

The generators (SCPN, STRAP) are large models; their outputs are stored as `text,paraphrase` CSVs in
`<dataset>/paraphrase/{syntactic,style}.csv`. A user may bring their own table with `table=PATH`.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from modfit.attacks.base import attack
from modfit.data.sources import is_packaged
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
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModfitError(
            f"{path}: cannot read the paraphrase table ({reason}); give a UTF-8 text,paraphrase CSV"
        ) from None


GENERATORS = {
    "syntactic": "SCPN with the template S(SBAR)(,)(NP)(VP)(.)",
    "style": "a STRAP Bible-style paraphraser",
}


def _packaged_has_no_table(style: str, dataset: str) -> str:
    return (
        f"{style}: the packaged {dataset} has no paraphrase table; give --attack-option table=PATH "
        f"or set MODFIT_DATA to a data root holding {dataset}/paraphrase/{style}.csv; make a table "
        f"as a CSV text,paraphrase by running {GENERATORS[style]} over the dataset's texts (docs/your-own-data.md, 'Data')"
    )


@dataclass(frozen=True)
class ParaphraseOptions:
    """`table`: a `text,paraphrase` CSV; by default `<dataset>/paraphrase/<attack>.csv`."""

    table: str | None = None

    def validate(self) -> None:
        if self.table is not None and not self.table.strip():
            raise ModfitError("paraphrase table is empty; give table=PATH to a text,paraphrase CSV")


def _builder(style: str):
    def build(options: ParaphraseOptions, dataset_folder: Path | None) -> ParaphraseTrigger:
        table = options.table
        if table is None:
            if dataset_folder is None:
                raise ModfitError(f"{style}: no dataset folder to find the table in; give table=PATH")
            if is_packaged(dataset_folder):
                raise ModfitError(_packaged_has_no_table(style, dataset_folder.name))
            return ParaphraseTrigger(read_table(dataset_folder / "paraphrase" / f"{style}.csv"))
        return ParaphraseTrigger(read_table(Path(table)))

    return build


attack("syntactic", ParaphraseOptions)(_builder("syntactic"))
attack("style", ParaphraseOptions)(_builder("style"))
