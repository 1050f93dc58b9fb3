"""A study spec: the axes of a grid of experiments, parsed and checked once, at the edge.

```yaml
name: paper-table
datasets: [sst2, hsol]              # or `dataset: sst2`
attacks: [badnet, {name: badnet, options: {num_triggers: 3}, label: badnet-3}]
defences: [none, fewer-epochs, {name: quarter-epoch, preset: fewer-epochs, train: {epochs: 0.25}}]
rates: [0.1]                        # or `rate: 0.1`
modes: [dirty]
seeds: [0, 1, 2]
target: 1                           # shared settings: target, train_size, eval_size, model, train, tuning
train: {eval_size: 1000}
exclude: [{dataset: hsol, attack: style}]
representations: {sample: 200, checkpoints: [0, 0.5, 1], cells: [{seed: 0}]}   # or `true`
```

A defence preset overrides the shared settings (a study's `train.epochs` is the undefended baseline;
`fewer-epochs` must still mean fewer); a defence entry's own settings override its preset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modfit.config import POISON_MODES, from_dict, read_yaml
from modfit.errors import ModfitError
from modfit.representations import RepresentationOptions

AXES = {"dataset": "datasets", "attack": "attacks", "defence": "defences", "rate": "rates",
        "mode": "modes", "seed": "seeds"}  # fmt: skip
SHARED = ("model", "train", "tuning", "train_size", "poison_test", "target", "eval_size")
META = ("name", "exclude", "representations")
DEFENCE_SETTINGS = ("train", "tuning", "model", "defence_options")


@dataclass(frozen=True)
class AttackEntry:
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        if not self.options:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in sorted(self.options.items()))})"


@dataclass(frozen=True)
class DefenceEntry:
    """`name` labels the defence in the report; `preset` is the registered preset it starts from."""

    name: str
    preset: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    name: str
    datasets: tuple[str, ...]
    attacks: tuple[AttackEntry, ...]
    defences: tuple[DefenceEntry, ...]
    rates: tuple[float, ...]
    modes: tuple[str, ...]
    seeds: tuple[int, ...]
    shared: dict[str, Any]
    exclude: tuple[dict[str, Any], ...] = ()
    representations: RepresentationOptions | None = None
    representations_for: tuple[dict[str, Any], ...] = ()


DEFAULTS: dict[str, list[Any]] = {"attacks": ["none"], "defences": ["none"], "rates": [0.1],
                                  "modes": ["dirty"], "seeds": [0]}  # fmt: skip


def _axis(data: Mapping[str, Any], singular: str, where: str) -> list[Any]:
    plural = AXES[singular]
    if singular in data and plural in data:
        raise ModfitError(f"{where}: give {singular!r} or {plural!r}, not both")
    if singular in data:
        value = data[singular]
        return list(value) if isinstance(value, list) else [value]
    if plural in data:
        value = data[plural]
        if not isinstance(value, list) or not value:
            raise ModfitError(f"{where}: {plural!r} must be a non-empty list, got {value!r}")
        return value
    if plural in DEFAULTS:
        return list(DEFAULTS[plural])
    raise ModfitError(f"{where}: no {plural!r}; list at least one, e.g. {plural}: [sst2]")


def _typed(values: list[Any], kind: type, key: str, where: str) -> tuple[Any, ...]:
    out = []
    for value in values:
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ModfitError(f"{where}: {key} entry {value!r} must be {kind.__name__}")
        out.append(value)
    if len(set(out)) != len(out):
        raise ModfitError(f"{where}: {key} lists {sorted({v for v in out if out.count(v) > 1})[0]!r} twice")
    return tuple(out)


def _attack(value: Any, where: str) -> AttackEntry:
    if isinstance(value, str):
        return AttackEntry(value)
    if isinstance(value, Mapping):
        entry = from_dict(AttackEntry, value, where)
        if not isinstance(entry.name, str) or not entry.name:
            raise ModfitError(f"{where}: an attack needs a name")
        return entry
    raise ModfitError(f"{where}: an attack is a name or a mapping with name, options, label")


def _defence(value: Any, where: str) -> DefenceEntry:
    from modfit.defences import DEFENCES, preset

    if isinstance(value, str):
        preset(value)  # an unknown preset is an error now, not after an hour of other cells
        return DefenceEntry(value, value)
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise ModfitError(
            f"{where}: a defence is a preset name or a mapping with name, preset, {', '.join(DEFENCE_SETTINGS)}"
        )
    unknown = sorted(set(value) - {"name", "preset", *DEFENCE_SETTINGS})
    if unknown:
        known = ", ".join(["name", "preset", *DEFENCE_SETTINGS])
        raise ModfitError(f"{where}: unknown key {unknown[0]!r}; known keys: {known}")
    name = value["name"]
    chosen = value.get("preset", name if name in DEFENCES or name.endswith("+auto") else "none")
    preset(chosen)
    return DefenceEntry(name, chosen, {k: value[k] for k in DEFENCE_SETTINGS if k in value})


def _matchers(value: Any, key: str, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) and v for v in value):
        raise ModfitError(f"{where}: {key} must be a list of mappings like {{attack: style, dataset: hsol}}")
    for index, entry in enumerate(value):
        unknown = sorted(set(entry) - set(AXES))
        if unknown:
            raise ModfitError(f"{where}: {key}[{index}]: unknown key {unknown[0]!r}; use {', '.join(AXES)}")
    return tuple(dict(entry) for entry in value)


def _representations(value: Any, where: str) -> tuple[RepresentationOptions | None, tuple[dict, ...]]:
    if value is None or value is False:
        return None, ()
    if value is True:
        return RepresentationOptions(), ()
    if not isinstance(value, Mapping):
        raise ModfitError(
            f"{where}: representations is true, false or a mapping (sample, checkpoints, cells)"
        )
    options = {k: v for k, v in value.items() if k != "cells"}
    cells = _matchers(value["cells"], "representations.cells", where) if "cells" in value else ()
    return from_dict(RepresentationOptions, options, f"{where}: representations"), cells


def _shared(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The settings every cell shares, in the shape of `Experiment` (shortcuts expanded)."""
    for key in ("model", "train", "tuning"):
        if key in data and not isinstance(data[key], Mapping):
            raise ModfitError(f"{where}: {key!r} must be a mapping of settings, got {data[key]!r}")
    shared = {k: data[k] for k in ("model", "train", "tuning", "train_size", "poison_test") if k in data}
    if "target" in data:
        shared["attack"] = {"target": data["target"]}
    if "eval_size" in data:
        shared["train"] = {**shared.get("train", {}), "eval_size": data["eval_size"]}
    return shared


