"""The study commands: `grid` runs a spec's cells into a store, `report` reads one or more stores."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from modfit.errors import ModfitError


def _only_patterns(values: list[str]) -> list[tuple[str, set[str]]]:
    """`--only attack=syntactic,style` → ("attack", {"syntactic", "style"}): a part of a study."""
    from modfit.grid.spec import AXES

    patterns = []
    for value in values:
        axis, _, wanted = value.partition("=")
        if axis not in AXES or not wanted:
            raise ModfitError(
                f"--only {value!r}: use AXIS=VALUE[,VALUE...] with AXIS one of {', '.join(AXES)}"
            )
        patterns.append((axis, set(wanted.split(","))))
    return patterns


def _selects(pattern: tuple[str, set[str]], coordinates) -> bool:
    """Whether a grid cell's coordinates, or a stored cell, has one of the wanted values on the axis."""
    axis, wanted = pattern
    return str(getattr(coordinates, axis)) in wanted


def command_grid(args: argparse.Namespace) -> int:
    from modfit.grid import check_cells, expand, read_spec, run_grid
    from modfit.output import check_file_place
    from modfit.store import exclusive_writer, open_store

    check_file_place(args.store, "--store")
    overrides = {
        k: v for k, v in (("train_size", args.train_size), ("eval_size", args.eval_size)) if v is not None
    }
    spec = read_spec(args.spec, overrides)
    only = _only_patterns(args.only or [])
    cells = [cell for cell in expand(spec) if all(_selects(p, cell.coordinates) for p in only)]
    if not cells:
        raise ModfitError(f"--only {' '.join(args.only)} matches no cell of {spec.name}; check the values")
    check_cells(cells)  # every dataset and target, before a store is touched
    if args.dry_run:
        statuses = {}
        if Path(args.store).is_file():
            with open_store(args.store) as store:
                statuses = store.statuses()
        for cell in cells:
            print(f"{statuses.get(cell.hash, 'new'):8} {cell.hash[:12]}  {cell.coordinates.describe()}")
        print(f"{len(cells)} cells, {len({c.hash for c in cells})} distinct")
        return 0
    from modfit.grid.executors import executor_from_flags

    executor = executor_from_flags(args.executor, args.address, args.gpus_per_cell, args.cpus_per_cell)
    with exclusive_writer(args.store), open_store(args.store, create=True) as store:  # the lock first
        named = store.meta().get("name")
        if named is not None and named != spec.name and not args.force_spec:
            raise ModfitError(
                f"--store {args.store} holds study {named!r}, not {spec.name!r}; give another store, "
                "or --force-spec to run this spec into it"
            )
        store.set_meta("name", spec.name)
        store.set_meta("spec", Path(args.spec).read_text(encoding="utf-8"))
        summary = run_grid(
            cells, store, not args.quiet, retry_failed=not args.skip_failed, lock=False, executor=executor
        )
    print(f"{spec.name}: {summary.describe()} → {args.store}")
    if summary.failed:
        print(
            f"{len(summary.failed)} cell(s) failed; their errors are in the store and the report",
            file=sys.stderr,
        )
        return 1
    return 0


def _join_stores(stores: list, only: list[tuple[str, set[str]]]) -> tuple[list, dict]:
    """The cells of several stores that `only` selects, read once: a cell that several hold (same
    experiment, same coordinates) is listed once, the done copy if any store finished it; and for each
    hash the store that holds the chosen copy (where its representations are)."""
    chosen: dict[tuple, tuple] = {}
    for store in stores:
        for cell in store.cells():
            if not all(_selects(p, cell) for p in only):
                continue
            key = (cell.hash, cell.dataset, cell.attack, cell.defence, cell.rate, cell.mode, cell.seed)
            if key not in chosen or (chosen[key][0].status != "done" and cell.status == "done"):
                chosen[key] = (cell, store)
    owner: dict = {}
    for cell, store in chosen.values():
        if cell.hash not in owner or cell.status == "done":
            owner[cell.hash] = store
    return [cell for cell, _ in chosen.values()], owner


def _check_report_sources(paths: list[str]) -> None:
    """`report` reads study stores (SQLite files); a folder given instead, most often a run's, is named
    as what it is, with where its results are."""
    for path in map(Path, paths):
        if not path.is_dir():
            continue
        if (path / "config.json").is_file() or (path / "metrics.json").is_file():
            raise ModfitError(
                f"{path} is a run folder (modfit train), not a study store: its results are "
                f"{path / 'metrics.json'}, history.csv and dynamics.png; report reads the SQLite file "
                "that `modfit grid SPEC --store FILE` writes"
            )
        raise ModfitError(
            f"{path} is a folder, not a study store; give the SQLite file that `modfit grid SPEC --store "
            "FILE` wrote"
        )


def command_report(args: argparse.Namespace) -> None:
    from modfit.output import check_folder
    from modfit.report.document import write_report
    from modfit.report.study import ReportOptions, build_report
    from modfit.store import open_store

    check_folder(args.out, "--out")
    _check_report_sources(args.store)
    only = _only_patterns(args.only or [])
    with contextlib.ExitStack() as stack:
        stores = [stack.enter_context(open_store(path)) for path in args.store]
        cells, owner = _join_stores(stores, only)
        if not cells and not only:
            raise ModfitError(
                f"{', '.join(args.store)}: no cells yet; run `modfit grid SPEC --store FILE` into it first"
            )
        if not cells:
            raise ModfitError(f"no cell in {', '.join(args.store)} matches --only; check the values")
        metas = [store.meta() for store in stores if store in owner.values()]
        # parts of one study (`grid --only` into several stores) name it, and show its spec, once
        names = dict.fromkeys(m.get("name", "unnamed") for m in metas)
        specs = dict.fromkeys(m["spec"] for m in metas if m.get("spec"))
        meta = {"name": " + ".join(names), "spec": "\n---\n".join(specs)}
        document = build_report(
            cells,
            lambda digest: owner[digest].snapshots(digest),
            ReportOptions(args.projection, args.title),
            meta,
        )
    write_report(document, args.out)
    done = len({c.hash for c in cells if c.status == "done"})
    print(
        f"report of {len(cells)} cells ({done} distinct runs done) → {Path(args.out) / 'report.md'}, report.html"
    )
