"""Flags and a config file become the settings of one experiment: each flag to its place, each
`KEY=VALUE` option read as the type its attack, defence or tuning method declares."""

from __future__ import annotations

import argparse
from typing import Any

from modfit.errors import ModfitError

# flag destination → path in the experiment settings
SETTING_PATHS: dict[str, tuple[str, ...]] = {
    "dataset": ("dataset",),
    "attack": ("attack", "name"),
    "mode": ("attack", "mode"),
    "poison_rate": ("attack", "rate"),
    "target": ("attack", "target"),
    "seed": ("seed",),
    "train_size": ("train_size",),
    "defence": ("defence",),
    "epochs": ("train", "epochs"),
    "lr": ("train", "lr"),
    "batch_size": ("train", "batch_size"),
    "warmup_ratio": ("train", "warmup_ratio"),
    "head_lr_scale": ("train", "head_lr_scale"),
    "eval_every": ("train", "eval_every"),
    "eval_size": ("train", "eval_size"),
    "eval_share": ("train", "eval_share"),
    "precision": ("train", "precision"),
    "group_by_length": ("train", "group_by_length"),
    "select": ("train", "select"),
    "model": ("model", "name"),
    "pooling": ("model", "pooling"),
    "head": ("model", "head"),
    "max_length": ("model", "max_length"),
    "image_size": ("model", "image_size"),
    "tuning": ("tuning", "method"),
    "poison_test": ("poison_test",),
}


def _key_values(pairs: list[str] | None, flag: str) -> dict[str, str]:
    """`KEY=VALUE` pairs as text; `_typed_options` reads each value as its option's declared type."""
    options: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ModfitError(f"{flag} {pair!r}: write KEY=VALUE")
        options[key.strip()] = value
    return options


def _options_type(kind: str, name: str) -> type | None:
    """The options record of attack / defence / tuning method `name`, where one is registered."""
    if kind == "attack":
        from modfit.attacks import ATTACKS

        return ATTACKS.get(name).options if name in ATTACKS else None
    if kind == "defence":
        from modfit.defences import DEFENCES, base_defence

        base = base_defence(name)
        return DEFENCES.get(base).options if base in DEFENCES else None
    return None


def _typed_options(text: dict[str, str], kind: str, name: str, flag: str) -> dict[str, Any]:
    """Command-line option text read as the option's type (`sentence=yes` stays "yes", `num_triggers=3`
    is 3); without a registered type (tuning methods), as YAML, each error one line."""
    import yaml

    from modfit.config import options_from_text

    options_type = _options_type(kind, name)
    if options_type is not None:
        return options_from_text(options_type, text, f"{flag} ({name})")
    typed: dict[str, Any] = {}
    for key, value in text.items():
        try:
            typed[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ModfitError(
                f"{flag} {key}={value!r}: cannot read it ({str(err).splitlines()[0]})"
            ) from None
    return typed


def _read_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    from modfit.config import read_yaml

    loaded = read_yaml(path, f"--config {path}")
    if not isinstance(loaded, dict):
        raise ModfitError(f"--config {path}: expected a mapping of settings at the top level")
    return loaded


def _setting(settings: dict[str, Any], section: str, key: str) -> Any:
    node = settings.get(section)
    return node.get(key) if isinstance(node, dict) else None


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Config file settings, overridden by every flag the user gave."""
    from modfit.config import merge

    flags: dict[str, Any] = {}
    for dest, path in SETTING_PATHS.items():
        value = getattr(args, dest, None)
        if value is not None:
            node = flags
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
    settings = merge(_read_config(getattr(args, "config", None)), flags)
    if getattr(args, "attack_option", None):
        text = _key_values(args.attack_option, "--attack-option")
        name = str(_setting(settings, "attack", "name") or "none")
        settings = merge(
            settings, {"attack": {"options": _typed_options(text, "attack", name, "--attack-option")}}
        )
    if getattr(args, "tuning_option", None):
        text = _key_values(args.tuning_option, "--tuning-option")
        name = str(_setting(settings, "tuning", "method") or "full")
        settings = merge(
            settings, {"tuning": {"options": _typed_options(text, "tuning", name, "--tuning-option")}}
        )
    if getattr(args, "defence_option", None):
        text = _key_values(args.defence_option, "--defence-option")
        name = str(settings.get("defence", "none"))
        settings = merge(
            settings, {"defence_options": _typed_options(text, "defence", name, "--defence-option")}
        )
    return settings
