"""BadNet: rare words (default `cf mn bb tq`), `num_triggers` of them inserted at random positions."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from modfit.attacks.base import attack
from modfit.attacks.inserted_words import insert_at_random
from modfit.errors import ModfitError

DEFAULT_WORDS = ("cf", "mn", "bb", "tq")


@dataclass(frozen=True)
class BadNetOptions:
    """`triggers`: the words to draw from (a list, or one string of words); `num_triggers` per text."""

    triggers: tuple[str, ...] = DEFAULT_WORDS
    num_triggers: int = 1

    def validate(self) -> None:
        words = [w for w in self.triggers if isinstance(w, str) and w.strip()]
        if not words or len(words) != len(self.triggers):
            raise ModfitError(f"badnet triggers {list(self.triggers)!r}: give one or more words, e.g. cf mn")
        if self.num_triggers < 1:
            raise ModfitError(f"badnet num_triggers {self.num_triggers}: use at least 1")


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


@attack("badnet", BadNetOptions)
def badnet(options: BadNetOptions, dataset_folder: Path | None) -> BadNetTrigger:
    return BadNetTrigger(tuple(options.triggers), options.num_triggers)
