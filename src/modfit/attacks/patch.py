"""BadNets for images: a fixed square pattern pasted at a corner of every triggered image.

The pattern is a black-and-white checkerboard (white at the corner pixel) or a plain `white` square,
`size` pixels wide, placed on the image at its stored resolution (before any resizing to the model).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from modfit.attacks.base import attack
from modfit.errors import ModfitError

CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")
PATTERNS = ("checkerboard", "white")


def pattern_tile(size: int, pattern: str) -> torch.Tensor:
    """The size × size uint8 pattern (255 white, 0 black); the checkerboard has white at [0, 0]."""
    if pattern == "white":
        return torch.full((size, size), 255, dtype=torch.uint8)
    rows = torch.arange(size).unsqueeze(1)
    cols = torch.arange(size).unsqueeze(0)
    return ((rows + cols) % 2 == 0).to(torch.uint8) * 255


@dataclass(frozen=True)
class PatchOptions:
    size: int = 3
    corner: str = "bottom-right"
    pattern: str = "checkerboard"

    def validate(self) -> None:
        if self.size < 1:
            raise ModfitError(
                f"patch: size {self.size!r} is not a positive whole number of pixels; use e.g. 3"
            )
        if self.corner not in CORNERS:
            raise ModfitError(f"patch: corner {self.corner!r}: use {', '.join(CORNERS)}")
        if self.pattern not in PATTERNS:
            raise ModfitError(f"patch: pattern {self.pattern!r}: use {' or '.join(PATTERNS)}")


class PatchTrigger:
    kind = "image"

    def __init__(self, size: int = 3, corner: str = "bottom-right", pattern: str = "checkerboard") -> None:
        self.size = size
        self.corner = corner
        self.tile = pattern_tile(size, pattern)

    def covers(self, image: torch.Tensor) -> bool:
        return image.shape[-1] >= self.size and image.shape[-2] >= self.size

    def box(self, height: int, width: int) -> tuple[slice, slice]:
        """The rows and columns the patch covers on a height × width image."""
        top = 0 if self.corner.startswith("top") else height - self.size
        left = 0 if self.corner.endswith("left") else width - self.size
        return slice(top, top + self.size), slice(left, left + self.size)

    def apply(self, image: torch.Tensor, rng: random.Random) -> torch.Tensor:
        rows, cols = self.box(image.shape[-2], image.shape[-1])
        out = image.clone()
        out[:, rows, cols] = self.tile
        return out


@attack("patch", PatchOptions)
def patch(options: PatchOptions, dataset_folder: Path | None) -> PatchTrigger:
    return PatchTrigger(options.size, options.corner, options.pattern)
