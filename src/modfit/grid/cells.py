"""A study's cells: the cross product of its axes, less the excluded ones, each a resolved `Experiment`.

A cell is identified by a hash of its fully resolved config (canonical JSON: sorted keys, no spaces),
so the same experiment reached twice — two spec entries, or a rerun of the spec — runs once.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modfit.config import Experiment, merge, to_dict
from modfit.defences import DEFENCES, base_defence
from modfit.errors import ModfitError
from modfit.experiment import resolve
from modfit.files import canonical_json
from modfit.grid.spec import StudySpec
from modfit.representations import RepresentationOptions


@dataclass(frozen=True)
class Coordinates:
    """Where a cell sits in the study, as the report labels it."""

    dataset: str
    attack: str
    defence: str
    rate: float
    mode: str
    seed: int

    def describe(self) -> str:
        return (
            f"{self.dataset} · {self.attack} · {self.defence} · {self.mode} {self.rate:g} · seed {self.seed}"
        )


# Experiment settings added after stores existed, by path, with the value that reproduces what stores
# made before them computed: at that value a setting stays out of the hash, so those cells keep theirs.
# (The speed settings' new defaults — grouped batches, bf16 where available, the evaluation budget —
# compute something else, so a cell at those defaults has a new hash and runs anew.) `preset_applied`
# is True in every resolved cell. A path under `tuning.options` counts only where its parents are
# there (a tuning method's options record; `reparam` only in reparameterized cells): the options that
# the paper's recipe added (issue 26) at the values every earlier cell ran with, so that a spec which
# pins the earlier presets keeps its stored hashes.
ADDED_LATER: dict[tuple[str, ...], Any] = {
    ("defence_options",): {},
    ("train", "head_lr_scale"): 1.0,
    ("preset_applied",): True,
    ("train", "eval_share"): 0.0,
    ("train", "precision"): "fp32",
    ("train", "group_by_length"): False,
    ("model", "head"): "linear",
    ("tuning", "options", "reparam", "init"): "matched",
    ("tuning", "options", "reparam", "bias"): False,
    ("tuning", "options", "placement"): "before-norm",
    ("tuning", "options", "activation"): "gelu",
}


def _holder(config: dict[str, Any], parents: list[str]) -> dict[str, Any] | None:
    """The mapping at `parents` in `config`, or None where a parent is absent (or not a mapping)."""
    holder: Any = config
    for parent in parents:
        holder = holder.get(parent) if isinstance(holder, dict) else None
    return holder if isinstance(holder, dict) else None


# Defence options whose default changed after stores existed: (defence, option) → the earlier default.
# A stored cell that leaves the option out ran at that value. In the hash an option at its earlier value
# is left out and one at any other value — the present default included — is written in, so a cell at
# the new default is a new cell, and one pinned to the earlier value keeps its stored hash. An option
# added later at a default that computes what came before it (off) is listed at that default: a spec
# that writes it out (`feature_z: 0`) keeps the hash of one that leaves it out.
OPTIONS_BEFORE: dict[tuple[str, str], Any] = {
    ("safe", "scanner_lr"): 2e-5,
    ("safe", "feature_z"): 0.0,
    ("safe", "feature_select"): "all",
}


def hashed_options(defence: str, options: dict[str, Any]) -> dict[str, Any]:
    """`options` as a cell's hash sees them (OPTIONS_BEFORE)."""
    hashed = dict(options)
    for (name, key), before in OPTIONS_BEFORE.items():
        if base_defence(defence) == name:
            value = hashed.get(key, getattr(DEFENCES.get(name).options(), key))
            if value == before:
                hashed.pop(key, None)
            else:
                hashed[key] = value
    return hashed


@dataclass(frozen=True)
class Cell:
    coordinates: Coordinates
    experiment: Experiment
    representations: RepresentationOptions | None = None

    def config(self) -> dict[str, Any]:
        """Everything that decides what the cell computes and records."""
        experiment = to_dict(self.experiment)
        experiment["defence_options"] = hashed_options(self.experiment.defence, experiment["defence_options"])
        for (*parents, key), default in ADDED_LATER.items():  # older stores keep their cells
            holder = _holder(experiment, parents)
            if holder is not None and key in holder and holder[key] == default:
                del holder[key]
        return {
            "experiment": experiment,
            "representations": to_dict(self.representations) if self.representations else None,
        }

    @property
    def hash(self) -> str:
        return config_hash(self.config())


