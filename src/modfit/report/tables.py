"""The main results table: CACC, ASR and its floor, mean ± std over seeds, per defence and attack."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from modfit.metrics import NO_TASK_FLOOR
from modfit.report.document import Entry, Table
from modfit.store import StoredCell


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (0 for one value) of the finite values given."""

    mean: float
    std: float
    count: int


def spread(values: Iterable[float | None]) -> Spread | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return Spread(statistics.fmean(finite), std, len(finite))


def percent(value: Spread | None, expected: int = 1) -> str:
    """`91.2 ± 0.4` in percent; `(n=2)` when fewer seeds than the study's are done; `–` when none."""
    if value is None:
        return "–"
    text = (
        f"{100 * value.mean:.1f}" if value.count == 1 else f"{100 * value.mean:.1f} ± {100 * value.std:.1f}"
    )
    return text + (f" (n={value.count})" if value.count < expected else "")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def params(counts: Iterable[int | None]) -> str:
    known = sorted({c for c in counts if c is not None})
    if not known:
        return "–"
    return f"{known[0]:,}" if len(known) == 1 else f"{known[0]:,}–{known[-1]:,}"


def ordered(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def metric(cells: list[StoredCell], name: str) -> Spread | None:
    return spread(c.metrics.get(name) for c in cells if c.status == "done" and c.metrics)


def main_table(cells: list[StoredCell]) -> Table:
    """Rows: defences; per attack CACC, ASR and floor; then trainable parameters and wall time per run.

    `cells` share dataset, mode and rate. The lowest mean ASR of each attack is marked.
    """
    attacks = ordered(c.attack for c in cells)
    defences = ordered(c.defence for c in cells)
    expected = len({c.seed for c in cells})
    header = ["defence"]
    for attack in attacks:
        header += [f"{attack} CACC", f"{attack} ASR", f"{attack} floor"]
    header += ["trainable params", "wall time / run"]
    asr = {
        (d, a): metric([c for c in cells if c.defence == d and c.attack == a], "asr")
        for d in defences
        for a in attacks
    }
    best = {}
    for attack in attacks:
        means = [s.mean for d in defences if (s := asr[(d, attack)]) is not None]
        best[attack] = min(means) if means else None
    rows = []
    for defence in defences:
        mine = [c for c in cells if c.defence == defence]
        row = [Entry(defence)]
        for attack in attacks:
            group = [c for c in mine if c.attack == attack]
            value = asr[(defence, attack)]
            floor = metric(group, "asr_floor")
            no_task = floor is not None and floor.mean >= NO_TASK_FLOOR
            row += [
                Entry(percent(metric(group, "cacc"), expected)),
                Entry(percent(value, expected), strong=value is not None and value.mean == best[attack]),
                Entry(percent(floor, expected) + (" (no task)" if no_task else "")),
            ]
        done = [c for c in mine if c.status == "done"]
        seconds = spread(c.seconds for c in done)
        row += [
            Entry(params(c.trainable_params for c in done)),
            Entry(duration(seconds.mean if seconds else None)),
        ]
        rows.append(row)
    caption = (
        f"CACC, ASR and ASR floor in %, mean ± std over {expected} seed(s); bold: lowest ASR of the attack; "
        "ASR near its floor means the backdoor was not learned; (no task): a floor of 90 % or more, the "
        "model calls nearly every clean input the target — nothing learned, nothing defended; – : not run "
        "yet or failed."
    )
    return Table(header, rows, caption)
