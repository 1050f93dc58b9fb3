"""Tokenise a split once per run and cut it into dynamically padded batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from modfit.data.example import Example


@dataclass(frozen=True)
class Encoded:
    """Token ids (unpadded) and labels of one split, tokenised once."""

    columns: dict[str, list[list[int]]]
    labels: list[int]
    pad: object  # the tokenizer, whose `pad` builds a batch

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> list[int]:
        """Each row's token count (what its padding costs in a batch)."""
        return [len(ids) for ids in self.columns["input_ids"]]

    def batch(
        self, indices: Sequence[int], device: torch.device
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        features = {name: [values[i] for i in indices] for name, values in self.columns.items()}
        inputs = self.pad.pad(features, return_tensors="pt")
        labels = torch.tensor([self.labels[i] for i in indices])
        return to_device(dict(inputs), device), labels.to(device)


def to_device(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a batch; to a CUDA device through pinned memory, without blocking the host."""
    if device.type != "cuda":
        return tensors
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in tensors.items()}


# How a run tokenises a split: `encode`, or a grid's cache that tokenises each text once per study.
Encoder = Callable[[list[Example], Any, int], Encoded]


def encode(examples: list[Example], tokenizer, max_length: int) -> Encoded:
    tokens = tokenizer([e.text for e in examples], truncation=True, max_length=max_length)
    columns = {k: v for k, v in tokens.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    return Encoded(columns, [e.label for e in examples], tokenizer)
