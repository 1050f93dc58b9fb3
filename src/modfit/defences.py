"""Named defences. Each is one `Defence` record: the partial config it applies to a text dataset and
to an image dataset (None: text-only), which the user's own settings override, and, for a baseline,
its procedure with its options record (registered where the procedure is written, in
`modfit.baselines`).

The schedule presets are doses of one undefended schedule, the model's baseline: `fewer-epochs` trains
a share of its epochs, `lower-lr` its epochs at the same share of its lr (the reparameterized presets
are the paper's authors' recipe, their own fixed schedule). Presets count epochs, so their
dose in steps is a fixed share of the baseline's and grows with the training set as the baseline's
does. The packaged MiniLM's baseline and the share were chosen on a clean SST-2 training set by clean
dev accuracy alone, by rules written before the runs (`benchmarks/baseline_schedule/baseline_schedule.py`;
docs/defences/index.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modfit.config import TrainConfig, merge
from modfit.errors import ModfitError
from modfit.registry import NoOptions, Registry
from modfit.vision.model import EFFICIENTNET_CONVS


@dataclass(frozen=True)
class Schedule:
    """An undefended training schedule: the baseline that a text preset is a dose of."""

    lr: float
    epochs: float

    def settings(self) -> dict[str, Any]:
        return {"train": {"lr": self.lr, "epochs": self.epochs}}


# Any text model but the packaged one: the BERT recipe, TrainConfig's defaults; measure yours the same way.
BERT_RECIPE = Schedule(lr=TrainConfig.lr, epochs=TrainConfig.epochs)
# The packaged MiniLM (`model.name` unset): chosen on the clean SST-2 training split by clean dev accuracy
# (benchmarks/baseline_schedule/baseline_schedule.py, rule 1; benchmarks/baseline_schedule/results.md). PLATEAU_SHARE is
# where that run's clean dev accuracy stops rising (rule 2), the share of the baseline's epochs that
# `fewer-epochs` trains and of its lr that `lower-lr` uses: under linear decay both cover the same area
# under the learning-rate curve (lr × steps / 2). Studies that ran before these (lr 2e-5, 3 epochs,
# share 0.5) pin those values in their specs.
PACKAGED_BASELINE = Schedule(lr=1e-4, epochs=2.0)
PLATEAU_SHARE = 0.373

TextSettings = dict[str, Any] | Callable[[Schedule], dict[str, Any]]  # fixed, or a dose of the baseline


@dataclass(frozen=True)
class Defence:
    """`procedure(context, options) -> RunResult` runs a baseline's stages (None: a preset, which only
    changes settings); `options` is its options record. `text` and `image` are the settings it applies
    to a text or an image dataset; `image=None` means it has none for images."""

    name: str
    options: type = NoOptions
    procedure: Callable[..., Any] | None = None
    text: TextSettings = field(default_factory=dict)
    image: dict[str, Any] | None = None


DEFENCES: Registry[Defence] = Registry("defence", Defence)


def _preset(name: str, text: TextSettings, image: dict[str, Any] | None = None) -> None:
    DEFENCES.add(name, Defence(name, text=text, image=image))


# Images (docs/vision.md, "Vision"): the text doses were measured for MiniLM on SST-2; the image victim
# (EfficientNet-Lite0, CIFAR-10) has its own, measured in benchmarks/vision_settings/results.md.
# IMAGE_DEFAULTS are the undefended image settings, under everything the user or a study sets. The
# adapter and prefix methods place modules in a transformer encoder, and the baselines read text, so
# they are text-only, except `safe`, whose scanner is the victim itself (its `procedure(..., image=...)`).
IMAGE_DEFAULTS: dict[str, Any] = {"model": {"image_size": 64}, "train": {"lr": 1e-3, "epochs": 3}}


def fewer_epochs_dose(base: Schedule) -> dict[str, Any]:
    """`fewer-epochs` on a text model: PLATEAU_SHARE of its baseline's epochs, to 0.05 (0.75 of the
    packaged MiniLM's 2)."""
    return {"train": {"epochs": round(round(PLATEAU_SHARE * base.epochs / 0.05) * 0.05, 2)}}


_preset("none", {}, image={})
_preset("fewer-epochs", fewer_epochs_dose, image={"train": {"epochs": 0.5}})
_preset(
    "lower-lr",
    lambda base: {"train": {"lr": float(f"{PLATEAU_SHARE * base.lr:.2g}")}},
    image={"train": {"lr": 1e-4}},
)

