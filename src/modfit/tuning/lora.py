"""`lora`: low-rank updates W + (alpha/r)·B·A on chosen linear layers, placed by peft.

peft does what it does well here: it finds the target modules, wraps them in its LoRA layers and
later folds B·A into the base weight for export. modfit adds the reparameterized variant of the
moderate-fitting defence (docs/defences/index.md, "Defences"): one generator produces every A and the classifier
head, a second one whose `e` starts at zero produces every B, so at initialisation every B is exactly
zero and the model is the frozen backbone plus the generated head. With `init: paper` both are drawn
as the authors' code draws them (`modfit.tuning.reparam`). `target_modules` use BERT's names (`query`,
`value`); an encoder that names them otherwise (MPNet: `q`, `v`) gets its own (`modeling_modfit.PART_NAMES`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from modfit.errors import ModfitError
from modfit.modeling_modfit import part_name
from modfit.tuning.base import TUNING
from modfit.tuning.reparam import LINEAR, LINEAR_FROM_ZERO, ReparamConfig
from modfit.tuning.tuned import TunedClassifier, build, head_names, make_generator


@dataclass(frozen=True)
class LoraOptions:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("query", "value")
    reparam: ReparamConfig | None = None

    def validate(self) -> None:
        if self.rank < 1:
            raise ModfitError(f"lora rank {self.rank}: use at least 1 (the paper uses 8)")
        if not 0 <= self.dropout < 1:
            raise ModfitError(f"lora dropout {self.dropout}: use a probability in [0, 1)")
        if not self.target_modules:
            raise ModfitError("lora target_modules: name at least one linear layer, e.g. [query, value]")
        if self.reparam is not None and self.reparam.bias:
            raise ModfitError("lora reparam bias: only prefix's generator has biases; leave bias out")


@TUNING.register("lora", LoraOptions)
def lora(model: nn.Module, config: LoraOptions) -> TunedClassifier:
    from peft import LoraConfig, inject_adapter_in_model

    peft_config = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=[part_name(model.encoder, name) for name in config.target_modules],
    )
    try:
        inject_adapter_in_model(peft_config, model.encoder)
    except ValueError as err:
        raise ModfitError(
            f"lora: cannot place LoRA on {list(config.target_modules)} in {type(model.encoder).__name__} "
            f"({str(err).splitlines()[0]}); name its linear layers, e.g. target_modules=[query, value]"
        ) from None
    names = [name for name, _ in model.named_parameters()]
    a_names = [name for name in names if ".lora_A." in name]
    b_names = [name for name in names if ".lora_B." in name]
    head = head_names(model)
    if config.reparam is None:
        return build(model, "lora", config, a_names + b_names + head)
    generators = {
        "main": make_generator(model, a_names + head, config.reparam, paper=LINEAR),
        "lora_b": make_generator(model, b_names, config.reparam, zero_input=True, paper=LINEAR_FROM_ZERO),
    }
    return build(model, "lora", config, a_names + b_names + head, generators)
