"""AddSent: a fixed sentence (default `I watch this 3D movie`) inserted at a random word position."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from modfit.attacks.base import ATTACKS
from modfit.attacks.inserted_words import insert_at_random
from modfit.errors import ModfitError

DEFAULT_SENTENCE = "I watch this 3D movie"


class AddSentTrigger:
    kind = "text"

    def __init__(self, sentence: str = DEFAULT_SENTENCE) -> None:
        self.sentence = sentence

    def covers(self, text: str) -> bool:
        return True

    def apply(self, text: str, rng: random.Random) -> str:
        return insert_at_random(text, self.sentence, rng)


@ATTACKS.register("addsent")
def addsent(options: dict[str, Any], dataset_folder: Path | None) -> AddSentTrigger:
    sentence = str(options.pop("sentence", DEFAULT_SENTENCE))
    if options:
        raise ModfitError(f"addsent: unknown option {sorted(options)[0]!r}; use sentence")
    if not sentence.strip():
        raise ModfitError("addsent: the trigger sentence is empty; give a sentence")
    return AddSentTrigger(sentence)
