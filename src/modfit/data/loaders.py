"""Reading labelled text from CSV, TSV and JSONL files, named datasets and the Hugging Face hub.

Every malformed input fails with one line naming the file, the row and the fix.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

from modfit.data.example import Example, Splits
from modfit.errors import ModfitError

NAMED_DATASETS = {"sst2": 2, "hsol": 2, "agnews": 4}
SPLITS = ("train", "dev", "test")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}


def data_root() -> Path:
    """`$MODFIT_DATA`, else `../shared/data` relative to the working directory."""
    env = os.environ.get("MODFIT_DATA")
    if env:
        root = Path(env)
        if not root.is_dir():
            raise ModfitError(f"MODFIT_DATA={env} is not a directory: point it at the folder holding sst2/")
        return root
    fallback = Path("..") / "shared" / "data"
    if fallback.is_dir():
        return fallback
    raise ModfitError(
        "no data root: set MODFIT_DATA to the folder holding sst2/, hsol/ and agnews/ "
        "(or run from a checkout with ../shared/data beside it)"
    )


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(row number as a person counts it, record) for each data row of the file."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ModfitError(f"{path}: unknown file type; use .csv, .tsv or .jsonl")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: a BOM is not part of a name
            if fmt == "jsonl":
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as err:
                        raise ModfitError(
                            f"{path} line {number}: invalid JSON ({err.msg}); write one object per line"
                        ) from None
                    if not isinstance(record, dict):
                        raise ModfitError(f"{path} line {number}: expected a JSON object per line")
                    yield number, record
            else:
                reader = csv.DictReader(handle, delimiter="," if fmt == "csv" else "\t")
                for number, record in enumerate(reader, start=2):
                    _check_fields(path, reader.line_num, record, len(reader.fieldnames or ()), fmt)
                    yield number, record
    except UnicodeDecodeError:
        raise ModfitError(f"{path} {_undecodable(path)} are not UTF-8; re-save the file as UTF-8") from None
    except FileNotFoundError:
        raise ModfitError(f"{path}: no such file") from None


def _check_fields(path: Path, line: int, record: dict, columns: int, fmt: str) -> None:
    """A row with fewer or more fields than the header is an error, not a shifted or lost value."""
    separator = "comma" if fmt == "csv" else "tab"
    if None in record:  # DictReader keeps the surplus fields under the key None
        found = columns + len(record[None])
        raise ModfitError(
            f"{path} line {line}: {found} fields but the header has {columns}; quote a text that holds a "
            f"{separator} or remove the extra {separator}s"
        )
    if any(value is None for value in record.values()):
        found = sum(value is not None for value in record.values())
        raise ModfitError(
            f"{path} line {line}: {found} fields but the header has {columns}; add the missing {separator}-"
            "separated values"
        )


def _undecodable(path: Path) -> str:
    """Where the first non-UTF-8 bytes are, counted in the whole file.

    The decoding error raised while reading gives an offset inside the chunk being decoded, not the file.
    """
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        return f"line {line}: bytes at offset {err.start}"
    return "bytes"


def read_examples(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    num_labels: int | None = None,
) -> list[Example]:
    """Read `text,label` rows (plus an optional `poisoned` column) from a CSV, TSV or JSONL file."""
    path = Path(path)
    examples = []
    for number, record in _rows(path):
        where = f"{path} row {number}"
        for column in (text_column, label_column):
            if column not in record:
                raise ModfitError(
                    f"{where}: no column {column!r}; rename the columns to text,label "
                    "(or, in Python, pass text_column=/label_column= to read_examples)"
                )
        text = record[text_column]
        if not isinstance(text, str) or not text.strip():
            raise ModfitError(f"{where}: empty text in column {text_column!r}; remove the row or fill it")
        label = _label(record[label_column], where, num_labels)
        poisoned = str(record.get("poisoned", "")).strip().lower() in ("1", "true")
        examples.append(Example(text=text, label=label, poisoned=poisoned))
    if not examples:
        raise ModfitError(f"{path}: no rows; a split needs at least one labelled text")
    return examples


def _label(raw: object, where: str, num_labels: int | None) -> int:
    try:
        if isinstance(raw, float):  # JSON may write 1.0; an integral float is an integer label
            if not raw.is_integer():
                raise ValueError
            label = int(raw)
        else:
            label = int(str(raw).strip())
    except ValueError:
        raise ModfitError(f"{where}: label {raw!r} is not an integer; write labels as 0, 1, ...") from None
    if label < 0 or (num_labels is not None and label >= num_labels):
        top = "N-1" if num_labels is None else num_labels - 1
        raise ModfitError(f"{where}: label {label} is out of range; labels run from 0 to {top}")
    return label


def _split_file(folder: Path, split: str) -> Path:
    for suffix in FORMATS:
        candidate = folder / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    raise ModfitError(f"{folder}: split {split!r} is missing; add {split}.csv, {split}.tsv or {split}.jsonl")


def load_directory(folder: str | Path, num_labels: int | None = None, **columns: str) -> Splits:
    """A directory holding `train`, `dev` and `test` files (.csv, .tsv or .jsonl)."""
    folder = Path(folder)
    splits = {s: read_examples(_split_file(folder, s), num_labels=num_labels, **columns) for s in SPLITS}
    if num_labels is None:
        num_labels = 1 + max(e.label for rows in splits.values() for e in rows)
        num_labels = max(num_labels, 2)
    return Splits(name=folder.name, num_labels=num_labels, **splits)


def dataset_dir(name: str) -> Path:
    """The folder of a named dataset or a directory dataset (where paraphrase tables live)."""
    if name in NAMED_DATASETS:
        return data_root() / name
    return Path(name)


def load_dataset(name: str, **columns: str) -> Splits:
    """`sst2`, `hsol`, `agnews` under the data root; a directory of split files; or `hf:<id>`.

    Image datasets (`cifar10`, an ImageFolder folder or tar) are read by `modfit.vision.data`."""
    from modfit.vision.data import is_image_dataset, load_image_dataset

    if is_image_dataset(name):
        return load_image_dataset(name)
    if name.startswith("hf:"):
        from modfit.data.hub import load_hub_dataset

        return load_hub_dataset(name[3:], **columns)
    if name in NAMED_DATASETS:
        folder = dataset_dir(name)
        if not folder.is_dir():
            raise ModfitError(
                f"dataset {name!r} is not under {folder.parent}; set MODFIT_DATA to the data root"
            )
        splits = load_directory(folder, num_labels=NAMED_DATASETS[name], **columns)
        return Splits(name, splits.train, splits.dev, splits.test, splits.num_labels)
    if Path(name).is_dir():
        return load_directory(name, **columns)
    raise ModfitError(
        f"dataset {name!r} is neither a named dataset ({', '.join(NAMED_DATASETS)}, cifar10), "
        "a directory of train/dev/test files, an image folder or tar, nor hf:<dataset-id>"
    )
