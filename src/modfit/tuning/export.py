"""A modfit classifier as a transformers model that `pipeline("text-classification")` loads.

Every tuning method exports, with its generated tensors materialised and LoRA folded into the base
weights (W + (alpha/r)·B·A, peft's merge). Two forms, recorded in `config.json` under `modfit.form`:

- `stock`: a stock `…ForSequenceClassification` where one expresses the model exactly: `cls`
  pooling through the encoder's pooler (dense + tanh over the first token) and a linear head, with
  no adapter or prefix (full, head or LoRA tuning on BERT, RoBERTa, …). BERT's head is that pooler
  plus a linear layer; RoBERTa's is the same once the pooler's dense becomes the head's `dense`.
- `remote-code`: `modeling_modfit.py` (shipped beside the weights) where none does: mean pooling
  (the packaged MiniLM's default), bottleneck adapters, prefixes, an encoder without a pooler. It
  loads with `trust_remote_code=True`.

The export checks itself: it compares the logits of both models on a probe batch and refuses a model
that would not give the same outputs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from modfit.errors import ModfitError
from modfit.model import Classifier, replace_module
from modfit.tuning.adapter import AdaptedBlock
from modfit.tuning.tuned import TunedClassifier, Wrapper

STOCK, REMOTE_CODE = "stock", "remote-code"
MODELING_FILE = "modeling_modfit.py"
AUTO_MAP = {
    "AutoConfig": "modeling_modfit.ModfitConfig",
    "AutoModelForSequenceClassification": "modeling_modfit.ModfitForSequenceClassification",
}


def plain_classifier(model: nn.Module) -> Classifier:
    """A copy of the classifier with generated tensors written in and LoRA merged into its weights;
    adapters and prefixes stay in place, as plain modules."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if isinstance(model, TunedClassifier):
        classifier = model.materialized().classifier
    elif isinstance(model, Classifier):
        classifier = copy.deepcopy(model)
    else:
        raise ModfitError(f"cannot export a {type(model).__name__}; export a modfit text classifier")
    for name, module in list(classifier.encoder.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            replace_module(classifier.encoder, name, module.get_base_layer())
    return classifier.eval()


def to_transformers(model: nn.Module, labels: Sequence[str], about: dict[str, Any]) -> nn.Module:
    """The transformers model that gives `model`'s logits; `about` (method, dataset, max_length, ...)
    is recorded in its config under `modfit`, with the form."""
    classifier = plain_classifier(model)
    if len(labels) != classifier.num_labels:
        raise ModfitError(f"{len(labels)} label names for a {classifier.num_labels}-label model")
    exported = _stock(classifier)
    form = STOCK if exported is not None else REMOTE_CODE
    if exported is None:
        exported = _remote_code(classifier)
    exported.config.id2label = dict(enumerate(labels))
    exported.config.label2id = {name: i for i, name in enumerate(labels)}
    exported.config.modfit = {"form": form, "pooling": classifier.pooling, **about}
    _check_same_logits(model, exported, classifier.encoder.config.vocab_size)
    return exported.eval()


def _first_token_head(classifier: Classifier) -> tuple[nn.Linear, nn.Linear] | None:
    """(dense, out): the classifier's head written as out(dropout(tanh(dense(first token)))), the
    shape of every stock sequence-classification head here, or None where it is not that shape.
    Linear head: `cls` pooling through the encoder's pooler is that dense + tanh. The RoBERTa head
    (`--head roberta`) is that shape as it is."""
    if classifier.head_kind == "roberta":
        return classifier.head.dense, classifier.head.out_proj
    pooler = getattr(classifier.encoder, "pooler", None)
    if isinstance(classifier.head, nn.Linear) and classifier.pooling == "cls" and pooler is not None:
        return pooler.dense, classifier.head
    return None


def _stock(classifier: Classifier) -> nn.Module | None:
    """A stock `…ForSequenceClassification` holding the classifier exactly, or None if none can."""
    from transformers import AutoModelForSequenceClassification

    encoder = classifier.encoder
    head = _first_token_head(classifier)
    if head is None or any(isinstance(module, Wrapper) for module in encoder.modules()):  # adapters, prefixes
        return None
    config = copy.deepcopy(encoder.config)
    config.num_labels = classifier.num_labels
    try:
        with torch.random.fork_rng(devices=[]):  # the stock head's random init is overwritten below
            stock = AutoModelForSequenceClassification.from_config(config)
    except ValueError:  # no sequence classifier for this architecture
        return None
    dense, out = head
    state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("pooler.")}
    stock_head, stock_pooler = stock.classifier, getattr(stock.base_model, "pooler", None)
    if isinstance(stock_head, nn.Linear) and stock_pooler is not None:  # BERT: pooler, then a linear layer
        stock.base_model.load_state_dict(
            state | {f"pooler.dense.{k}": v for k, v in dense.state_dict().items()}
        )
        stock_head.load_state_dict(out.state_dict())
    elif isinstance(getattr(stock_head, "dense", None), nn.Linear) and hasattr(stock_head, "out_proj"):
        stock.base_model.load_state_dict(state)  # RoBERTa: no pooler; its head is dense, tanh, out_proj
        stock_head.dense.load_state_dict(dense.state_dict())
        stock_head.out_proj.load_state_dict(out.state_dict())
    else:
        return None
    return stock.to(out.weight.device)