# Capacity defences (docs/defences/index.md, "Defences"): reparameterized PEFT, the paper's authors' recipe as their
# code runs it (thunlp/Moderate-fitting: opendelta/delta_models/{lora,adapter,prefix}.py and
# examples/examples_text-classification/configs/*_roberta-base-sst2-badnet-5/sst2_mid2.json with the
# Hugging Face Trainer's defaults): RoBERTa's classification head, generated with the tuned tensors;
# each method's own initialisation and placement; lr 3e-4 for 10 epochs in batches of 32, no warmup,
# no weight decay, linear decay, gradients clipped at 1.0, the last step's model, 128 tokens, fp32, and
# random (not length-grouped) batches. tests/test_recipe.py pins each fact. The earlier presets (lr
# chosen by clean dev accuracy, 2 epochs, the linear head) stay reachable only as the settings the
# specs that ran them pin (benchmarks/paper_table/, benchmarks/safe_clean_baseline/).
PAPER_TRAIN: dict[str, Any] = {
    "lr": 3e-4, "epochs": 10, "batch_size": 32, "warmup_ratio": 0.0, "weight_decay": 0.0,
    "max_grad_norm": 1.0, "select": "last", "precision": "fp32", "group_by_length": False,
}  # fmt: skip
PAPER_MODEL: dict[str, Any] = {"head": "roberta", "max_length": 128}
PAPER_REPARAM: dict[str, Any] = {"in_dim": 2, "mid_dim": 2, "init": "paper"}
# LoRA: r 8, alpha 16, on query and value (no dropout: LoraOptions' default). Adapter: OpenDelta's
# sequential adapter after the attention block and the FFN output block (after their LayerNorms),
# bottleneck 24, gelu_new. Prefix: 24 tokens from nn.Embedding(24, 512) through Linear(512, 2) → tanh →
# Linear with biases; the head's generator reads a 512-wide vector too (the authors' `embed_dim`).
PAPER_TUNING: dict[str, dict[str, Any]] = {
    "lora": {"rank": 8, "alpha": 16, "target_modules": ["query", "value"], "reparam": PAPER_REPARAM},
    "adapter": {"bottleneck": 24, "placement": "after-norm", "activation": "gelu_new", "reparam": PAPER_REPARAM},
    "prefix": {"tokens": 24, "reparam": {**PAPER_REPARAM, "in_dim": 512, "bias": True}},
}  # fmt: skip
REPARAM = {"in_dim": 2, "mid_dim": 2}  # the image preset's


def paper_recipe(method: str) -> dict[str, Any]:
    """The settings of `<method>-reparam` for text: the authors' recipe."""
    return {"tuning": {"method": method, "options": PAPER_TUNING[method]}, "model": PAPER_MODEL,
            "train": PAPER_TRAIN}  # fmt: skip


_preset(
    "lora-reparam",
    paper_recipe("lora"),
    image={
        "tuning": {"method": "lora", "options": {"rank": 8, "alpha": 16, "reparam": REPARAM,
                                                 "target_modules": list(EFFICIENTNET_CONVS)}},
        "train": {"lr": 5e-3, "epochs": 2},
    },
)  # fmt: skip
_preset("adapter-reparam", paper_recipe("adapter"))
_preset("prefix-reparam", paper_recipe("prefix"))

# Beyond the paper (docs/defences/auto.md, "Finding the moderate-fitting point"): `auto` keeps the undefended settings
# and stops at the end of moderate-fitting found by `modfit.transition`; `NAME+auto` puts that stopping
# rule on top of any other defence.
AUTO_SUFFIX = "+auto"
_preset("auto", {"train": {"select": "auto"}}, image={"train": {"select": "auto"}})

# Baseline defences for comparison (docs/defences/baselines.md, "Baseline defences") register themselves with their
# procedure (`modfit.baselines.base.procedure`); their settings change nothing, so every training
# stage uses the user's (undefended) settings.


def base_defence(name: str) -> str:
    """The registered defence a name starts from: `lora-reparam+auto` → `lora-reparam`."""
    return name[: -len(AUTO_SUFFIX)] if name.endswith(AUTO_SUFFIX) and name != AUTO_SUFFIX else name


def procedures() -> list[str]:
    """The baselines: defences that run their own procedure."""
    return [d.name for d in sorted(DEFENCES.entries(), key=lambda d: d.name) if d.procedure is not None]


def has_procedure(name: str) -> bool:
    """Whether defence `name` (or `name+auto`) is a baseline that runs its own procedure."""
    base = base_defence(name)
    return base in DEFENCES and DEFENCES.get(base).procedure is not None


def model_name(settings: Mapping[str, Any]) -> str | None:
    """The model named in plain settings (None: the packaged default), read before they are parsed."""
    model = settings.get("model")
    return model.get("name") if isinstance(model, Mapping) else None


def baseline(kind: str, model: str | None = None) -> Schedule | None:
    """The undefended schedule of a text model (`model` None: the packaged MiniLM); None for images,
    whose undefended settings are IMAGE_DEFAULTS."""
    if kind == "image":
        return None
    return PACKAGED_BASELINE if model is None else BERT_RECIPE


def defaults(kind: str, model: str | None = None) -> dict[str, Any]:
    """The undefended settings of a `text` or `image` dataset and its model, under every preset and
    user setting."""
    schedule = baseline(kind, model)
    return IMAGE_DEFAULTS if schedule is None else schedule.settings()


def preset(name: str, kind: str = "text", model: str | None = None) -> dict[str, Any]:
    """The settings of defence `name` for a `text` or `image` dataset and its model, including the
    `+auto` stopping rule on top of a registered one."""
    base = base_defence(name)
    defence = DEFENCES.get(base)
    settings = defence.text
    if kind == "image":
        if defence.image is None:
            for_images = [d.name for d in DEFENCES.entries() if d.image is not None]
            raise ModfitError(f"defence {base!r} is for text models; for images use {', '.join(for_images)}")
        settings = defence.image
    elif callable(settings):
        settings = settings(baseline(kind, model))
    settings = copy.deepcopy(settings)  # a caller may change what it gets; the registered preset stays
    if base == name:
        return settings
    if base == "auto":
        raise ModfitError("auto+auto: auto already is the stopping rule")
    return merge(settings, preset("auto", kind, model))