def config_hash(config: Any) -> str:
    """A hash that does not depend on key order (sha256 of the canonical JSON)."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


def dataset_labels(datasets: tuple[str, ...]) -> dict[str, str]:
    """Short names for the report: a directory's own name, unless two directories share it."""
    short = {d: Path(d).name if ("/" in d or "\\" in d) else d for d in datasets}
    if len(set(short.values())) < len(short):
        return {d: d for d in datasets}
    return short


def matches(coordinates: Coordinates, pattern: dict[str, Any]) -> bool:
    """Every key of `pattern` matches: a value, or a list of values."""
    for key, wanted in pattern.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if getattr(coordinates, key) not in options:
            return False
    return True


def _settings(spec: StudySpec, defence: Any, coordinates: Coordinates, dataset: str, attack: Any) -> dict:
    from modfit.defences import defaults, model_name, preset
    from modfit.vision.data import dataset_kind

    kind = dataset_kind(dataset)
    model = model_name(merge(spec.shared, defence.settings))
    shared = merge(defaults(kind, model), spec.shared)
    settings = merge(merge(shared, preset(defence.preset, kind, model)), defence.settings)
    cell = {
        "dataset": dataset,
        "defence": defence.preset,
        "seed": coordinates.seed,
        "attack": {"name": attack.name, "options": dict(attack.options)},
    }
    if attack.name != "none":  # rate and mode mean nothing without an attack: one clean cell for all
        cell["attack"].update(rate=coordinates.rate, mode=coordinates.mode)
    return merge(settings, cell)


def expand(spec: StudySpec) -> list[Cell]:
    """Every cell, in run order: dataset, seed, attack, rate, mode, then defence innermost, so that a
    dataset's cells run together (its tokens are cached) and cells sharing poisoned data follow each
    other."""
    labels = dataset_labels(spec.datasets)
    cells: list[Cell] = []
    used = [False] * len(spec.exclude)
    for dataset, seed, attack, rate, mode, defence in itertools.product(
        spec.datasets, spec.seeds, spec.attacks, spec.rates, spec.modes, spec.defences
    ):
        coordinates = Coordinates(labels[dataset], attack.display, defence.name, rate, mode, seed)
        excluded = [i for i, pattern in enumerate(spec.exclude) if matches(coordinates, pattern)]
        for i in excluded:
            used[i] = True
        if excluded:
            continue
        try:
            experiment = resolve(_settings(spec, defence, coordinates, dataset, attack))
        except ModfitError as err:
            raise ModfitError(f"{spec.name}: cell {coordinates.describe()}: {err}") from None
        wants_map = spec.representations is not None and (
            not spec.representations_for or any(matches(coordinates, p) for p in spec.representations_for)
        )
        cells.append(Cell(coordinates, experiment, spec.representations if wants_map else None))
    unused = [i for i, u in enumerate(used) if not u]
    if unused:
        raise ModfitError(
            f"{spec.name}: exclude[{unused[0]}] {spec.exclude[unused[0]]} matches no cell; check its spelling"
        )
    if not cells:
        raise ModfitError(f"{spec.name}: every cell is excluded; nothing to run")
    return cells


def _label_count(dataset: str) -> int | None:
    """How many labels a dataset has, found cheaply (None where only loading it would tell: the hub,
    images); an unknown name is the loader's one-line error."""
    from modfit.data import load_dataset
    from modfit.data.loaders import NAMED_DATASETS
    from modfit.vision.data import is_image_dataset

    if dataset.startswith("hf:") or is_image_dataset(dataset):
        return None
    if dataset in NAMED_DATASETS:
        return NAMED_DATASETS[dataset]
    return load_dataset(dataset).num_labels  # a directory of split files: read once, no model


def check_cells(cells: list[Cell]) -> None:
    """What would fail only when a cell runs, found before the grid starts: an unknown dataset or a
    target that is not one of its labels (options and presets were checked when the cells resolved)."""
    counts: dict[str, int | None] = {}
    for cell in cells:
        experiment = cell.experiment
        if experiment.dataset not in counts:
            try:
                counts[experiment.dataset] = _label_count(experiment.dataset)
            except ModfitError as err:
                raise ModfitError(f"cell {cell.coordinates.describe()}: {err}") from None
        count = counts[experiment.dataset]
        target = experiment.attack.target
        if count is not None and experiment.attack.name != "none" and not 0 <= target < count:
            raise ModfitError(
                f"cell {cell.coordinates.describe()}: target label {target} is not a label of "
                f"{experiment.dataset} (0..{count - 1}); set target in the spec"
            )
