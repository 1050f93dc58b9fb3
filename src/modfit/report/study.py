"""A study's report from its stored cells: status, main tables, learning dynamics, poison-rate curves,
representation maps and failures. Pure: it returns a `Document`; `write_report` writes it."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from modfit.report.document import Code, Document, Entry, Figure, Heading, Table, Text
from modfit.report.tables import duration, main_table, metric, ordered
from modfit.representations import RepresentationSnapshot
from modfit.store import StoredCell
from modfit.train import EvalPoint

MODES = {"dirty": "dirty-label", "clean": "clean-label", "mix": "mixed-label"}


def rate_text(rate: float) -> str:
    return f"{100 * rate:g}%"


def _group(cells: list[StoredCell], *keys: str) -> dict[tuple, list[StoredCell]]:
    groups: dict[tuple, list[StoredCell]] = {}
    for cell in cells:
        groups.setdefault(tuple(getattr(cell, k) for k in keys), []).append(cell)
    return groups


def _point(values: dict) -> EvalPoint:
    """An `EvalPoint` from stored JSON (NaN was stored as null)."""
    names = [f.name for f in dataclasses.fields(EvalPoint)]
    return EvalPoint(**{n: math.nan if values.get(n) is None else values[n] for n in names})


def mean_history(cells: list[StoredCell]) -> list[EvalPoint]:
    """The seeds' histories averaged point by point; the first seed's alone if their steps differ."""
    histories = [[_point(p) for p in c.history] for c in sorted(cells, key=lambda c: c.seed) if c.history]
    if not histories:
        return []
    steps = [p.step for p in histories[0]]
    if any([p.step for p in h] != steps for h in histories[1:]):
        return histories[0]
    averaged = []
    for points in zip(*histories, strict=True):
        values = {}
        for field in dataclasses.fields(EvalPoint):
            numbers = [getattr(p, field.name) for p in points]
            finite = [v for v in numbers if not math.isnan(v)]
            values[field.name] = sum(finite) / len(finite) if finite else math.nan
        values["step"] = points[0].step
        averaged.append(EvalPoint(**values))
    return averaged


class FigureNames:
    """File names from labels, unique within one report."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, *parts: object) -> str:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(str(p) for p in parts)).strip("-.")
        name, index = f"{stem}.png", 1
        while name in self.used:
            index += 1
            name = f"{stem}-{index}.png"
        self.used.add(name)
        return name


@dataclass(frozen=True)
class ReportOptions:
    projection: str = "auto"  # representation maps: auto (t-SNE with scikit-learn, else PCA), pca, tsne
    title: str | None = None


def _status(cells: list[StoredCell]) -> list:
    distinct = {c.hash: c for c in cells}
    counts = {
        s: sum(c.status == s for c in distinct.values()) for s in ("done", "failed", "running", "pending")
    }
    compute = sum(c.seconds or 0.0 for c in distinct.values() if c.status == "done")
    text = (
        f"{len(cells)} cells ({len(distinct)} distinct runs): {counts['done']} done, {counts['failed']} failed, "
        f"{counts['running']} running, {counts['pending']} pending. Compute in finished runs: {duration(compute)}."
    )
    if counts["done"] < len(distinct):
        text += " The study is not finished: tables show what is done."
    return [Text(text)]


def _tables(cells: list[StoredCell]) -> list:
    blocks: list = [Heading("Main results")]
    for (dataset, mode, rate), group in _group(cells, "dataset", "mode", "rate").items():
        blocks += [
            Heading(f"{dataset} · {MODES.get(mode, mode)} · rate {rate_text(rate)}", 3),
            main_table(group),
        ]
    from modfit.report.detection import detection_table

    table = detection_table(cells, MODES)
    return blocks + ([Heading("Detection"), table] if table else [])


def _dynamics(cells: list[StoredCell], names: FigureNames) -> list:
    from modfit.report.dynamics import plot_dynamics

    blocks: list = []
    for (dataset, attack, mode, rate), group in _group(cells, "dataset", "attack", "mode", "rate").items():
        histories = {}
        for defence in ordered(c.defence for c in group):
            history = mean_history([c for c in group if c.defence == defence and c.status == "done"])
            if history:
                histories[defence] = history
        if not histories:
            continue
        title = f"{dataset} · {attack} · {MODES.get(mode, mode)} {rate_text(rate)}"
        seeds = len({c.seed for c in group})
        caption = f"{title}: CACC (left), ASR and its floor (right) against training steps, mean over {seeds} seed(s)"
        blocks.append(
            Figure(names("dynamics", dataset, attack, mode, rate), plot_dynamics(histories, title), caption)
        )
    return [Heading("Learning dynamics"), *blocks] if blocks else []


