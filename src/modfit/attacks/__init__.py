"""Attacks: importing this package registers every implementation."""

from modfit.attacks import addsent, badnet, blend, paraphrase, patch  # noqa: F401  (registration)
from modfit.attacks.base import (
    ATTACKS,
    PoisonedTest,
    Trigger,
    attack,
    make_trigger,
    parse_attack_options,
    poison,
    poison_test,
)

__all__ = [
    "ATTACKS",
    "PoisonedTest",
    "Trigger",
    "attack",
    "make_trigger",
    "parse_attack_options",
    "poison",
    "poison_test",
]
