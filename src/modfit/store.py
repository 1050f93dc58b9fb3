"""A study's results in one SQLite file (the standard library's sqlite3; no server).

Tables: `cells` (one row per distinct resolved config, keyed by its hash: status, error, metrics,
timings, trainable parameters, history), `coordinates` (where each cell appears in the study: dataset,
attack, defence, rate, mode, seed) and `representations` (opt-in snapshots of the model's sentence
representation). Every change is one short transaction and the journal is in WAL mode, so a crash or
`kill -9` loses at most the cell in flight, and `modfit report` can read while a grid writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from modfit.errors import ModfitError
from modfit.files import canonical_json, json_safe
from modfit.representations import RepresentationSnapshot

SCHEMA_VERSION = "modfit-study/1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    hash TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    traceback TEXT,
    note TEXT,
    metrics TEXT,
    history TEXT,
    trainable_params INTEGER,
    seconds REAL,
    added_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS coordinates (
    dataset TEXT NOT NULL,
    attack TEXT NOT NULL,
    defence TEXT NOT NULL,
    rate REAL NOT NULL,
    mode TEXT NOT NULL,
    seed INTEGER NOT NULL,
    hash TEXT NOT NULL REFERENCES cells(hash),
    position INTEGER NOT NULL,
    PRIMARY KEY (dataset, attack, defence, rate, mode, seed)
);
CREATE TABLE IF NOT EXISTS representations (
    hash TEXT NOT NULL REFERENCES cells(hash),
    step INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    vectors BLOB NOT NULL,
    labels TEXT NOT NULL,
    poisoned TEXT NOT NULL,
    PRIMARY KEY (hash, step)
);
"""


