"""The edge that writes files. Every write is atomic: a temporary file, then a rename."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from modfit.config import to_dict
from modfit.data import Example


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_atomic(path: str | Path, data: str | bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file permissions
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=2, allow_nan=True) + "\n")


def csv_text(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_examples(path: str | Path, examples: list[Example], with_poisoned: bool = False) -> None:
    columns = ["text", "label", "poisoned"] if with_poisoned else ["text", "label"]
    rows = ({"text": e.text, "label": e.label, "poisoned": int(e.poisoned)} for e in examples)
    write_atomic(path, csv_text(rows, columns))


def write_run(result, out: str | Path, save_model: bool = False) -> None:
    """config.json, history.csv/.jsonl, metrics.json and dynamics.png (and the model) of one run."""
    from modfit.report.dynamics import plot_dynamics

    out = Path(out)
    points = [asdict(p) for p in result.history]
    columns = list(points[0]) if points else []
    write_json(out / "config.json", to_dict(result.experiment))
    write_atomic(out / "history.csv", csv_text(points, columns))
    write_atomic(out / "history.jsonl", "".join(json.dumps(p) + "\n" for p in points))
    write_atomic(out / "dynamics.png", plot_dynamics({result.experiment.defence: result.history}))
    if save_model:
        staging = Path(tempfile.mkdtemp(dir=out, prefix=".model."))
        try:
            result.model.save(staging, result.tokenizer)
            shutil.rmtree(out / "model", ignore_errors=True)
            os.replace(staging, out / "model")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    write_json(out / "metrics.json", result.metrics())  # last: its presence marks a finished run
