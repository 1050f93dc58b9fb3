"""The detection table: how well the defences that flag rows or inputs found the poisoned ones.

Only cells whose metrics carry detection numbers appear (training-time filters: BKI, CUBE, STRIP's
filter mode, purify, safe; guards that reject inputs: FRR/FAR), so the main table stays about CACC and ASR.
"""

from __future__ import annotations

from modfit.report.document import Entry, Table
from modfit.report.tables import metric, ordered, percent, spread
from modfit.store import StoredCell

COLUMNS = {"precision": "precision", "recall": "recall", "f1": "F1", "auroc": "AUROC", "frr": "FRR",
           "far": "FAR"}  # fmt: skip


def _has_detection(cell: StoredCell) -> bool:
    return cell.status == "done" and bool(cell.metrics) and any(k in cell.metrics for k in COLUMNS)


def _changed_rows(cell: StoredCell) -> float | None:
    """Rows a filter removed, or (`safe`'s relabel) rows whose label it changed."""
    counts = [cell.metrics.get(k) for k in ("removed_rows", "relabelled_rows")]
    return None if all(c is None for c in counts) else sum(c or 0 for c in counts)


def detection_table(cells: list[StoredCell], mode_names: dict[str, str]) -> Table | None:
    """Rows: dataset × mode and rate × attack × defence; numbers in %, mean ± std over seeds; removed
    rows as a count (mean over seeds). None when no cell has detection numbers."""
    chosen = [c for c in cells if _has_detection(c)]
    if not chosen:
        return None
    expected = len({c.seed for c in cells})
    header = ["dataset", "poisoning", "attack", "defence", "removed / relabelled rows", *COLUMNS.values()]
    rows = []
    keys = ordered(f"{c.dataset}\0{c.mode}\0{c.rate}\0{c.attack}\0{c.defence}" for c in chosen)
    for key in keys:
        group = [c for c in chosen if f"{c.dataset}\0{c.mode}\0{c.rate}\0{c.attack}\0{c.defence}" == key]
        first = group[0]
        removed = spread(_changed_rows(c) for c in group)
        poisoning = (
            "none"
            if first.attack == "none"
            else f"{mode_names.get(first.mode, first.mode)} {100 * first.rate:g}%"
        )
        row = [Entry(first.dataset), Entry(poisoning), Entry(first.attack), Entry(first.defence),
               Entry("–" if removed is None else f"{removed.mean:.0f}")]  # fmt: skip
        row += [Entry(percent(metric(group, name), expected)) for name in COLUMNS]
        rows.append(row)
    caption = (
        "Detection against the hidden poisoned marks, computed after each defence chose its rows: precision, "
        "recall and F1 of the rows removed (or, for safe, flagged), AUROC of the suspicion scores; FRR/FAR of guards that reject "
        "inputs (clean test rows rejected, triggered rows accepted); in %, mean ± std over seeds; – : not "
        "measured."
    )
    return Table(header, rows, caption, text_columns=4)
