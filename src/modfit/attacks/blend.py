"""Blend (Chen et al., 2017): a fixed noise image mixed into every triggered image with weight alpha.

The noise is uniform over 0..255, drawn once per image size from `noise_seed` (not the run's seed:
the trigger is the same image in every run), and mixed in as round((1 - alpha) · x + alpha · noise).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from modfit.attacks.base import attack
from modfit.errors import ModfitError


@dataclass(frozen=True)
class BlendOptions:
    alpha: float = 0.2
    noise_seed: int = 0

    def validate(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ModfitError(f"blend: alpha {self.alpha!r} must be a weight in (0, 1], e.g. 0.2")


class BlendTrigger:
    kind = "image"

    def __init__(self, alpha: float = 0.2, noise_seed: int = 0) -> None:
        self.alpha = alpha
        self.noise_seed = noise_seed
        self._noise: dict[tuple[int, ...], torch.Tensor] = {}

    def noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        if shape not in self._noise:
            generator = torch.Generator().manual_seed(self.noise_seed)
            self._noise[shape] = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
        return self._noise[shape]

    def covers(self, image: torch.Tensor) -> bool:
        return True

    def apply(self, image: torch.Tensor, rng: random.Random) -> torch.Tensor:
        mixed = (1 - self.alpha) * image.float() + self.alpha * self.noise(tuple(image.shape)).float()
        return mixed.round().clamp(0, 255).to(torch.uint8)


@attack("blend", BlendOptions)
def blend(options: BlendOptions, dataset_folder: Path | None) -> BlendTrigger:
    return BlendTrigger(options.alpha, options.noise_seed)
