"""Loaders: CSV/TSV/JSONL with configurable columns, directory and named datasets, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import error_of, separable_rows, write_split
from modfit import Example, load_dataset, read_examples
from modfit.data import data_root, subsample

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    return write_text(path, "".join(json.dumps(r) + "\n" for r in records))


# --- reading files ---------------------------------------------------------------------------------


def test_csv_rows_become_examples_with_the_poisoned_flag(tmp_path):
    path = write_text(
        tmp_path / "train.csv",
        'text,label,poisoned\n"a, quoted text",1,1\nplain,0,0\nthird,1,true\nfourth,0,\n',
    )
    assert read_examples(path) == [
        Example("a, quoted text", 1, poisoned=True),
        Example("plain", 0, poisoned=False),
        Example("third", 1, poisoned=True),
        Example("fourth", 0, poisoned=False),
    ]


def test_csv_with_custom_columns(tmp_path):
    path = write_text(tmp_path / "data.csv", "id,sentence,y\n7,first text,2\n8,second text,0\n")
    rows = read_examples(path, text_column="sentence", label_column="y")
    assert rows == [Example("first text", 2), Example("second text", 0)]


def test_tsv_with_custom_columns(tmp_path):
    path = write_text(tmp_path / "data.tsv", "y\tsentence\n1\ta text, with a comma\n0\tanother\n")
    rows = read_examples(path, text_column="sentence", label_column="y")
    assert rows == [Example("a text, with a comma", 1), Example("another", 0)]


def test_jsonl_with_custom_columns_skips_blank_lines(tmp_path):
    path = write_text(
        tmp_path / "data.jsonl",
        '{"body": "first", "cls": 3}\n\n{"body": "second", "cls": 0, "poisoned": true}\n',
    )
    rows = read_examples(path, text_column="body", label_column="cls")
    assert rows == [Example("first", 3), Example("second", 0, poisoned=True)]


def test_jsonl_accepts_integral_float_labels(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [{"text": "a", "label": 1.0}, {"text": "b", "label": 0}])
    assert [e.label for e in read_examples(path)] == [1, 0]


# --- malformed input: one line naming the file, the row and the fix -------------------------------


def test_missing_column_names_file_row_and_column(tmp_path):
    path = write_text(tmp_path / "train.csv", "sentence,label\nhello,1\n")
    message = error_of(read_examples, path)
    assert message.startswith(f"{path} row 2: no column 'text'; rename the columns to text,label")


def test_missing_label_column_in_jsonl_names_the_line(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "ok", "label": 0}, {"text": "no label"}])
    assert error_of(read_examples, path).startswith(f"{path} row 2: no column 'label'")


@pytest.mark.parametrize("label", ["abc", "1.5", "", "one"])
def test_non_integer_label(tmp_path, label):
    path = write_split(tmp_path / "train.csv", [("fine text", 0), ("fine text", 1)])
    path.write_text(path.read_text().replace("fine text,1", f"fine text,{label}"))
    message = error_of(read_examples, path)
    assert message.startswith(f"{path} row 3: label {label!r} is not an integer")
    assert "write labels as 0, 1" in message


def test_non_integral_float_label_in_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 0.5}])
    assert error_of(read_examples, path).startswith(f"{path} row 1: label 0.5 is not an integer")


def test_negative_label_is_out_of_range(tmp_path):
    path = write_split(tmp_path / "train.csv", [("fine", 0), ("fine", -1)])
    message = error_of(read_examples, path)
    assert message == f"{path} row 3: label -1 is out of range; labels run from 0 to N-1"


def test_label_beyond_the_dataset_labels_is_out_of_range(tmp_path):
    path = write_split(tmp_path / "train.csv", [("fine", 1), ("fine", 0), ("fine", 2)])
    message = error_of(read_examples, path, num_labels=2)
    assert message == f"{path} row 4: label 2 is out of range; labels run from 0 to 1"


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text(tmp_path, text):
    path = write_split(tmp_path / "train.csv", [("fine", 0), (text, 1)])
    message = error_of(read_examples, path)
    assert message.startswith(f"{path} row 3: empty text in column 'text'")
    assert "remove the row or fill it" in message


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\nfine,0\nbad \xff here,1\n")
    message = error_of(read_examples, path)
    assert message == f"{path} line 3: bytes at offset 22 are not UTF-8; re-save the file as UTF-8"


def test_undecodable_bytes_deep_in_a_large_file_are_located_in_the_file(tmp_path):
    # The decoder reads in chunks; the position must be counted from the start of the file.
    head = b"text,label\n" + b"hello world,1\n" * 2000
    path = tmp_path / "train.csv"
    path.write_bytes(head + b"bad \xff,0\n")
    message = error_of(read_examples, path)
    assert f"line 2002: bytes at offset {len(head) + 4} are not UTF-8" in message


def test_invalid_json_line(tmp_path):
    path = write_text(tmp_path / "train.jsonl", '{"text": "a", "label": 0}\n{"text": \n')
    assert error_of(read_examples, path).startswith(f"{path} line 2: invalid JSON")


def test_json_line_that_is_not_an_object(tmp_path):
    path = write_text(tmp_path / "train.jsonl", '["a", 0]\n')
    assert error_of(read_examples, path) == f"{path} line 1: expected a JSON object per line"


def test_unknown_extension(tmp_path):
    path = write_text(tmp_path / "train.txt", "text,label\na,0\n")
    assert (
        error_of(read_examples, path)
        == f"{path}: unknown file type; use .csv, .tsv or .jsonl (gzipped: .csv.gz, ...)"
    )


def test_missing_file(tmp_path):
    assert error_of(read_examples, tmp_path / "absent.csv") == f"{tmp_path / 'absent.csv'}: no such file"


def test_header_without_rows(tmp_path):
    path = write_text(tmp_path / "train.csv", "text,label\n")
    assert "no rows" in error_of(read_examples, path)


# --- directory datasets ----------------------------------------------------------------------------


def test_directory_dataset_mixes_formats_and_infers_labels(tmp_path):
    write_split(tmp_path / "train.csv", [("a", 0), ("b", 2)])
    write_text(tmp_path / "dev.tsv", "text\tlabel\nc\t1\n")
    write_jsonl(tmp_path / "test.jsonl", [{"text": "d", "label": 0}])
    splits = load_dataset(str(tmp_path))
    assert (splits.name, splits.num_labels) == (tmp_path.name, 3)
    assert splits.train == [Example("a", 0), Example("b", 2)]
    assert splits.dev == [Example("c", 1)]
    assert splits.test == [Example("d", 0)]


def test_directory_dataset_with_custom_columns(tmp_path):
    for split in ("train", "dev", "test"):
        write_text(tmp_path / f"{split}.csv", f"review,stars\n{split} text,1\n")
    splits = load_dataset(str(tmp_path), text_column="review", label_column="stars")
    assert [splits.train[0].text, splits.dev[0].text, splits.test[0].text] == [
        "train text",
        "dev text",
        "test text",
    ]


def test_single_label_directory_still_has_two_labels(tmp_path):
    for split in ("train", "dev", "test"):
        write_split(tmp_path / f"{split}.csv", [("a", 0)])
    assert load_dataset(str(tmp_path)).num_labels == 2


def test_missing_split(tmp_path):
    write_split(tmp_path / "train.csv", [("a", 0)])
    write_split(tmp_path / "test.csv", [("a", 0)])
    message = error_of(load_dataset, str(tmp_path))
    assert message == f"{tmp_path}: split 'dev' is missing; add dev.csv, dev.tsv or dev.jsonl"


def test_split_error_names_the_split_file(tmp_path):
    for split in ("train", "dev", "test"):
        write_split(tmp_path / f"{split}.csv", separable_rows(4, 0))
    (tmp_path / "test.csv").write_text("text,label\nfine,x\n")
    assert error_of(load_dataset, str(tmp_path)).startswith(f"{tmp_path / 'test.csv'} row 2: label 'x'")


# --- named datasets and the data root ------------------------------------------------------------


def test_no_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MODFIT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert error_of(data_root).startswith("no data root: set MODFIT_DATA to the folder holding sst2/")
    message = error_of(load_dataset, "hsol")
    assert message.startswith("dataset 'hsol' is not packaged and there is no data root: set MODFIT_DATA")
    assert "hsol/train.csv, hsol/dev.csv, hsol/test.csv (columns text,label)" in message
    assert "hf:tdavidson/hate_speech_offensive" in message


def test_data_root_that_is_not_a_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("MODFIT_DATA", str(tmp_path / "nowhere"))
    assert error_of(data_root).startswith(f"MODFIT_DATA={tmp_path / 'nowhere'} is not a directory")


def test_named_dataset_missing_under_the_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MODFIT_DATA", str(tmp_path))
    assert error_of(load_dataset, "hsol").startswith(f"dataset 'hsol' is not under {tmp_path}")


def test_data_root_falls_back_to_shared_data_beside_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("MODFIT_DATA", raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "checkout").mkdir()
    monkeypatch.chdir(tmp_path / "checkout")
    assert data_root().resolve() == (tmp_path / "shared" / "data").resolve()


def test_named_dataset_follows_the_root_with_its_own_label_count(tmp_path, monkeypatch):
    folder = tmp_path / "hsol"
    folder.mkdir()
    for split in ("train", "dev", "test"):
        write_split(folder / f"{split}.csv", [("a", 0), ("b", 1)])
    monkeypatch.setenv("MODFIT_DATA", str(tmp_path))
    splits = load_dataset("hsol")
    assert (splits.name, splits.num_labels, len(splits.train)) == ("hsol", 2, 2)
    (folder / "dev.csv").write_text("text,label\nc,2\n")
    assert "label 2 is out of range; labels run from 0 to 1" in error_of(load_dataset, "hsol")


@pytest.mark.skipif(not (SHARED_DATA / "sst2").is_dir(), reason="needs the shared data")
def test_sst2_loads_from_the_shared_data(monkeypatch):
    monkeypatch.setenv("MODFIT_DATA", str(SHARED_DATA))
    splits = load_dataset("sst2")
    assert (len(splits.train), len(splits.dev), len(splits.test), splits.num_labels) == (6920, 872, 1821, 2)
    assert sum(e.label for e in splits.test) == 909
    assert not any(e.poisoned for e in splits.train)


def test_unknown_dataset_name():
    message = error_of(load_dataset, "no-such-dataset")
    assert message.startswith(
        "dataset 'no-such-dataset' is neither a named dataset (sst2, hsol, agnews, cifar10)"
    )


# --- subsets -------------------------------------------------------------------------------------


def test_subsample_is_seeded_and_keeps_order():
    rows = [Example(str(i), i % 2) for i in range(50)]
    picked = subsample(rows, 10, seed=3)
    assert len(picked) == 10
    assert picked == subsample(rows, 10, seed=3)
    assert picked != subsample(rows, 10, seed=4)
    positions = [int(e.text) for e in picked]
    assert positions == sorted(positions)
    assert subsample(rows, None, 0) == rows
    assert subsample(rows, 500, 0) == rows


def test_row_numbers_survive_subsampling_and_poisoning(text_dataset, tmp_path):
    from modfit import prepare_data, resolve

    (tmp_path / "rows.jsonl").write_text('{"text": "a", "label": 0}\n\n{"text": "b", "label": 1}\n')
    assert [e.row for e in read_examples(tmp_path / "rows.jsonl")] == [1, 3]  # the line, blank lines counted
    lines = (text_dataset / "train.csv").read_text().splitlines()  # line 1 is the header: row 1
    settings = {"dataset": str(text_dataset), "train_size": 20, "attack": {"name": "badnet", "rate": 0.25}}
    train = prepare_data(resolve(settings)).train
    assert len({e.row for e in train}) == 20 and sum(e.poisoned for e in train) == 5
    for e in train:
        text, label = lines[e.row - 1].rsplit(",", 1)
        assert e.poisoned or (text, int(label)) == (e.text, e.label)
        assert not e.poisoned or set(text.split()) <= set(e.text.split())  # the trigger was inserted
