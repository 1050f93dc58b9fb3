"""Run a study's cells into its store: finished cells are skipped, a failing cell is recorded and the
grid goes on, and identical cells run once."""

from __future__ import annotations

import math
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from modfit.errors import NoTaskWarning
from modfit.grid.cells import Cell
from modfit.grid.reuse import PreparedData, TokenCache, Tokenizers
from modfit.representations import Representations, sample_rows
from modfit.store import CellOutcome, Store, exclusive_writer

CellCallbacks = Callable[[Cell], Sequence[object]]


@dataclass(frozen=True)
class GridSummary:
    cells: int
    distinct: int
    already_done: int
    ran: int
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return (
            f"{self.cells} cells ({self.distinct} distinct): {self.already_done} done before, "
            f"{self.ran} ran{failed} in {self.seconds:.0f}s"
        )


def _number(value: object) -> str:
    return "n/a" if not isinstance(value, float) or math.isnan(value) else f"{value:.3f}"


def summary_line(cell: Cell, outcome: CellOutcome) -> str:
    m = outcome.metrics
    return (
        f"done {cell.coordinates.describe()}: CACC {_number(m['cacc'])}  ASR {_number(m['asr'])} "
        f"(floor {_number(m['asr_floor'])})  trainable {outcome.trainable_params:,}  {outcome.seconds:.0f}s"
    )


class GridRun:
    """The caches one grid run shares across the cells it runs in this process (constructing it does
    nothing else)."""

    def __init__(self, progress: bool = True, callbacks: CellCallbacks | None = None) -> None:
        self.progress = progress
        self.callbacks = callbacks
        self.data = PreparedData()
        self.tokens = TokenCache()
        self.tokenizers = Tokenizers()
        self.dataset: str | None = None

    def run_cell(self, cell: Cell) -> CellOutcome:
        from modfit.experiment import run

        experiment = cell.experiment
        if experiment.dataset != self.dataset:  # cells arrive grouped by dataset: keep one dataset's tokens
            self.tokens.clear()
            self.dataset = experiment.dataset
        data = self.data.get(experiment)
        extra = list(self.callbacks(cell)) if self.callbacks else []
        recorder = self._recorder(cell, data.train) if cell.representations else None
        if recorder:
            extra.append(recorder)
        with warnings.catch_warnings():  # the report marks such a cell "(no task)"; no warning per cell
            warnings.simplefilter("ignore", NoTaskWarning)
            result = run(
                experiment,
                progress=self.progress,
                extra_callbacks=extra,
                data=data,
                encoder=self.tokens.encode,
            )
        return CellOutcome(
            metrics=result.metrics(),
            history=[asdict(p) for p in result.history],
            trainable_params=result.trainable_params,
            seconds=result.seconds,
            snapshots=recorder.snapshots if recorder else [],
            note=recorder.note if recorder else None,
        )

    def _recorder(self, cell: Cell, train: list) -> Representations:
        options = cell.representations
        chosen = sample_rows(train, options.sample, cell.experiment.seed)
        rows = [train[i] for i in chosen]
        tokenizer = self.tokenizers.get(cell.experiment.model)
        encoded = self.tokens.encode(rows, tokenizer, cell.experiment.model.max_length)
        return Representations(encoded, [e.poisoned for e in rows], options.checkpoints)


@dataclass(frozen=True)
class CellResult:
    """What running one cell gave: its outcome, or the one-line error and traceback of its failure."""

    digest: str
    cell: Cell
    outcome: CellOutcome | None = None
    error: str | None = None
    traceback: str | None = None


def run_one(grid: GridRun, digest: str, cell: Cell) -> CellResult:
    """Run a cell; a failure (an `Exception`) is a result, an interruption (Ctrl-C) propagates."""
    try:
        return CellResult(digest, cell, outcome=grid.run_cell(cell))
    except Exception as err:
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        return CellResult(digest, cell, error=message, traceback=traceback.format_exc())


