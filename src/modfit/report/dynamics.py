"""The learning-dynamics plot: CACC and ASR (with its floor) against training steps."""

from __future__ import annotations

from modfit.report.figure import subplots, to_png
from modfit.train import EvalPoint


def _colour(index: int, count: int):
    """Matplotlib's ten default colours; twenty distinct ones when a study has more runs than that."""
    if count <= 10:
        return f"C{index}"
    from matplotlib import colormaps

    return colormaps["tab20"](index % 20)


def plot_dynamics(histories: dict[str, list[EvalPoint]], title: str = "") -> bytes:
    """PNG bytes: left CACC, right ASR (solid) and ASR floor (dotted), one colour per run, one legend
    beside both panels so that many runs stay readable."""
    from matplotlib.lines import Line2D

    figure, (left, right) = subplots(2, width=10, sharex=True)
    for index, (name, history) in enumerate(histories.items()):
        colour = _colour(index, len(histories))
        steps = [p.step for p in history]
        left.plot(steps, [p.cacc for p in history], color=colour, marker="o", ms=3, label=name)
        right.plot(steps, [p.asr for p in history], color=colour, marker="o", ms=3)
        right.plot(steps, [p.asr_floor for p in history], color=colour, ls=":")
    for axis, label in ((left, "clean accuracy (CACC)"), (right, "attack success rate")):
        axis.set_xlabel("training step")
        axis.set_ylabel(label)
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
    handles, labels = left.get_legend_handles_labels()
    handles += [Line2D([], [], color="black", marker="o", ms=3), Line2D([], [], color="black", ls=":")]
    labels += ["CACC / ASR (solid)", "ASR floor (dotted)"]
    figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return to_png(figure, title)
