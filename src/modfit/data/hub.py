"""Datasets from the Hugging Face hub, for users who are online (`hf:<dataset-id>`).

The `datasets` library is imported here only, so nothing else needs it or the network.
"""

from __future__ import annotations

from modfit.data.example import Example, Splits
from modfit.errors import ModfitError

_DEV_NAMES = ("validation", "dev")


def load_hub_dataset(dataset_id: str, text_column: str = "text", label_column: str = "label") -> Splits:
    try:
        import datasets
    except ImportError:
        raise ModfitError("hf: datasets need the `datasets` package: pip install 'modfit[hub]'") from None
    try:
        loaded = datasets.load_dataset(dataset_id)
    except Exception as err:  # the hub raises many types; all mean "could not load"
        raise ModfitError(
            f"hf:{dataset_id}: could not load ({err}); check the id and that you are online"
        ) from None

    def rows(split: str) -> list[Example]:
        table = loaded[split]
        for column in (text_column, label_column):
            if column not in table.column_names:
                raise ModfitError(
                    f"hf:{dataset_id}/{split}: no column {column!r}; pass text_column=/label_column= to load_dataset"
                )
        return [Example(str(r[text_column]), int(r[label_column])) for r in table]

    dev_name = next((n for n in _DEV_NAMES if n in loaded), None)
    if "train" not in loaded or "test" not in loaded or dev_name is None:
        raise ModfitError(f"hf:{dataset_id}: needs train, validation and test splits; has {list(loaded)}")
    train, dev, test = rows("train"), rows(dev_name), rows("test")
    num_labels = 1 + max(e.label for e in train + dev + test)
    return Splits(dataset_id, train, dev, test, max(num_labels, 2))