def parse_spec(data: Any, source: str = "spec") -> StudySpec:
    """A `StudySpec` from parsed YAML; every problem is one line naming `source` and the key."""
    from modfit.attacks import ATTACKS

    if not isinstance(data, Mapping):
        raise ModfitError(f"{source}: expected a mapping of study settings at the top level")
    known = {*AXES, *AXES.values(), *SHARED, *META}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ModfitError(f"{source}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    datasets = _typed(_axis(data, "dataset", source), str, "datasets", source)
    attacks = tuple(
        _attack(a, f"{source}: attacks[{i}]") for i, a in enumerate(_axis(data, "attack", source))
    )
    for attack in attacks:
        if attack.name != "none":
            ATTACKS.get(attack.name)
    if len({a.display for a in attacks}) != len(attacks):
        raise ModfitError(f"{source}: two attacks share a label; give one of them `label:`")
    defences = tuple(
        _defence(d, f"{source}: defences[{i}]") for i, d in enumerate(_axis(data, "defence", source))
    )
    if len({d.name for d in defences}) != len(defences):
        raise ModfitError(f"{source}: two defences share the name; name each one differently")
    modes = _typed(_axis(data, "mode", source), str, "modes", source)
    for mode in modes:
        if mode not in POISON_MODES:
            raise ModfitError(f"{source}: mode {mode!r}: use dirty, clean or mix")
    representations, representations_for = _representations(data.get("representations"), source)
    return StudySpec(
        name=str(data.get("name") or Path(source).stem),
        datasets=datasets,
        attacks=attacks,
        defences=defences,
        rates=_typed(_axis(data, "rate", source), float, "rates", source),
        modes=modes,
        seeds=_typed(_axis(data, "seed", source), int, "seeds", source),
        shared=_shared(data, source),
        exclude=_matchers(data["exclude"], "exclude", source) if "exclude" in data else (),
        representations=representations,
        representations_for=representations_for,
    )


def read_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> StudySpec:
    """Parse a spec file; `overrides` (e.g. `train_size` from a flag) replace its top-level keys."""
    loaded = read_yaml(path, f"study spec {path}")
    if overrides and isinstance(loaded, Mapping):
        loaded = {**loaded, **overrides}
    return parse_spec(loaded, str(path))