def _rate_curves(cells: list[StoredCell], names: FigureNames) -> list:
    from modfit.report.rates import RatePoint, plot_rate_curves

    attacked = [c for c in cells if c.attack != "none"]
    if len({c.rate for c in attacked}) < 2:
        return []
    blocks: list = [Heading("Poison-rate curves")]
    for (dataset, attack, mode), group in _group(attacked, "dataset", "attack", "mode").items():
        if len({c.rate for c in group}) < 2:
            continue
        curves: dict[str, list[RatePoint]] = {}
        for defence in ordered(c.defence for c in group):
            for rate in sorted({c.rate for c in group}):
                here = [c for c in group if c.defence == defence and c.rate == rate]
                asr, floor, cacc = metric(here, "asr"), metric(here, "asr_floor"), metric(here, "cacc")
                if asr and cacc:
                    point = RatePoint(
                        rate, asr.mean, asr.std, floor.mean if floor else math.nan, cacc.mean, cacc.std
                    )
                    curves.setdefault(defence, []).append(point)
        if curves:
            title = f"{dataset} · {attack} · {MODES.get(mode, mode)}"
            caption = (
                f"{title}: ASR (error bars: std over seeds; dotted: floor) and CACC against the poison rate"
            )
            blocks.append(
                Figure(names("rates", dataset, attack, mode), plot_rate_curves(curves, title), caption)
            )
    return blocks if len(blocks) > 1 else []


def _maps(cells: list[StoredCell], snapshots: Callable[[str], list[RepresentationSnapshot]],
          projection: str, names: FigureNames) -> list:  # fmt: skip
    from modfit.report.maps import choose_projection, plot_representation_map

    wanted = {c.hash: c for c in cells if c.status == "done" and (c.has_representations or c.note)}
    if not wanted:
        return []
    method = choose_projection(projection)
    blocks: list = [
        Heading("Representation maps"),
        Text(
            "The model's sentence representation of a seeded sample of clean and poisoned training rows at "
            f"a few training steps, projected to 2-D ({'t-SNE' if method == 'tsne' else 'PCA'}). Clean rows "
            "are coloured by label; poisoned rows (relabelled to the target) are black crosses."
        ),
    ]
    for cell in wanted.values():
        title = f"{cell.dataset} · {cell.attack} · {cell.defence} · {MODES.get(cell.mode, cell.mode)} {rate_text(cell.rate)} · seed {cell.seed}"
        found = snapshots(cell.hash)
        if not found:
            blocks.append(Text(f"{title}: {cell.note or 'no representations recorded'}"))
            continue
        png = plot_representation_map(found, method, title, seed=cell.seed)
        name = names("map", cell.dataset, cell.attack, cell.defence, cell.mode, cell.rate, f"seed{cell.seed}")
        blocks.append(Figure(name, png, f"{title}: steps {', '.join(str(s.step) for s in found)}"))
    return blocks


def _failures(cells: list[StoredCell]) -> list:
    failed = [c for c in cells if c.status == "failed"]
    if not failed:
        return []
    rows = [
        [Entry(c.dataset), Entry(c.attack), Entry(c.defence), Entry(rate_text(c.rate)), Entry(c.mode),
         Entry(str(c.seed)), Entry((c.error or "")[:300])]
        for c in failed
    ]  # fmt: skip
    header = ["dataset", "attack", "defence", "rate", "mode", "seed", "error"]
    return [Heading("Failed cells"), Table(header, rows, "Rerun `modfit grid` to retry them.", len(header))]


def build_report(
    cells: list[StoredCell],
    snapshots: Callable[[str], list[RepresentationSnapshot]],
    options: ReportOptions | None = None,
    meta: dict[str, str] | None = None,
) -> Document:
    """The whole report of a study; `snapshots(hash)` reads a cell's stored representations."""
    options = options or ReportOptions()
    meta = meta or {}
    names = FigureNames()
    blocks: list = _status(cells)
    if cells:
        blocks += _tables(cells) + _dynamics(cells, names) + _rate_curves(cells, names)
        blocks += _maps(cells, snapshots, options.projection, names) + _failures(cells)
    if meta.get("spec"):
        blocks += [Heading("Spec"), Code(meta["spec"])]
    title = options.title or f"Study: {meta.get('name', 'unnamed')}"
    return Document(title, blocks)
