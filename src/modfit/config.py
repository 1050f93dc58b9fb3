"""Typed, frozen configuration records, parsed once at the edge and round-tripped through JSON/YAML.

Every record is a frozen dataclass; `from_dict` validates keys and types with a message that names
the offending key, and `to_dict` gives plain data for `config.json` and the grid's store.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from modfit.errors import ModfitError, require

C = TypeVar("C")
# How poisoned rows are drawn and labelled (`modfit.attacks.poison`): dirty, clean or mixed label.
POISON_MODES = ("dirty", "clean", "mix")


def _number(value: Any, kind: type, where: str) -> Any:
    """An int or (finite) float; a float written as text is read, since YAML 1.1 reads `1e-5` as a
    string, and a JSON config is read by the same YAML parser."""
    if isinstance(value, bool):
        raise ModfitError(f"{where} must be {kind.__name__}, got {value!r}")
    if kind is float and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ModfitError(f"{where} must be float, got {value!r}") from None
    if kind is float and isinstance(value, int | float):
        if not math.isfinite(value):
            raise ModfitError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if kind is int and isinstance(value, int):
        return value
    raise ModfitError(f"{where} must be {kind.__name__}, got {value!r}")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise ModfitError(f"{where} must be a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if annotation in (int, float):
        return _number(value, annotation, where)
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation is str and isinstance(value, str):
        return value
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        if isinstance(value, Mapping):
            return dict(value)
        raise ModfitError(f"{where} must be a mapping, got {value!r}")
    if origin is tuple:
        if isinstance(value, str) and args and args[0] is str:  # `cf mn` for a list of words
            return tuple(value.split())
        if isinstance(value, list | tuple):
            if args and args[0] is str:  # a YAML list of words may hold numbers: they are words too
                if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
                    raise ModfitError(f"{where} must be a list of words, got {value!r}")
                return tuple(str(v) for v in value)
            return tuple(value)
        raise ModfitError(f"{where} must be a list, got {value!r}")
    if annotation is Any:
        return value
    name = getattr(annotation, "__name__", str(annotation))
    raise ModfitError(f"{where} must be {name}, got {value!r}")


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _from_text(text: str, annotation: Any, where: str) -> Any:
    """A command-line `KEY=VALUE` value read as the option's declared type (never guessed from the text,
    so `sentence=yes` stays the string "yes" and `sentence=` is the empty string, not None)."""
    import yaml

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.strip().lower() in ("", "none", "null") and type(None) in args:
            return None
        return _from_text(text, next(a for a in args if a is not type(None)), where)
    if annotation is str or annotation is Any and not text.strip().startswith(("[", "{")):
        return text
    if annotation is bool:
        word = text.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ModfitError(f"{where} must be true or false, got {text!r}")
        return word in _TRUE
    if annotation is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ModfitError(f"{where} must be a whole number, got {text!r}") from None
    if annotation is float:
        return _number(text.strip(), float, where)
    if origin is tuple and not text.strip().startswith("["):
        return tuple(text.replace(",", " ").split())
    try:  # a list or mapping: YAML flow syntax, e.g. [query, value] or {in_dim: 2}
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ModfitError(f"{where}: cannot read {text!r} ({str(err).splitlines()[0]})") from None


def options_from_text(cls: type, text: Mapping[str, str], where: str) -> dict[str, Any]:
    """Command-line `KEY=VALUE` strings read as the fields of options record `cls` declares (an unknown
    key is kept, for `from_dict` to name with the known ones)."""
    hints = typing.get_type_hints(cls)
    return {k: _from_text(v, hints[k], f"{where}.{k}") if k in hints else v for k, v in text.items()}


def from_dict(cls: type[C], data: Mapping[str, Any], where: str = "config") -> C:
    """Build a config record from plain data; unknown keys and wrong types are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if not isinstance(data, Mapping):
        raise ModfitError(f"{where} must be a mapping, got {data!r}")
    unknown = sorted(set(data) - names)
    if unknown:
        raise ModfitError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(names))}")
    values = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    record = cls(**values)
    validate = getattr(record, "validate", None)
    if validate and not hasattr(cls, "__post_init__"):  # records with __post_init__ validated themselves
        validate()
    return record


def read_yaml(path: str | Path, what: str) -> Any:
    """A YAML (or JSON) file's content; a missing or unparsable file is a one-line error naming `what`."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModfitError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise ModfitError(f"{what}: is a folder; give a YAML or JSON file") from None
    except PermissionError:
        raise ModfitError(f"{what}: not readable; check its permissions") from None
    except UnicodeDecodeError as err:
        raise ModfitError(
            f"{what}: bytes at offset {err.start} are not UTF-8; re-save the file as UTF-8"
        ) from None
    except yaml.YAMLError as err:
        raise ModfitError(f"{what}: not valid YAML/JSON ({str(err).splitlines()[0]})") from None


def to_dict(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge plain dicts: `override` wins, nested mappings merge key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class Checked:
    """A frozen config record that is valid once constructed, from a file or in Python: each field is
    coerced to its declared type (a nested mapping becomes its record), then `validate()` runs."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        where = type(self).__name__
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            coerced = _coerce(value, hints[f.name], f"{where}.{f.name}")
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)  # frozen: normalise once, at construction
        self.validate()

    def validate(self) -> None:
        """The checks across fields and of ranges; a failed one raises ModfitError."""