class Executor(Protocol):
    """Where a grid's cells run. `run` claims each cell through `claim` before it starts (skipping one
    it refuses) and yields each result as it arrives; the grid, in this process, writes the store."""

    def run(
        self, todo: Sequence[tuple[str, Cell]], claim: Callable[[str], bool], callbacks: CellCallbacks | None
    ) -> Iterator[CellResult]: ...


class LocalExecutor:
    """One cell after another in this process, sharing poisoned data and token ids between cells."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def run(
        self, todo: Sequence[tuple[str, Cell]], claim: Callable[[str], bool], callbacks: CellCallbacks | None
    ) -> Iterator[CellResult]:
        grid = GridRun(self.progress, callbacks)
        for digest, cell in todo:
            if claim(digest):
                yield run_one(grid, digest, cell)


def run_grid(
    cells: Sequence[Cell],
    store: Store,
    progress: bool = True,
    retry_failed: bool = True,
    callbacks: CellCallbacks | None = None,
    log: Callable[[str], None] | None = None,
    lock: bool = True,
    executor: Executor | None = None,
) -> GridSummary:
    """Run every cell the store does not hold as done (and, with `retry_failed`, the failed ones).

    `callbacks(cell)` gives extra training-loop callbacks per cell; `log` receives one line per
    finished or failed cell (default: printed above the progress bars). `executor` says where the
    cells run (default: here, one after another; `modfit.grid.executors.RayExecutor`: Ray tasks);
    wherever they run, this process alone writes the store. One grid at a time may run a store's
    cells; a second one stops with an error. `lock=False`: the caller holds `exclusive_writer`
    already (taken before it wrote the store's name and spec).
    """
    executor = executor or LocalExecutor(progress)
    if not lock:
        return _run_cells(cells, store, progress, retry_failed, callbacks, log, executor)
    with exclusive_writer(store.path):
        return _run_cells(cells, store, progress, retry_failed, callbacks, log, executor)


def _run_cells(
    cells: Sequence[Cell],
    store: Store,
    progress: bool,
    retry_failed: bool,
    callbacks: CellCallbacks | None,
    log: Callable[[str], None] | None,
    executor: Executor,
) -> GridSummary:
    from tqdm.auto import tqdm

    started = time.perf_counter()
    synced = store.sync(cells)
    statuses = store.statuses()
    distinct: dict[str, Cell] = {}
    for cell in cells:
        distinct.setdefault(cell.hash, cell)
    skip = {"done"} if retry_failed else {"done", "failed"}
    todo = [(h, c) for h, c in distinct.items() if statuses.get(h) not in skip]
    already = sum(statuses.get(h) == "done" for h in distinct)
    bar = tqdm(
        total=len(distinct), initial=len(distinct) - len(todo), desc="grid", unit="cell", disable=not progress
    )
    write = log or (tqdm.write if progress else print)
    claimed: set[str] = set()  # running somewhere, not yet recorded

    def claim(digest: str) -> bool:
        bar.set_postfix_str(distinct[digest].coordinates.describe(), refresh=True)
        if store.claim(digest):
            claimed.add(digest)
            return True
        bar.update(1)
        return False

    ran, failed = 0, []
    try:
        for result in executor.run(todo, claim, callbacks):
            claimed.discard(result.digest)
            if result.outcome is None:  # a failing cell is recorded; the grid goes on
                store.fail(result.digest, result.error or "failed", result.traceback)
                failed.append(result.digest)
                write(f"failed {result.cell.coordinates.describe()}: {result.error}")
            else:
                store.finish(result.digest, result.outcome)
                ran += 1
                write(summary_line(result.cell, result.outcome))
            bar.update(1)
    except BaseException:
        for digest in claimed:  # interrupted (Ctrl-C): not a failure, run them next time
            store.release(digest)
        raise
    finally:
        bar.close()
    return GridSummary(
        cells=synced.cells, distinct=synced.distinct, already_done=already, ran=ran, failed=failed,
        seconds=time.perf_counter() - started,
    )  # fmt: skip
