"""Shared by BadNet and AddSent: put words into a text at random word positions."""

from __future__ import annotations

import random


def insert_at_random(text: str, insertion: str, rng: random.Random) -> str:
    words = text.split()
    position = rng.randint(0, len(words))
    return " ".join(words[:position] + insertion.split() + words[position:])
