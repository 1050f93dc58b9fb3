"""Images as the training loop sees them: uint8 tensors stacked once, resized and normalised per batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn.functional import interpolate

from modfit.errors import ModfitError


@dataclass(frozen=True)
class ImagePreprocess:
    """What the model expects: square `size` pixels (None keeps the stored size), mean and std per channel."""

    size: int | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        if self.size is None or images.shape[-2:] == (self.size, self.size):
            return images
        return interpolate(
            images, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N × 3 × H × W → the model's normalised float input."""
        x = self.resize(images.float() / 255.0)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


@dataclass(frozen=True)
class EncodedImages:
    """One split's images (uint8, N × 3 × H × W) and labels; `batch` has `Encoded.batch`'s contract."""

    images: torch.Tensor
    labels: list[int]
    preprocess: ImagePreprocess

    def __len__(self) -> int:
        return len(self.labels)

    def batch(
        self, indices: Sequence[int], device: torch.device
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        pixels = self.preprocess(self.images[rows].to(device))
        return {"pixel_values": pixels}, torch.tensor([self.labels[i] for i in indices], device=device)


def encode_images(examples: list, preprocess: ImagePreprocess, max_length: int = 0) -> EncodedImages:
    """Stack a split's images (the `Encoder` signature: `max_length` is the text models' and unused)."""
    if not examples:
        return EncodedImages(torch.zeros(0, 3, 1, 1, dtype=torch.uint8), [], preprocess)
    shapes = {tuple(e.image.shape) for e in examples}
    if len(shapes) > 1:
        if preprocess.size is None:
            raise ModfitError(
                f"images come in {len(shapes)} sizes (e.g. {sorted(shapes)[:2]}); set model.image_size to resize them"
            )
        size = (preprocess.size, preprocess.size)
        images = torch.stack([_resize_uint8(e.image, size) for e in examples])
    else:
        images = torch.stack([e.image for e in examples])
    return EncodedImages(images, [e.label for e in examples], preprocess)


def _resize_uint8(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    x = interpolate(
        image.unsqueeze(0).float(), size=size, mode="bilinear", antialias=True, align_corners=False
    )
    return x.round().clamp(0, 255).to(torch.uint8).squeeze(0)
