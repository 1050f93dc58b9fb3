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
from modfit.errors import ModfitError
from modfit.files import json_safe, umask, write_atomic

FINISHED = "metrics.json"  # its presence marks a finished run


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_folder(path: str | Path, flag: str) -> Path:
    """A place a folder can be made or written in, checked before any work: one line if not."""
    path = Path(path)
    found = _nearest_existing(path)
    if not found.is_dir():
        what = "is a file" if found == path else f"is under {found}, a file"
        raise ModfitError(f"{flag} {path}: {what}, not a folder; give a folder path")
    if not os.access(found, os.W_OK | os.X_OK) or not _can_create_in(found):
        raise ModfitError(f"{flag} {path}: {found} is not writable; give a folder you can write to")
    return path


def _can_create_in(folder: Path) -> bool:
    """Whether a folder can be made in `folder`, tried (and undone): `os.access` says yes to root in
    /proc or on a read-only mount, where the run would fail only when it writes its first file."""
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".modfit-check."))
    except OSError:
        return False
    return True


def check_file_place(path: str | Path, flag: str) -> Path:
    """A place a file can be made (or is), checked before any work: not a folder, in a writable one."""
    path = Path(path)
    if path.is_dir():
        raise ModfitError(f"{flag} {path}: is a folder; give a file path, e.g. {path / 'study.sqlite'}")
    check_folder(path.parent, flag)
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ModfitError(f"{flag} {path}: not readable and writable; check its permissions")
    return path


def check_run_folder(path: str | Path, overwrite: bool, flag: str = "--out") -> Path:
    """`check_folder`, and a non-empty folder is refused unless `overwrite` (nothing is changed yet)."""
    path = check_folder(path, flag)
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ModfitError(
            f"{flag} {path}: the folder is not empty; give a new folder, or --overwrite to replace it"
        )
    return path


def claim_run_folder(path: str | Path, overwrite: bool, flag: str = "--out") -> Path:
    """The folder of one run, owned by it: an empty or new folder, or with `overwrite` an earlier
    run's folder emptied first (its finish marker removed before anything else), so that no output
    mixes two runs."""
    path = check_run_folder(path, overwrite, flag)
    if path.is_dir() and any(path.iterdir()):
        for marker in sorted(path.rglob(FINISHED), key=lambda p: len(p.parts)):
            marker.unlink()
        for entry in path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _usual_permissions(folder: Path) -> None:
    """mkdtemp makes 0700 and some writers 0600: give a saved folder the permissions of the rest."""
    mask = umask()
    for entry in [folder, *folder.rglob("*")]:
        os.chmod(entry, (0o777 if entry.is_dir() else 0o666) & ~mask)


def write_json(path: str | Path, value: Any) -> None:
    write_atomic(path, json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n")


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


ROWS_COLUMNS = ["row", "text", "label", "scanner_label", "suspicion", "flagged", "action"]
TRIGGER_FEATURES_COLUMNS = ["feature", "label", "z", "rows", "flagged"]


def rows_text(decisions) -> str:
    """A defence's verdict on every training row (`RowDecision`s) as CSV: the rows it acted on first,
    then by suspicion, highest first; `flagged` is 0/1 and the suspicion rounded to 6 places."""
    ordered = sorted(decisions, key=lambda d: (d.action == "kept", -d.suspicion))
    rows = ({**asdict(d), "flagged": int(d.flagged), "suspicion": round(d.suspicion, 6)} for d in ordered)
    return csv_text(rows, ROWS_COLUMNS)


def corrected_text(decisions) -> str:
    """The training set as the defence left it, in the file's order: `text,label`, relabelled rows
    with their new label, dropped rows gone; a file to train on anywhere."""
    rows = ({"text": d.text, "label": d.corrected_label} for d in decisions if d.action != "dropped")
    return csv_text(rows, ["text", "label"])


def write_run(result, out: str | Path, save_model: bool = False, write_corrected: bool = False) -> None:
    """config.json, history.csv/.jsonl, metrics.json and dynamics.png (and the model) of one run;
    with a row-judging defence (`safe`) its verdict per row, rows.csv (and the corrected training set,
    corrected.csv, when asked), and with `safe`'s `feature_z` the spurious features it found,
    trigger_features.csv (the top 20, highest z first)."""
    from modfit.report.dynamics import plot_dynamics

    out = Path(out)
    points = [asdict(p) for p in result.history]
    columns = list(points[0]) if points else []
    write_json(out / "config.json", to_dict(result.experiment))
    write_atomic(out / "history.csv", csv_text(points, columns))
    write_atomic(
        out / "history.jsonl", "".join(json.dumps(json_safe(p), allow_nan=False) + "\n" for p in points)
    )
    write_atomic(out / "dynamics.png", plot_dynamics({result.experiment.defence: result.history}))
    decisions = result.defence.rows if result.defence else ()
    if decisions:
        write_atomic(out / "rows.csv", rows_text(decisions))
    features = result.defence.details.get("trigger_features") if result.defence else None
    if features is not None:  # safe's feature_z: the surface forms it took for a trigger
        write_atomic(out / "trigger_features.csv", csv_text(features, TRIGGER_FEATURES_COLUMNS))
    if write_corrected:
        if not decisions:
            raise ModfitError(f"{result.experiment.defence} judges no training row: nothing to correct")
        write_atomic(out / "corrected.csv", corrected_text(decisions))
    if save_model:
        write_model(shipped_model(result), out / "model")
    write_json(out / FINISHED, result.metrics())  # last: its presence marks a finished run


def shipped_model(result):
    """The run's model as it ships (`modfit.tuning.shipped`), with what it was trained on and with."""
    from modfit.tuning import ship

    return ship(result.model, result.tokenizer, **model_about(to_dict(result.experiment)))


def model_about(experiment: dict[str, Any]) -> dict[str, Any]:
    """What a shipped model records of its run (an experiment as plain data: a run's config.json);
    its `dataset` also names the labels (`modfit.data.sources.label_names`)."""
    tuning = experiment.get("tuning") or {}
    return {
        "method": tuning.get("method", "full"),
        "reparameterized": (tuning.get("options") or {}).get("reparam") is not None,
        "defence": experiment.get("defence"),
        "dataset": experiment.get("dataset"),
        "max_length": (experiment.get("model") or {}).get("max_length"),
    }


def write_model(model, folder: str | Path) -> None:
    """A shipped model (`ShippedModel`) into `folder`, whole or not at all: written in a temporary
    folder beside it, then put in place of what `folder` held."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        model.save(staging)
        _usual_permissions(staging)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
