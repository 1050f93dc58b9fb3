"""What a grid computes once and hands to many runs: poisoned data, token ids and tokenizers."""

from __future__ import annotations

from array import array
from collections import OrderedDict
from typing import Any

from modfit.config import Experiment, ModelConfig, to_dict
from modfit.data import Example
from modfit.encoding import Encoded
from modfit.files import canonical_json
from modfit.prepare import PoisonedData, prepare_data

COLUMNS = ("input_ids", "attention_mask", "token_type_ids")


def data_key(experiment: Experiment) -> str:
    """What `prepare_data` depends on: dataset, attack (name, options, rate, mode, target), seed, size."""
    return canonical_json(
        [experiment.dataset, to_dict(experiment.attack), experiment.seed, experiment.train_size,
         experiment.poison_test]
    )  # fmt: skip


class PreparedData:
    """Poisoned data per `data_key`, prepared once. Cells that share it run one after another, so a
    few entries suffice; older ones are dropped to bound memory."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self.entries: OrderedDict[str, PoisonedData] = OrderedDict()
        self.prepared = 0

    def get(self, experiment: Experiment) -> PoisonedData:
        key = data_key(experiment)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        data = prepare_data(experiment)
        self.prepared += 1
        self.entries[key] = data
        while len(self.entries) > self.keep:
            self.entries.popitem(last=False)
        return data


class TokenCache:
    """Token ids per text, per tokenizer and length, kept as compact integer arrays.

    `encode` has `modfit.encoding.encode`'s signature and result: each text is tokenised alone
    (no padding), so tokenising only the texts not seen before gives the same ids.
    """

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str, int], dict[str, tuple[array, ...]]] = {}
        self.columns: dict[tuple[str, str, int], tuple[str, ...]] = {}
        self.tokenised = 0

    def clear(self) -> None:
        self.tables.clear()
        self.columns.clear()

    def encode(self, examples: list[Example], tokenizer: Any, max_length: int) -> Encoded:
        key = (type(tokenizer).__name__, str(getattr(tokenizer, "name_or_path", id(tokenizer))), max_length)
        table = self.tables.setdefault(key, {})
        missing = list(dict.fromkeys(e.text for e in examples if e.text not in table))
        if missing:
            tokens = tokenizer(missing, truncation=True, max_length=max_length)
            names = self.columns.setdefault(key, tuple(c for c in COLUMNS if c in tokens))
            for index, text in enumerate(missing):
                table[text] = tuple(array("i", tokens[name][index]) for name in names)
            self.tokenised += len(missing)
        rows = [table[e.text] for e in examples]
        columns = {
            name: [row[i].tolist() for row in rows] for i, name in enumerate(self.columns.get(key, ()))
        }
        return Encoded(columns, [e.label for e in examples], tokenizer)


class Tokenizers:
    """One tokenizer per model for the rows whose representations are recorded."""

    def __init__(self) -> None:
        self.loaded: dict[str | None, Any] = {}

    def get(self, config: ModelConfig) -> Any:
        if config.name not in self.loaded:
            from transformers import AutoTokenizer

            from modfit.model import model_path

            self.loaded[config.name] = AutoTokenizer.from_pretrained(model_path(config.name))
        return self.loaded[config.name]
