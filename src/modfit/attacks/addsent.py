"""AddSent: a fixed sentence (default `I watch this 3D movie`) inserted at a random word position."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from modfit.attacks.base import attack
from modfit.attacks.inserted_words import insert_at_random
from modfit.errors import ModfitError

DEFAULT_SENTENCE = "I watch this 3D movie"


@dataclass(frozen=True)
class AddSentOptions:
    sentence: str = DEFAULT_SENTENCE

    def validate(self) -> None:
        if not self.sentence.strip():
            raise ModfitError(
                "addsent sentence is empty; give a sentence, e.g. sentence='I watch this 3D movie'"
            )


class AddSentTrigger:
    kind = "text"

    def __init__(self, sentence: str = DEFAULT_SENTENCE) -> None:
        self.sentence = sentence

    def covers(self, text: str) -> bool:
        return True

    def apply(self, text: str, rng: random.Random) -> str:
        return insert_at_random(text, self.sentence, rng)


@attack("addsent", AddSentOptions)
def addsent(options: AddSentOptions, dataset_folder: Path | None) -> AddSentTrigger:
    return AddSentTrigger(options.sentence)
