"""Export a tuned classifier as a stock transformers model that `pipeline("text-classification")` loads.

Only what maps exactly is exported. LoRA folds into the base weights (W + (alpha/r)·B·A, peft's
merge), the generated tensors first written in. modfit's `cls` head is the encoder's pooler
(dense + tanh over the first token) and a linear layer, which is BertForSequenceClassification's
head, and RobertaForSequenceClassification's once the pooler's dense becomes the head's `dense`.
Everything else is refused with the reason: mean pooling (no stock head pools that way), adapters
(stock models have no adapter slot and the GELU bottleneck cannot be folded into a linear layer),
prefixes (no stock model prepends keys and values). The export checks itself: it compares the logits
of both models on a probe batch and refuses a model that would not give the same outputs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from modfit.errors import ModfitError
from modfit.model import Classifier
from modfit.tuning.tuned import TunedClassifier, restored_encoder

EXACT_METHODS = ("lora",)


def _plain_parts(model: nn.Module) -> tuple[nn.Module, nn.Linear, str]:
    """(encoder with every update folded in, head, pooling) of a Classifier or a LoRA TunedClassifier."""
    if isinstance(model, Classifier):
        return model.encoder, model.head, model.pooling
    if not isinstance(model, TunedClassifier):
        raise ModfitError(f"cannot export a {type(model).__name__}; export a modfit classifier")
    if model.method not in EXACT_METHODS:
        reasons = {
            "adapter": "stock transformers models have no adapter slot and the GELU bottleneck cannot be folded into their weights",
            "prefix": "stock transformers models cannot prepend trained keys and values",
        }  # fmt: skip
        reason = reasons.get(model.method, "its modules cannot be folded into the backbone")
        raise ModfitError(
            f"cannot export {model.method!r} as a plain transformers model: {reason}; "
            "save it with --save-model and load it with modfit.load_model"
        )
    plain = model.materialized()
    return restored_encoder(plain.classifier.encoder, merge=True), plain.classifier.head, model.pooling


def export_transformers(model: nn.Module, folder: str | Path, tokenizer=None) -> None:
    """Write a `*ForSequenceClassification` model (and the tokenizer) that gives the same logits."""
    from transformers import AutoModelForSequenceClassification

    encoder, head, pooling = _plain_parts(model)
    if pooling != "cls" or getattr(encoder, "pooler", None) is None:
        raise ModfitError(
            f"cannot export a {pooling!r}-pooling classifier exactly: stock sequence classifiers read the "
            "pooled first token; train with --pooling cls on an encoder that has a pooler"
        )
    config = copy.deepcopy(encoder.config)
    config.num_labels = head.out_features
    with torch.random.fork_rng(devices=[]):  # the stock head's random init is overwritten below
        stock = AutoModelForSequenceClassification.from_config(config)
    stock.to(head.weight.device)
    state = encoder.state_dict()
    stock_head = stock.classifier
    if isinstance(stock_head, nn.Linear) and getattr(stock.base_model, "pooler", None) is not None:
        stock.base_model.load_state_dict(state)
        stock_head.load_state_dict(head.state_dict())
    elif hasattr(stock_head, "dense") and hasattr(stock_head, "out_proj"):
        stock.base_model.load_state_dict({k: v for k, v in state.items() if not k.startswith("pooler.")})
        stock_head.dense.load_state_dict(encoder.pooler.dense.state_dict())
        stock_head.out_proj.load_state_dict(head.state_dict())
    else:
        raise ModfitError(
            f"cannot export to {type(stock).__name__}: its head is not a pooler plus a linear layer"
        )
    _check_same_logits(model, stock)
    stock.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)


@torch.no_grad()
def _check_same_logits(model: nn.Module, stock: nn.Module) -> None:
    was_training = model.training
    model.eval()
    stock.eval()
    vocab = stock.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(min(5, vocab - 1), vocab, (4, 12), generator=generator).to(stock.device)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    ours = model(input_ids=ids, attention_mask=mask)
    theirs = stock(input_ids=ids, attention_mask=mask).logits
    model.train(was_training)
    if not torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4):
        gap = (ours - theirs).abs().max().item()
        raise ModfitError(f"export would change the model's logits (max difference {gap:.2e}); not written")
