"""Studies: a spec of axes expands to cells, each an `Experiment`, run resumably into a SQLite store."""

from modfit.grid.cells import Cell, Coordinates, canonical_json, check_cells, config_hash, expand
from modfit.grid.runner import GridSummary, run_grid
from modfit.grid.spec import StudySpec, parse_spec, read_spec

__all__ = [
    "Cell", "Coordinates", "GridSummary", "StudySpec", "canonical_json", "check_cells", "config_hash",
    "expand",
    "parse_spec", "read_spec", "run_grid",
]  # fmt: skip
