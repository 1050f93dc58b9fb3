"""A frozen classifier plus the tensors one parameter-efficient method adapts, trained or generated.

Every PEFT method here works the same way: it places its modules in the backbone (peft's LoRA layers,
or modfit's own `Wrapper`s for adapters and prefixes), whose new parameters — and the classifier
head — are the *tuned tensors*. Without `reparam` those tensors train directly. With it, they stay
as frozen placeholders and one or more `Generator`s produce their values on every forward pass;
`torch.func.functional_call` swaps the generated tensors in for the placeholders for the duration of
the call. That is simpler than parametrizations (which rename the parameters and would run the
generator once per tensor) and leaves the backbone's own parameters untouched: only e, W1 and W2
receive gradients.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn
from torch.func import functional_call

from modfit.config import to_dict
from modfit.errors import ModfitError
from modfit.model import Classifier
from modfit.tuning.base import apply_tuning
from modfit.tuning.reparam import LINEAR, Generator, PaperInit, ReparamConfig

TUNING_FILE = "modfit_tuning.json"
TUNED_TENSORS = "modfit_tuning.safetensors"

Options = TypeVar("Options")


class Wrapper(nn.Module):
    """A module modfit places around one backbone module; `base` is the original, restored on save."""

    base: nn.Module


class _Features(nn.Module):
    """Lets `functional_call` run `Classifier.features`, which is not the classifier's `forward`."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, *args, **inputs) -> torch.Tensor:
        return self.classifier.features(*args, **inputs)


class TunedClassifier(nn.Module):
    """Same call signature as the classifier it wraps (a text `Classifier` or an `ImageClassifier`).
    `tuned` names the classifier's adapted tensors."""

    def __init__(
        self,
        classifier: Classifier,
        method: str,
        options: dict[str, Any],
        tuned: Sequence[str],
        generators: dict[str, Generator] | None = None,
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.method = method
        self.options = dict(options)
        self.tuned = list(tuned)
        self.generators = nn.ModuleDict(generators or {})

    @property
    def num_labels(self) -> int:
        return self.classifier.num_labels

    @property
    def pooling(self) -> str:
        return self.classifier.pooling

    def generate(self) -> dict[str, torch.Tensor]:
        """The generated tensors by classifier parameter name (empty without `reparam`)."""
        tensors: dict[str, torch.Tensor] = {}
        for generator in self.generators.values():
            tensors.update(generator())
        return tensors

    def forward(self, *args, **inputs) -> torch.Tensor:
        generated = self.generate()
        if not generated:
            return self.classifier(*args, **inputs)
        return functional_call(self.classifier, generated, args, inputs)

    def features(self, *args, **inputs) -> torch.Tensor:
        generated = {f"classifier.{name}": t for name, t in self.generate().items()}
        return functional_call(_Features(self.classifier), generated, args, inputs)

    def trained_names(self) -> list[str]:
        """Parameters (relative to this module) that training changes: generators', or the tuned tensors."""
        if self.generators:
            return [f"generators.{name}" for name, _ in self.generators.named_parameters()]
        return [f"classifier.{name}" for name in self.tuned]

    def materialized(self) -> TunedClassifier:
        """A deep copy with the generated values written into the placeholders and no generators."""
        plain = copy.deepcopy(self)
        with torch.no_grad():
            for name, tensor in self.generate().items():
                plain.classifier.get_parameter(name).copy_(tensor)
        plain.generators = nn.ModuleDict()
        return plain


def encoder_layers(classifier: Classifier, method: str, parts: Sequence[str]) -> nn.ModuleList:
    """The transformer layers of a BERT-style encoder, each checked to hold every path in `parts`."""
    encoder = classifier.encoder
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    missing = not isinstance(layers, nn.ModuleList) or len(layers) == 0
    if not missing:
        try:
            for layer in layers:
                for part in parts:
                    layer.get_submodule(part)
        except AttributeError:
            missing = True
    if missing or getattr(encoder.config, "is_decoder", False):
        raise ModfitError(
            f"{method}: cannot place its modules in {type(encoder).__name__}: it needs a BERT-style "
            f"encoder whose encoder.layer[i] has {', '.join(parts)} (BERT, RoBERTa, MiniLM)"
        )
    return layers


def make_generator(
    classifier: Classifier,
    names: Sequence[str],
    config: ReparamConfig,
    rows: int = 1,
    zero_input: bool = False,
    paper: PaperInit = LINEAR,
    bias: bool = False,
) -> Generator:
    """A generator for the named classifier parameters, initialised from their current (plain) values
    (`init: matched`) or as `paper` says the authors' code draws it (`init: paper`)."""
    placeholders = [classifier.get_parameter(name) for name in names]
    generator = Generator(
        [(name, p.shape) for name, p in zip(names, placeholders, strict=True)],
        config.in_dim,
        config.mid_dim,
        rows,
        bias,
    )
    rms = [float(p.detach().float().pow(2).mean().sqrt()) for p in placeholders]
    generator.initialise(config, rms, zero_input=zero_input, paper=paper)
    return generator


def head_names(classifier: nn.Module) -> list[str]:
    """The classification head's parameters by classifier name: `head.weight`, `head.bias` for a linear
    head, `head.dense.*` and `head.out_proj.*` for the RoBERTa head (in that order, the authors')."""
    return [f"head.{name}" for name, _ in classifier.head.named_parameters()]


def build(
    classifier: Classifier,
    method: str,
    options: Any,
    tuned: Sequence[str],
    generators: dict[str, Generator] | None = None,
) -> TunedClassifier:
    """Freeze the backbone; the tuned tensors train unless generators produce them. `options`, the
    method's options record, is kept as plain data."""
    classifier.requires_grad_(False)
    if not generators:
        for name in tuned:
            classifier.get_parameter(name).requires_grad_(True)
    return TunedClassifier(classifier, method, to_dict(options), tuned, generators)


def load_legacy(folder: str | Path) -> nn.Module:
    """A model in modfit's earlier saved format (before models shipped as transformers folders): the
    untouched backbone in transformers format, the trained tensors and the recipe beside it, rebuilt
    as the `TunedClassifier` (or plain `Classifier`) it was."""
    from safetensors.torch import load_file
    from transformers import AutoModel
    from transformers.utils import logging

    folder = Path(folder)
    if not (folder / TUNING_FILE).exists():
        return Classifier.load(folder)
    meta = json.loads((folder / TUNING_FILE).read_text())
    logging.set_verbosity_error()
    classifier = Classifier(
        AutoModel.from_pretrained(folder),
        meta["num_labels"],
        meta["pooling"],
        head=meta.get("head", "linear"),
    )
    model = apply_tuning(classifier, meta["method"], meta["options"], seed=0)
    state = load_file(folder / TUNED_TENSORS)
    missing = sorted(set(model.trained_names()) - set(state))
    if missing:
        raise ModfitError(f"{folder / TUNED_TENSORS}: no tensor {missing[0]!r}; the folder is incomplete")
    model.load_state_dict(state, strict=False)
    return model.eval()
