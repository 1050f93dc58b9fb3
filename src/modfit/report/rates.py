"""Poison-rate curves: ASR (with its floor) and CACC against the poisoning rate, one line per defence."""

from __future__ import annotations

from dataclasses import dataclass

from modfit.report.figure import subplots, to_png


@dataclass(frozen=True)
class RatePoint:
    """Means and standard deviations over seeds at one rate."""

    rate: float
    asr: float
    asr_std: float
    asr_floor: float
    cacc: float
    cacc_std: float


def plot_rate_curves(curves: dict[str, list[RatePoint]], title: str = "") -> bytes:
    """PNG bytes: left ASR (solid, error bars over seeds) and floor (dotted), right CACC."""
    figure, (left, right) = subplots(2, width=10, sharex=True)
    for index, (name, points) in enumerate(curves.items()):
        colour = f"C{index}"
        points = sorted(points, key=lambda p: p.rate)
        rates = [p.rate for p in points]
        left.errorbar(rates, [p.asr for p in points], yerr=[p.asr_std for p in points], color=colour,
                      marker="o", ms=4, capsize=3, label=f"{name} ASR")  # fmt: skip
        left.plot(rates, [p.asr_floor for p in points], color=colour, ls=":", label=f"{name} floor")
        right.errorbar(rates, [p.cacc for p in points], yerr=[p.cacc_std for p in points], color=colour,
                       marker="o", ms=4, capsize=3, label=name)  # fmt: skip
    rates = sorted({p.rate for points in curves.values() for p in points})
    for axis, label in ((left, "attack success rate"), (right, "clean accuracy (CACC)")):
        if rates and rates[0] > 0 and rates[-1] / rates[0] >= 10:
            axis.set_xscale("log")  # rates such as 1 %, 3 %, …, 30 % spread evenly
        axis.set_xticks(rates, [f"{100 * r:g}%" for r in rates])
        axis.minorticks_off()
        axis.set_xlabel("poison rate")
        axis.set_ylabel(label)
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
    left.legend(fontsize=7)
    right.legend(fontsize=8)
    return to_png(figure, title)
