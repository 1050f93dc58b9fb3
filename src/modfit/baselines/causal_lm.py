"""A Hugging Face causal language model as ONION's scorer (the original uses GPT-2)."""

from __future__ import annotations

import torch

from modfit.errors import ModfitError


class CausalLM:
    """Perplexity of texts under a causal LM (`name`: hub id or local directory). Loads on first use."""

    def __init__(self, name: str, batch_size: int = 32) -> None:
        self.name = name
        self.batch_size = batch_size
        self.model = None
        self.tokenizer = None

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.name)
            self.model = AutoModelForCausalLM.from_pretrained(self.name)
        except OSError as err:
            raise ModfitError(
                f"onion lm {self.name!r} could not be loaded ({str(err).splitlines()[0]}); give a local "
                "directory or set HF_HUB_OFFLINE=0"
            ) from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.to("cuda" if torch.cuda.is_available() else "cpu").eval()

    @torch.no_grad()
    def perplexities(self, texts: list[str]) -> list[float]:
        if self.model is None:
            self._load()
        device = next(self.model.parameters()).device
        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                [t or " " for t in texts[start : start + self.batch_size]],
                return_tensors="pt", padding=True, truncation=True, max_length=256,
            ).to(device)  # fmt: skip
            logits = self.model(**batch).logits[:, :-1].float()
            labels, mask = batch["input_ids"][:, 1:], batch["attention_mask"][:, 1:].float()
            losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
            mean = (losses * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            out += mean.exp().tolist()
        return out