class StoredConfig(Protocol):
    """What the store keeps of a study's cell (`modfit.grid.Cell`): where it sits, its hash and config."""

    coordinates: Any  # a dataclass: dataset, attack, defence, rate, mode, seed
    hash: str

    def config(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CellOutcome:
    """What a finished cell leaves in the store."""

    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    trainable_params: int
    seconds: float
    snapshots: list[RepresentationSnapshot] = field(default_factory=list)
    note: str | None = None


@dataclass(frozen=True)
class StoredCell:
    """One cell as stored, under one of its coordinates (a cell reached twice is listed twice)."""

    hash: str
    dataset: str
    attack: str
    defence: str
    rate: float
    mode: str
    seed: int
    config: dict[str, Any]
    status: str
    attempts: int
    error: str | None
    note: str | None
    metrics: dict[str, Any] | None
    history: list[dict[str, Any]]
    trainable_params: int | None
    seconds: float | None
    has_representations: bool


@dataclass(frozen=True)
class SyncSummary:
    cells: int
    distinct: int
    new: int


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json(value: Any) -> str:
    """JSON with NaN written as null (NaN is no JSON value; an attack-free run has no ASR)."""
    return json.dumps(json_safe(value), allow_nan=False)


class Store:
    """An open store. Build one with `open_store`; the constructor only keeps the connection."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error: a change is whole or absent."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def sync(self, cells: Sequence[StoredConfig]) -> SyncSummary:
        """Add the spec's new cells as pending and point every coordinate at its cell's hash.

        Finished cells stay as they are; a coordinate whose config changed now points at the new cell.
        """
        from dataclasses import asdict

        now = _now()
        new = 0
        seen: dict[str, int] = {}
        with self.transaction() as db:
            for position, cell in enumerate(cells):
                digest = cell.hash
                if digest not in seen:
                    seen[digest] = position
                    inserted = db.execute(
                        "INSERT OR IGNORE INTO cells (hash, config, position, added_at) VALUES (?, ?, ?, ?)",
                        (digest, canonical_json(cell.config()), position, now),
                    ).rowcount
                    new += inserted
                    if not inserted:
                        db.execute("UPDATE cells SET position = ? WHERE hash = ?", (position, digest))
                db.execute(
                    "INSERT OR REPLACE INTO coordinates (dataset, attack, defence, rate, mode, seed, hash, position) "
                    "VALUES (:dataset, :attack, :defence, :rate, :mode, :seed, :hash, :position)",
                    {**asdict(cell.coordinates), "hash": digest, "position": position},
                )
        return SyncSummary(cells=len(cells), distinct=len(seen), new=new)

    def set_meta(self, key: str, value: str) -> None:
        """Study-level facts: its name and the spec text last run into the store."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def meta(self) -> dict[str, str]:
        return dict(self.connection.execute("SELECT key, value FROM meta"))

    def statuses(self) -> dict[str, str]:
        return dict(self.connection.execute("SELECT hash, status FROM cells"))

    def claim(self, digest: str) -> bool:
        """Mark a cell running; False when it is already done."""
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE cells SET status = 'running', attempts = attempts + 1, started_at = ?, "
                "error = NULL, traceback = NULL WHERE hash = ? AND status != 'done'",
                (_now(), digest),
            ).rowcount
        return changed == 1

    def finish(self, digest: str, outcome: CellOutcome) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE cells SET status = 'done', metrics = ?, history = ?, trainable_params = ?, "
                "seconds = ?, note = ?, finished_at = ? WHERE hash = ?",
                (_json(outcome.metrics), _json(outcome.history), outcome.trainable_params,
                 outcome.seconds, outcome.note, _now(), digest),
            )  # fmt: skip
            db.execute("DELETE FROM representations WHERE hash = ?", (digest,))
            for snapshot in outcome.snapshots:
                vectors = snapshot.vectors.astype("float16")  # half precision: maps need no more
                db.execute(
                    "INSERT INTO representations (hash, step, rows, dim, vectors, labels, poisoned) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (digest, snapshot.step, vectors.shape[0], vectors.shape[1], vectors.tobytes(),
                     json.dumps(snapshot.labels), json.dumps([bool(p) for p in snapshot.poisoned])),
                )  # fmt: skip

    def fail(self, digest: str, error: str, traceback: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE cells SET status = 'failed', error = ?, traceback = ?, finished_at = ? WHERE hash = ?",
                (error, traceback, _now(), digest),
            )

    def release(self, digest: str) -> None:
        """Back to pending: the run was interrupted, not failed."""
        with self.transaction() as db:
            db.execute("UPDATE cells SET status = 'pending' WHERE hash = ? AND status = 'running'", (digest,))

    def cells(self) -> list[StoredCell]:
        """Every coordinate with its cell, in study order."""
        cursor = self.connection.execute(
            "SELECT c.hash, k.dataset, k.attack, k.defence, k.rate, k.mode, k.seed, c.config, c.status, "
            "c.attempts, c.error, c.note, c.metrics, c.history, c.trainable_params, c.seconds, "
            "EXISTS (SELECT 1 FROM representations r WHERE r.hash = c.hash) AS has_representations "
            "FROM coordinates k JOIN cells c ON c.hash = k.hash ORDER BY k.position"
        )
        names = [column[0] for column in cursor.description]
        cells = []
        for row in cursor.fetchall():
            values = dict(zip(names, row, strict=True))
            values["config"] = json.loads(values["config"])
            values["metrics"] = json.loads(values["metrics"]) if values["metrics"] else None
            values["history"] = json.loads(values["history"]) if values["history"] else []
            values["has_representations"] = bool(values["has_representations"])
            cells.append(StoredCell(**values))
        return cells

    def snapshots(self, digest: str) -> list[RepresentationSnapshot]:
        import numpy

        rows = self.connection.execute(
            "SELECT step, rows, dim, vectors, labels, poisoned FROM representations WHERE hash = ? ORDER BY step",
            (digest,),
        ).fetchall()
        return [
            RepresentationSnapshot(
                step=step,
                vectors=numpy.frombuffer(blob, dtype="float16").reshape(count, dim).astype("float32"),
                labels=json.loads(labels),
                poisoned=json.loads(poisoned),
            )
            for step, count, dim, blob, labels, poisoned in rows
        ]


@contextmanager
def exclusive_writer(path: str | Path) -> Iterator[None]:
    """Held by the one grid that runs a store's cells: a second grid would redo the first's running
    cell. An OS lock on `PATH.lock`, released by the OS even after `kill -9` (none on Windows). Take it
    before writing anything to the store."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one grid per store is then up to the user
        yield
        return
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ModfitError(
                f"{path}: a grid is already running on this store ({holder}); wait for it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_store(path: str | Path, create: bool = False) -> Store:
    """Open (with `create`, make) a study store; a missing file or one that is no store is an error."""
    path = Path(path)
    if not create and not path.is_file():
        raise ModfitError(f"{path}: no such study store; run `modfit grid SPEC --store {path}` first")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    uri = f"file:{quote(str(path.resolve()))}?mode={'rwc' if create else 'rw'}"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
        connection.execute("PRAGMA busy_timeout = 30000")
        if create:
            connection.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL survives any crash of the process; only a power cut may drop the last commits.
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.executescript(SCHEMA)
            connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
            )
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as err:
        raise ModfitError(f"{path}: not a modfit study store ({err})") from None
    if row is None or row[0] != SCHEMA_VERSION:
        connection.close()
        found = row[0] if row else "none"
        raise ModfitError(f"{path}: store schema {found!r}, this modfit reads {SCHEMA_VERSION!r}")
    return Store(connection, path)
