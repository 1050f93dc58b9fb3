"""RAP, robustness-aware perturbation (Yang et al. 2021, as in OpenBackdoor's `RAPDefender`).

A triggered input keeps its target prediction under a small perturbation; a clean one does not. RAP
inserts one extra token after the first (special) token and learns its word embedding — the model
stays frozen — on clean dev rows of the target label, so that the perturbation lowers their
target-class probability by between `drop_range[0]` and `drop_range[1]`. An input the model predicts
as the target is flagged when its probability drops by less than a threshold, set on the same clean
rows so that a share `frr` of them would be flagged. Inputs predicted as another label pass.

Differences from OpenBackdoor: the perturbation is a learned vector written into the embedding output
at the inserted position (a forward hook) instead of overwriting a rare word's row of the embedding
matrix, so no real word changes meaning and a rare word that is also a trigger ("cf") cannot collide;
and it is learned with Adam rather than raw gradient steps, so one learning rate fits every model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from modfit.baselines.base import Context, procedure
from modfit.baselines.guard import Guarded, guard_outcome
from modfit.baselines.scoring import encode_texts, probabilities, threshold_at_rate
from modfit.encoding import Encoded
from modfit.errors import ModfitError, require
from modfit.result import RunResult

POSITION = 1  # after [CLS] / <s>


@dataclass(frozen=True)
class RapOptions:
    drop_range: tuple[float, float] = (0.1, 0.3)
    frr: float = 0.01
    epochs: int = 5
    lr: float = 0.01
    batch_size: int = 32

    def validate(self) -> None:
        low, high = self.drop_range
        require(
            0 <= low <= high <= 1,
            f"rap drop_range {self.drop_range}: use [low, high] with 0 <= low <= high <= 1",
        )
        require(0 <= self.frr < 1, f"rap frr {self.frr}: use a share in [0, 1)")
        require(self.epochs >= 1 and self.lr > 0, "rap epochs and lr: use epochs >= 1 and lr > 0")


def insert_slot(data: Encoded) -> Encoded:
    """Every row with one extra token at `POSITION`, whose embedding the perturbation replaces."""
    columns = {}
    for name, rows in data.columns.items():
        filler = {"attention_mask": 1, "token_type_ids": 0}.get(name, data.pad.unk_token_id or 0)
        columns[name] = [row[:POSITION] + [filler] + row[POSITION:] for row in rows]
    return Encoded(columns, data.labels, data.pad)


def word_embeddings(model: torch.nn.Module) -> torch.nn.Module:
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            return module.get_input_embeddings()
    raise ModfitError("rap: the model has no Hugging Face encoder whose word embeddings it could perturb")


@contextlib.contextmanager
def perturbed(model: torch.nn.Module, vector: torch.Tensor) -> Iterator[None]:
    """While active, the token at `POSITION` is embedded as `vector` (inputs must come from `insert_slot`)."""

    def replace(module, inputs, output: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(output.shape[1], 1, device=output.device, dtype=output.dtype)
        mask[POSITION] = 1
        return output * (1 - mask) + vector.to(output.dtype) * mask

    handle = word_embeddings(model).register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def learn_perturbation(
    result: RunResult, clean: Encoded, target: int, options: RapOptions, seed: int
) -> torch.Tensor:
    """The perturbation embedding, learned on clean rows so their target probability drops by about
    `drop_range` (hinge loss on both ends, as in the paper)."""
    model = result.model
    device = next(model.parameters()).device
    base = probabilities(model, clean)[:, target]
    slotted = insert_slot(clean)
    low, high = options.drop_range
    start = word_embeddings(model).weight[slotted.pad.unk_token_id or 0].detach().clone()
    vector = torch.nn.Parameter(start)
    optimizer = torch.optim.Adam([vector], lr=options.lr)
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    with perturbed(model, vector):
        for _ in range(options.epochs):
            order = torch.randperm(len(slotted), generator=generator).tolist()
            for begin in range(0, len(order), options.batch_size):
                rows = order[begin : begin + options.batch_size]
                inputs, _ = slotted.batch(rows, device)
                drop = base[rows].to(device) - model(**inputs).softmax(-1)[:, target]
                loss = (torch.relu(low - drop) + torch.relu(drop - high)).mean()
                (gradient,) = torch.autograd.grad(loss, [vector])
                vector.grad = gradient
                optimizer.step()
    return vector.detach()


def probability_drops(
    result: RunResult, data: Encoded, vector: torch.Tensor, target: int, batch_size: int
) -> list[float]:
    before = probabilities(result.model, data, batch_size)[:, target]
    with perturbed(result.model, vector):
        after = probabilities(result.model, insert_slot(data), batch_size)[:, target]
    return (before - after).tolist()


@procedure("rap", RapOptions)
def rap(context: Context, options: RapOptions) -> RunResult:
    experiment, target = context.experiment, context.data.target
    max_length = experiment.model.max_length
    result = context.train()
    dev = [e for e in context.data.splits.dev if e.label == target]
    if not dev:
        raise ModfitError(f"rap needs clean dev rows of the target label {target}; the dev split has none")
    clean = encode_texts([e.text for e in dev], result.tokenizer, max_length, [e.label for e in dev])
    vector = learn_perturbation(result, clean, target, options, experiment.seed)
    predicted = probabilities(result.model, clean).argmax(-1).tolist()
    drops = probability_drops(result, clean, vector, target, options.batch_size)
    cut = threshold_at_rate(
        [d for d, p in zip(drops, predicted, strict=True) if p == target] or drops, options.frr
    )

    def guard(texts: list[str]) -> Guarded:
        data = encode_texts(texts, result.tokenizer, max_length)
        predicted = probabilities(result.model, data, options.batch_size).argmax(-1).tolist()
        drops = probability_drops(result, data, vector, target, options.batch_size)
        return Guarded(texts, [p == target and d < cut for p, d in zip(predicted, drops, strict=True)])

    clean_drop = sum(drops) / len(drops)
    return guard_outcome(
        context, result, guard, rejects=True, details={"threshold": cut, "clean_drop": clean_drop}
    )
