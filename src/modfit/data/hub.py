"""Datasets from the Hugging Face hub, for users who are online (`hf:<dataset-id>`).

The `datasets` library is imported here only, so nothing else needs it or the network.
"""

from __future__ import annotations

import os

from modfit.data.example import Example, Splits
from modfit.errors import ModfitError

_DEV_NAMES = ("validation", "dev")
REACH_TIMEOUT_S = 5.0  # an unresponsive hub or proxy is reported after this, not after minutes of retries


def _offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _check_reachable(dataset_id: str) -> None:
    """One request with a short timeout before `datasets` (whose retries take minutes behind a proxy
    that does not answer); proxies come from the environment as for every request."""
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    try:
        urllib.request.urlopen(f"{constants.ENDPOINT}/api/datasets/{dataset_id}", timeout=REACH_TIMEOUT_S)
    except urllib.error.HTTPError:
        return  # the hub answered (e.g. 401 for a private set): let `datasets` say what it says
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise ModfitError(
            f"hf:{dataset_id}: the hub did not answer within {REACH_TIMEOUT_S:g}s ({reason}); check your "
            "network or proxy, or use a local folder of train/dev/test files"
        ) from None


def load_hub_dataset(dataset_id: str, text_column: str = "text", label_column: str = "label") -> Splits:
    try:
        import datasets
    except ImportError:
        raise ModfitError("hf: datasets need the `datasets` package: pip install 'modfit[hub]'") from None
    if not _offline():  # offline, `datasets` reads only its cache, which fails fast
        _check_reachable(dataset_id)
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
        return [Example(str(r[text_column]), int(r[label_column]), row=i) for i, r in enumerate(table)]

    dev_name = next((n for n in _DEV_NAMES if n in loaded), None)
    if "train" not in loaded or "test" not in loaded or dev_name is None:
        raise ModfitError(f"hf:{dataset_id}: needs train, validation and test splits; has {list(loaded)}")
    train, dev, test = rows("train"), rows(dev_name), rows("test")
    num_labels = 1 + max(e.label for e in train + dev + test)
    return Splits(dataset_id, train, dev, test, max(num_labels, 2))