def _remote_code(classifier: Classifier) -> nn.Module:
    """modfit's own modeling file's model, with the classifier's parameters under the same names."""
    from modfit.modeling_modfit import ModfitConfig, ModfitForSequenceClassification

    wrappers = [module for module in classifier.encoder.modules() if isinstance(module, Wrapper)]
    adapter = next((m for m in wrappers if hasattr(m, "adapter")), None)
    tokens = next((m.prefix_key.shape[0] for m in wrappers if hasattr(m, "prefix_key")), None)
    backbone = classifier.encoder.config.to_diff_dict()
    backbone["model_type"] = classifier.encoder.config.model_type
    for key in ("architectures", "id2label", "label2id", "_name_or_path", "transformers_version"):
        backbone.pop(key, None)
    config = ModfitConfig(
        backbone=backbone,
        pooling=classifier.pooling,
        head=classifier.head_kind,
        classifier_dropout=(
            classifier.dropout if classifier.head_kind == "linear" else classifier.head.dropout
        ).p,
        adapter_bottleneck=adapter and adapter.adapter.down.out_features,
        adapter_placement="after-norm" if isinstance(adapter, AdaptedBlock) else "before-norm",
        adapter_activation="gelu_new" if adapter and adapter.adapter.act.approximate == "tanh" else "gelu",
        prefix_tokens=tokens,
        num_labels=classifier.num_labels,
        auto_map=dict(AUTO_MAP),
    )
    config.architectures = [ModfitForSequenceClassification.__name__]
    with torch.random.fork_rng(devices=[]):  # every parameter is overwritten below
        exported = ModfitForSequenceClassification(config)
    try:
        exported.load_state_dict(classifier.state_dict())
    except RuntimeError as err:
        detail = (str(err).strip().splitlines()[1:2] or [""])[0].strip()
        raise ModfitError(f"cannot export: its modules are not where modfit places them ({detail})") from None
    return exported.to(next(classifier.parameters()).device)


@torch.no_grad()
def _check_same_logits(model: nn.Module, exported: nn.Module, vocab: int) -> None:
    was_training = model.training
    model.eval()
    exported.eval()
    generator = torch.Generator().manual_seed(0)
    device = next(exported.parameters()).device
    ids = torch.randint(min(5, vocab - 1), vocab, (4, 12), generator=generator).to(device)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    ours = model(input_ids=ids, attention_mask=mask)
    theirs = exported(input_ids=ids, attention_mask=mask).logits
    model.train(was_training)
    if not torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4):
        gap = (ours - theirs).abs().max().item()
        raise ModfitError(f"export would change the model's logits (max difference {gap:.2e}); not written")
