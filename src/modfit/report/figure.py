"""Figures as PNG bytes, built on matplotlib's `Figure` directly: no pyplot state, no backend switch."""

from __future__ import annotations

import io
from typing import Any


def subplots(columns: int, width: float, height: float = 4.0, **options: Any):
    """(figure, axes) for one row of `columns` panels; `options` go to `Figure.subplots`."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots(1, columns, **options)


def to_png(figure, title: str = "", dpi: int = 110) -> bytes:
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")  # a legend beside the axes too
    return buffer.getvalue()
