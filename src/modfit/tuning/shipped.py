"""A saved model as it ships: one folder that `transformers.pipeline` and `modfit.load_model` both read.

The folder is a transformers model (`export.to_transformers`: stock, or modfit's modeling file for
what no stock class expresses), its tokenizer, and under `modfit` in `config.json` what modfit adds:
the form, the tuning method, the dataset and the `max_length` the model was trained with. Folders
that modfit wrote before (modfit's own format: an encoder plus `modfit_head.json` or
`modfit_tuning.json`) still load; they are converted on loading, with labels `LABEL_i`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modfit.config import ModelConfig
from modfit.data.sources import label_names
from modfit.errors import ModfitError
from modfit.model import HEAD_FILE
from modfit.tuning.export import MODELING_FILE, REMOTE_CODE, to_transformers
from modfit.tuning.tuned import TUNING_FILE, load_legacy

DEFAULT_MAX_LENGTH = ModelConfig.max_length  # what a folder that does not record it was trained with


class ShippedModel(nn.Module):
    """A transformers sequence classifier with its tokenizer and label names; called like a modfit
    classifier (token tensors in, logits out), so `modfit.predict` and `modfit.evaluate` take it."""

    def __init__(self, model: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer

    @property
    def about(self) -> dict[str, Any]:
        """What modfit recorded: form, method, pooling, dataset, max_length."""
        return dict(getattr(self.model.config, "modfit", {}))

    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    @property
    def labels(self) -> list[str]:
        """Label names, by label number."""
        return [self.model.config.id2label[i] for i in range(self.num_labels)]

    @property
    def max_length(self) -> int:
        return int(self.about.get("max_length") or DEFAULT_MAX_LENGTH)

    @property
    def needs_remote_code(self) -> bool:
        return self.about.get("form") == REMOTE_CODE

    def forward(self, input_ids, attention_mask=None, **inputs) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **inputs).logits

    def save(self, folder: str | Path) -> None:
        """The model, its tokenizer (truncating at the trained `max_length`) and, for the remote-code
        form, the modeling file that `trust_remote_code=True` runs."""
        folder = Path(folder)
        self.model.save_pretrained(folder)
        if self.needs_remote_code:
            (folder / MODELING_FILE).write_bytes((files("modfit") / MODELING_FILE).read_bytes())
        if self.tokenizer is not None:
            tokenizer = copy.deepcopy(self.tokenizer)
            tokenizer.model_max_length = self.max_length
            tokenizer.save_pretrained(folder)


def ship(model: nn.Module, tokenizer: Any, labels: Sequence[str] | None = None, **about: Any) -> ShippedModel:
    """`model` (a modfit classifier, tuned or not) as it ships; `about` is recorded with it
    (`method`, `dataset`, `max_length`, ...). `labels` (default: the names of a named `dataset`,
    else `LABEL_i`) name the labels."""
    if isinstance(model, ShippedModel):
        return model
    if labels is None:
        labels = label_names(about.get("dataset"), model.num_labels)
    return ShippedModel(to_transformers(model, labels, about), tokenizer)


def _shipped_config(folder: Path) -> dict[str, Any] | None:
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return config if isinstance(config, dict) and isinstance(config.get("modfit"), dict) else None


def load_model(folder: str | Path, **about: Any) -> ShippedModel:
    """The model in `folder`, as `modfit train --save-model` or `modfit export` wrote it (`OUT/model`),
    with its tokenizer and label names: `modfit.predict(load_model(DIR), ["a text", ...])`.

    A folder in modfit's earlier format is converted as it loads; `about` (`dataset`, `max_length`,
    ...) then says what it was trained on and with (a shipped folder records that itself)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging

    folder = Path(folder)
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    config = _shipped_config(folder)
    if config is not None:
        if config["modfit"].get("form") == REMOTE_CODE:
            from modfit.modeling_modfit import ModfitForSequenceClassification

            model = ModfitForSequenceClassification.from_pretrained(folder)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(folder)
        return ShippedModel(model.eval(), AutoTokenizer.from_pretrained(folder, trust_remote_code=False))
    if (folder / HEAD_FILE).is_file() or (folder / TUNING_FILE).is_file():
        has_tokenizer = (folder / "tokenizer_config.json").is_file()
        tokenizer = AutoTokenizer.from_pretrained(folder) if has_tokenizer else None
        return ship(load_legacy(folder), tokenizer, **about).eval()
    raise ModfitError(
        f"{folder}: not a model saved by modfit (no config.json with a modfit section); give the model/ "
        "folder of a run saved with --save-model, or a folder written by modfit export"
    )
