"""BadNet: rare words (default `cf mn bb tq`), `num_triggers` of them inserted at random positions."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from modfit.attacks.base import ATTACKS
from modfit.attacks.inserted_words import insert_at_random
from modfit.errors import ModfitError

DEFAULT_WORDS = ("cf", "mn", "bb", "tq")


class BadNetTrigger:
    kind = "text"

    def __init__(self, words: tuple[str, ...] = DEFAULT_WORDS, num_triggers: int = 1) -> None:
        self.words = words
        self.num_triggers = num_triggers

    def covers(self, text: str) -> bool:
        return True

    def apply(self, text: str, rng: random.Random) -> str:
        for _ in range(self.num_triggers):
            text = insert_at_random(text, rng.choice(self.words), rng)
        return text


@ATTACKS.register("badnet")
def badnet(options: dict[str, Any], dataset_folder: Path | None) -> BadNetTrigger:
    words = options.pop("triggers", DEFAULT_WORDS)
    words = tuple(str(w) for w in (words.split() if isinstance(words, str) else words))
    num_triggers = options.pop("num_triggers", 1)
    if options:
        raise ModfitError(f"badnet: unknown option {sorted(options)[0]!r}; use triggers, num_triggers")
    if isinstance(num_triggers, bool) or not isinstance(num_triggers, int):
        raise ModfitError(f"badnet: num_triggers {num_triggers!r} is not a whole number; use e.g. 1 or 3")
    if not words or num_triggers < 1:
        raise ModfitError("badnet: give at least one trigger word and num_triggers >= 1")
    return BadNetTrigger(words, num_triggers)
