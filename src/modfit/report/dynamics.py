"""The learning-dynamics plot: CACC and ASR (with its floor) against training steps."""

from __future__ import annotations

from modfit.report.figure import subplots, to_png
from modfit.train import EvalPoint


def plot_dynamics(histories: dict[str, list[EvalPoint]], title: str = "") -> bytes:
    """PNG bytes: left CACC, right ASR (solid) and ASR floor (dotted), one colour per run."""
    figure, (left, right) = subplots(2, width=10, sharex=True)
    for index, (name, history) in enumerate(histories.items()):
        colour = f"C{index}"
        steps = [p.step for p in history]
        left.plot(steps, [p.cacc for p in history], color=colour, marker="o", ms=3, label=name)
        right.plot(steps, [p.asr for p in history], color=colour, marker="o", ms=3, label=f"{name} ASR")
        right.plot(steps, [p.asr_floor for p in history], color=colour, ls=":", label=f"{name} floor")
    for axis, label in ((left, "clean accuracy (CACC)"), (right, "attack success rate")):
        axis.set_xlabel("training step")
        axis.set_ylabel(label)
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    right.legend(fontsize=7)
    return to_png(figure, title)
