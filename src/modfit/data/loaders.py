"""Reading labelled text from CSV, TSV and JSONL files (plain or gzipped), named datasets and the hub.

Every malformed input fails with one line naming the file, the row and the fix.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from modfit.data.example import Example, Splits
from modfit.data.sources import NAMED_DATASETS, data_root, named_dataset_dir
from modfit.errors import ModfitError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "NAMED_DATASETS", "data_root", "dataset_dir", "load_dataset", "load_directory", "read_examples",
    "read_texts", "text_lines",
]  # fmt: skip

SPLITS = ("train", "dev", "test")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}
GZIP = ".gz"


def _format(path: Path | Traversable) -> str:
    """csv, tsv or jsonl, from the file name (a `.gz` after it means the same, gzip-compressed)."""
    name = path.name.lower().removesuffix(GZIP)
    fmt = FORMATS.get(Path(name).suffix)
    if fmt is None:
        raise ModfitError(f"{path}: unknown file type; use .csv, .tsv or .jsonl (gzipped: .csv.gz, ...)")
    return fmt


def _text(path: Path | Traversable) -> str:
    """The whole file as text: decompressed when its name ends in .gz, decoded as UTF-8.

    Read at once so that a decoding error is located in the whole file (a streaming decoder reports an
    offset inside its current chunk); the splits are held in memory as examples anyway."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModfitError(f"{path}: no such file") from None
    if path.name.lower().endswith(GZIP):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ModfitError(f"{path}: not a readable gzip file ({err}); re-compress it with gzip") from None
    try:
        return raw.decode("utf-8-sig")  # -sig: a BOM is not part of the first column's name
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ModfitError(
            f"{path} line {line}: bytes at offset {err.start} are not UTF-8; re-save the file as UTF-8"
        ) from None


def _rows(path: Path | Traversable) -> Iterator[tuple[int, dict]]:
    """(row number as a person counts it, record) for each data row of the file."""
    fmt = _format(path)
    handle = io.StringIO(_text(path), newline="")
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


def _check_fields(path, line: int, record: dict, columns: int, fmt: str) -> None:
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


def read_examples(
    path: str | Path | Traversable,
    text_column: str = "text",
    label_column: str = "label",
    num_labels: int | None = None,
) -> list[Example]:
    """Read `text,label` rows (plus an optional `poisoned` column) from a CSV, TSV or JSONL file
    (gzipped when its name ends in .gz); `path` may be a packaged resource (importlib.resources)."""
    path = Path(path) if isinstance(path, str) else path
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
        examples.append(Example(text=text, label=label, poisoned=poisoned, row=number))
    if not examples:
        raise ModfitError(f"{path}: no rows; a split needs at least one labelled text")
    return examples


def read_texts(path: str | Path, text_column: str = "text") -> list[tuple[int, str]]:
    """(row number, text) of each row to predict: column `text` of a CSV, TSV or JSONL file (plain or
    gzipped; a label column may be there or not), or each non-blank line of any other file."""
    path = Path(path)
    if Path(path.name.lower().removesuffix(GZIP)).suffix not in FORMATS:
        return text_lines(_text(path))
    rows = []
    for number, record in _rows(path):
        text = record.get(text_column)
        if text is None:
            raise ModfitError(f"{path} row {number}: no column {text_column!r}; name the texts' column text")
        if not isinstance(text, str) or not text.strip():
            raise ModfitError(
                f"{path} row {number}: empty text in column {text_column!r}; remove the row or fill it"
            )
        rows.append((number, text))
    return rows


def text_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of each non-blank line: one text a line, as from stdin."""
    return [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]


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


def _split_file(folder: Path | Traversable, split: str) -> Path | Traversable:
    for suffix in (*FORMATS, *(s + GZIP for s in FORMATS)):
        candidate = folder / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    raise ModfitError(f"{folder}: split {split!r} is missing; add {split}.csv, {split}.tsv or {split}.jsonl")


def load_directory(folder: str | Path | Traversable, num_labels: int | None = None, **columns: str) -> Splits:
    """A directory holding `train`, `dev` and `test` files (.csv, .tsv or .jsonl, plain or gzipped)."""
    folder = Path(folder) if isinstance(folder, str) else folder
    splits = {s: read_examples(_split_file(folder, s), num_labels=num_labels, **columns) for s in SPLITS}
    if num_labels is None:
        num_labels = max(1 + _check_class_indices(folder, splits), 2)
    return Splits(name=folder.name, num_labels=num_labels, **splits)


def _check_class_indices(folder: Path | Traversable, splits: dict[str, list[Example]]) -> int:
    """The largest label, once the labels found are class indices 0..K-1 without a gap: labels 1 and 2
    would otherwise make three classes, one of them (0) empty, and no model can learn an empty class."""
    found = sorted({e.label for rows in splits.values() for e in rows})
    if found != list(range(found[-1] + 1)) and found != [1]:  # one label, 0 or 1: binary, one class shown
        shown = ", ".join(map(str, found[:10])) + (", ..." if len(found) > 10 else "")
        renumber = ", ".join(f"{old}→{new}" for new, old in enumerate(found[:4]))
        raise ModfitError(
            f"{folder}: labels {shown} are not class indices 0..K-1; renumber them 0..{len(found) - 1} "
            f"in every split ({renumber}{', ...' if len(found) > 4 else ''})"
        )
    return found[-1]


def dataset_dir(name: str) -> Path | Traversable:
    """The folder of a named dataset (data root, else packaged copy) or of a directory dataset: where
    its splits and its paraphrase tables live."""
    if name in NAMED_DATASETS:
        return named_dataset_dir(name)
    return Path(name)


def load_dataset(name: str, **columns: str) -> Splits:
    """`sst2`, `hsol`, `agnews` under the data root (`sst2` also packaged); a directory of split files;
    or `hf:<id>`.

    Image datasets (`cifar10`, an ImageFolder folder or tar) are read by `modfit.vision.data`."""
    from modfit.vision.data import is_image_dataset, load_image_dataset

    if is_image_dataset(name):
        return load_image_dataset(name)
    if name.startswith("hf:"):
        from modfit.data.hub import load_hub_dataset

        return load_hub_dataset(name[3:], **columns)
    if name in NAMED_DATASETS:
        splits = load_directory(dataset_dir(name), num_labels=NAMED_DATASETS[name], **columns)
        return Splits(name, splits.train, splits.dev, splits.test, splits.num_labels)
    if Path(name).is_dir():
        return load_directory(name, **columns)
    raise ModfitError(
        f"dataset {name!r} is neither a named dataset ({', '.join(NAMED_DATASETS)}, cifar10), "
        "a directory of train/dev/test files, an image folder or tar, nor hf:<dataset-id>"
    )
