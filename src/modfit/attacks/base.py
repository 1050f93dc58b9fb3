"""The trigger interface, the attack registry, and poisoning of training and test splits."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from modfit.config import AttackConfig
from modfit.data.example import Example
from modfit.errors import ModfitError
from modfit.registry import Entry, Registry


class Trigger(Protocol):
    """Turns a clean input (a text, or an image for `kind == "image"`) into its triggered form."""

    kind: str  # the records it applies to: "text" or "image" (Splits.kind)

    def covers(self, content: Any) -> bool:
        """Whether this trigger can be applied to `content` (paraphrase tables cover only some texts)."""
        ...

    def apply(self, content: Any, rng: random.Random) -> Any: ...


# An attack's entry builds its trigger: `build(options, dataset_folder) -> Trigger`, where the folder
# is the dataset's (paraphrase tables live there) and `options` a frozen dataclass with `validate()`.
ATTACKS: Registry[Entry] = Registry("attack")
Options = TypeVar("Options")


def attack(
    name: str, options: type[Options]
) -> Callable[[Callable[[Options, Path | None], Trigger]], Callable]:
    """Register `build(options, dataset_folder) -> Trigger` as attack `name` with its options record."""
    return ATTACKS.register(name, options)


def parse_attack_options(config: AttackConfig) -> Any:
    """The attack's options as its typed record: unknown keys, wrong types and bad values are one line,
    found without reading any file (so a grid checks every cell's attack before it starts)."""
    return ATTACKS.parse(config.name, config.options)


def make_trigger(config: AttackConfig, dataset_folder: Path | None = None) -> Trigger:
    if config.name == "none":  # the default: no attack unless asked
        raise ModfitError(f"attack none has no trigger; name an attack: {', '.join(ATTACKS.names())}")
    return ATTACKS.get(config.name).build(parse_attack_options(config), dataset_folder)


@dataclass(frozen=True)
class PoisonedTest:
    """Every covered non-target test row with the trigger, labelled with the target.

    `sources[i]` is the index in the clean test split of the row that `examples[i]` was made from, so
    that the ASR floor is measured on exactly the same rows without the trigger.
    """

    examples: list[Example]
    sources: list[int]


def candidate_indices(rows: list[Example], trigger: Trigger, mode: str, target: int) -> list[int]:
    def eligible(example: Example) -> bool:
        if mode == "dirty" and example.label == target:
            return False
        if mode == "clean" and example.label != target:
            return False
        return trigger.covers(example.content)

    return [i for i, example in enumerate(rows) if eligible(example)]


def poison(train: list[Example], trigger: Trigger, config: AttackConfig, seed: int) -> list[Example]:
    """Poison `round(rate * len(train))` rows in place of their clean versions (order kept).

    dirty: drawn from non-target rows and relabelled; clean: drawn from target rows, labels kept;
    mix: drawn from all rows and relabelled.
    """
    wanted = round(config.rate * len(train))
    candidates = candidate_indices(train, trigger, config.mode, config.target)
    if len(candidates) < wanted:
        raise ModfitError(
            f"attack {config.name!r} ({config.mode}) can poison {len(candidates)} candidate rows "
            f"but rate {config.rate} needs {wanted}: lower the poison rate or supply a larger paraphrase table"
        )
    rng = random.Random(seed)
    chosen = sorted(rng.sample(candidates, wanted))
    out = list(train)
    for i in chosen:
        label = train[i].label if config.mode == "clean" else config.target
        out[i] = train[i].triggered(trigger.apply(train[i].content, rng), label)
    return out


def poison_test(test: list[Example], trigger: Trigger, target: int, seed: int) -> PoisonedTest:
    """The triggered version of every non-target test row the trigger covers."""
    rng = random.Random(seed + 1)
    sources = [i for i, e in enumerate(test) if e.label != target and trigger.covers(e.content)]
    if not sources:
        raise ModfitError("the attack covers no non-target test row, so ASR cannot be measured")
    examples = [test[i].triggered(trigger.apply(test[i].content, rng), target) for i in sources]
    return PoisonedTest(examples, sources)