@dataclass(frozen=True)
class AttackConfig(Checked):
    """How the training data is poisoned: which attack, the poisoning `mode`, the poisoned share `rate`
    of the training set and the attacker's `target` label (docs/getting-started.md, "The protocol in brief")."""

    name: str = "none"  # no attack unless asked: a user's own data is trained on as given
    mode: str = "dirty"
    rate: float = 0.1
    target: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        require(
            self.mode in POISON_MODES,
            f"attack mode {self.mode!r}: use {', '.join(POISON_MODES[:-1])} or {POISON_MODES[-1]}",
        )
        require(0.0 <= self.rate <= 1.0, f"poison rate {self.rate}: use a share between 0 and 1, e.g. 0.1")
        require(self.target >= 0, f"target label {self.target}: use a label index >= 0")


@dataclass(frozen=True)
class ModelConfig(Checked):
    """The victim. `name=None` is the packaged MiniLM (EfficientNet-Lite0 for an image dataset);
    `pooling=None` picks per model; `image_size=None` feeds images at their stored size. `head`: one
    `linear` layer on the pooled features, or `roberta`, the paper's (RoBERTa's classification head on
    the first token: dropout, dense H×H, tanh, dropout, output layer; `modfit.model`)."""

    name: str | None = None
    pooling: str | None = None
    max_length: int = 64
    image_size: int | None = None
    head: str = "linear"

    def validate(self) -> None:
        require(self.pooling in (None, "cls", "mean"), f"pooling {self.pooling!r}: use cls or mean")
        require(self.head in ("linear", "roberta"), f"head {self.head!r}: use linear or roberta")
        require(
            self.head == "linear" or self.pooling != "mean",
            "head roberta reads the first token, so it takes no mean pooling; use pooling cls or leave it unset",
        )
        require(self.max_length >= 8, f"max_length {self.max_length}: use at least 8 tokens")
        require(
            self.image_size is None or self.image_size >= 8,
            f"image_size {self.image_size}: use at least 8 px",
        )


@dataclass(frozen=True)
class TuningConfig(Checked):
    """Which parameters adapt and how they are produced (`full`, `head`, and the PEFT methods)."""

    method: str = "full"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig(Checked):
    """The training loop's settings. `epochs` may be fractional.

    `select`: the final model is the `last` step's, the `best-dev` point's, or (`auto`) the end of
    moderate-fitting found from the training dynamics (`modfit.auto`), where training also stops.
    Evaluation (`modfit.schedule`): `eval_every=0` picks the interval, and without `eval_size` the
    intermediate points use seeded subsets sized so that they cost at most `eval_share` of the
    training compute (0: every point on the full sets); the final point is always on the full sets.
    `precision`: `auto` (bf16 where the hardware has it, else fp32), `fp32`, `bf16`, `fp16` (CUDA).
    `group_by_length`: batches of rows of similar length (less padding), still seeded and random."""

    epochs: float = 3.0
    lr: float = 2e-5
    batch_size: int = 32
    warmup_ratio: float = 0.0
    head_lr_scale: float = 1.0
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    eval_every: int = 0
    eval_size: int | None = None
    eval_share: float = 0.3
    select: str = "last"
    precision: str = "auto"
    group_by_length: bool = True

    def validate(self) -> None:
        require(self.epochs > 0, f"epochs {self.epochs}: use a positive number (fractions allowed)")
        require(self.lr > 0, f"lr {self.lr}: use a positive learning rate, e.g. 2e-5")
        require(self.batch_size >= 1, f"batch_size {self.batch_size}: use at least 1")
        require(
            self.head_lr_scale > 0,
            f"head_lr_scale {self.head_lr_scale}: use a positive multiple of lr, e.g. 10",
        )
        require(0 <= self.warmup_ratio < 1, f"warmup_ratio {self.warmup_ratio}: use a share in [0, 1)")
        require(self.eval_every >= 0, f"eval_every {self.eval_every}: use steps >= 0 (0 = automatic)")
        require(self.eval_size is None or self.eval_size > 0, "eval_size: use a positive row count")
        require(0 <= self.eval_share <= 1, f"eval_share {self.eval_share}: use a share in [0, 1], e.g. 0.3")
        require(
            self.precision in ("auto", "fp32", "bf16", "fp16"),
            f"precision {self.precision!r}: use auto, fp32, bf16 or fp16",
        )
        require(
            self.select in ("last", "best-dev", "auto"), f"select {self.select!r}: use last, best-dev or auto"
        )


@dataclass(frozen=True)
class Experiment(Checked):
    """One run: dataset, attack, defence, model and training settings, and the seed for everything.

    `defence_options` are the settings of a baseline defence's procedure (docs/defences/baselines.md, "Baseline defences");
    a preset defence takes none. `preset_applied` records that `modfit.resolve` merged the defence's
    preset under these settings; `modfit.run` resolves an experiment built without it (docs/getting-started.md, "Python").
    """

    dataset: str = "sst2"
    attack: AttackConfig = field(default_factory=AttackConfig)
    defence: str = "none"
    defence_options: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    train_size: int | None = None
    poison_test: str | None = None
    seed: int = 0
    preset_applied: bool = False

    def validate(self) -> None:
        require(self.train_size is None or self.train_size > 0, "train_size: use a positive row count")
        require(
            self.poison_test is None or self.attack.name == "none",
            f"poison_test {self.poison_test}: a file of triggered test rows is for --attack none; "
            f"attack {self.attack.name!r} makes its own",
        )
