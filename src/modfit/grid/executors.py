"""`modfit grid --executor ray`: a study's cells as Ray tasks, on a local machine's cores and GPUs or
on a cluster (docs/studies.md, "Studies on a Ray cluster").

What stays the same as the local grid. The driver — the process that runs `modfit grid` — is still
the only writer of the store: it claims a cell when it hands it to Ray, and records what the task
returns; a task returns a `CellResult` and never opens the store. So the store's lock, resume, and
`kill -9` safety mean what they mean locally: a cell handed out but not recorded stays `running` and
runs again next time, and a result is written whole or not at all.

What changes. Each task prepares its own poisoned data and token ids (a fresh `GridRun`): cells run
on different processes and machines, so the local grid's caches cannot be shared, and preparing the
data (seconds) is small beside training a cell (minutes). Scheduling — which node, which GPU, when —
is Ray's: a cell asks for `cpus_per_cell` CPUs and `gpus_per_cell` GPUs and Ray sets
`CUDA_VISIBLE_DEVICES` for it, so a grid spreads over every GPU of the cluster, one run per GPU.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from modfit.errors import ModfitError
from modfit.grid.cells import Cell
from modfit.grid.runner import CellCallbacks, CellResult, GridRun, run_one

MISSING_RAY = "--executor ray needs Ray: pip install 'modfit[ray]'"


def run_cell_task(digest: str, cell: Cell, callbacks: CellCallbacks | None, threads: int) -> CellResult:
    """The body of one Ray task: run the cell here, return its result, touch no store. `threads`:
    the CPUs the task asked for, so that tasks sharing a node do not contend for its cores."""
    import torch

    torch.set_num_threads(threads)
    return run_one(GridRun(progress=False, callbacks=callbacks), digest, cell)


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ModfitError(MISSING_RAY) from None
    return ray


@dataclass(frozen=True)
class RayExecutor:
    """Cells as Ray tasks. `address`: a running cluster (`ray start --head` prints it; "auto" finds
    one started on this machine); None: the cluster in `RAY_ADDRESS`, else a new one on this machine,
    stopped at the end. If this process has already connected to Ray (`ray.init`), that connection
    is used and left open."""

    address: str | None = None
    gpus_per_cell: float = 0.0
    cpus_per_cell: float = 1.0

    def validate(self) -> None:
        if self.cpus_per_cell <= 0 or self.gpus_per_cell < 0:
            raise ModfitError(
                "--executor ray: use --cpus-per-cell above 0 and --gpus-per-cell of 0 or more (e.g. 1, 0.5)"
            )

    def run(
        self, todo: Sequence[tuple[str, Cell]], claim: Callable[[str], bool], callbacks: CellCallbacks | None
    ) -> Iterator[CellResult]:
        self.validate()
        ray = require_ray()
        if not todo:
            return
        connected_here = not ray.is_initialized()
        if connected_here:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        try:
            yield from self._results(ray, todo, claim, callbacks)
        finally:
            if connected_here:
                ray.shutdown()

    def _results(
        self,
        ray: Any,
        todo: Sequence[tuple[str, Cell]],
        claim: Callable[[str], bool],
        callbacks: CellCallbacks | None,
    ) -> Iterator[CellResult]:
        task = ray.remote(num_cpus=self.cpus_per_cell, num_gpus=self.gpus_per_cell)(run_cell_task)
        threads = max(1, int(self.cpus_per_cell))
        pending: dict[Any, tuple[str, Cell]] = {}
        try:
            for digest, cell in todo:  # Ray queues what the cluster cannot start yet
                if claim(digest):
                    pending[task.remote(digest, cell, callbacks, threads)] = (digest, cell)
            while pending:
                [ready], _ = ray.wait(list(pending), num_returns=1)
                digest, cell = pending.pop(ready)
                yield self._result(ray, ready, digest, cell)
        finally:
            for ref in pending:  # interrupted: the driver releases these cells; stop their tasks
                ray.cancel(ref, force=True)

    @staticmethod
    def _result(ray: Any, ref: Any, digest: str, cell: Cell) -> CellResult:
        """The task's result, or its crash (a worker lost after Ray's retries) as the cell's failure."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as err:
            cause = getattr(err, "cause", None) or err  # a RayTaskError's first line names only the task
            message = f"{type(cause).__name__}: {cause}".splitlines()[0]
            return CellResult(digest, cell, error=message, traceback=traceback.format_exc())


def executor_from_flags(
    name: str, address: str | None, gpus_per_cell: float | None, cpus_per_cell: float | None
) -> RayExecutor | None:
    """`modfit grid --executor NAME [--address A] [--gpus-per-cell G] [--cpus-per-cell C]`, checked
    before the store is opened: None runs the cells here."""
    flags = {"--address": address, "--gpus-per-cell": gpus_per_cell, "--cpus-per-cell": cpus_per_cell}
    if name == "local":
        given = [flag for flag, value in flags.items() if value is not None]
        if given:
            raise ModfitError(f"{', '.join(given)} only go with --executor ray")
        return None
    executor = RayExecutor(
        address,
        gpus_per_cell=0.0 if gpus_per_cell is None else gpus_per_cell,
        cpus_per_cell=1.0 if cpus_per_cell is None else cpus_per_cell,
    )
    executor.validate()
    require_ray()
    return executor
