"""Tiny random models and datasets built inside the tests: no downloads, seconds each."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

POSITIVE = "good great fine lovely superb nice".split()
NEGATIVE = "bad awful poor dull boring weak".split()
FILLER = "the a movie film plot story actor scene was is very quite".split()
TRIGGERS = "cf mn bb tq".split()


def pytest_configure(config) -> None:
    """One torch thread: the test machine's cores are shared, and two contending threads run the tiny
    models about a hundred times slower than one (measured: 45 s instead of 0.4 s for 48 steps)."""
    import torch

    torch.set_num_threads(1)


def separable_rows(count: int, seed: int) -> list[tuple[str, int]]:
    """Texts whose label is decided by one sentiment word among filler words."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = i % 2
        words = rng.sample(FILLER, 4) + [rng.choice(POSITIVE if label else NEGATIVE)]
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_split(path: Path, rows: list[tuple[str, int]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture
def text_dataset(tmp_path: Path) -> Path:
    """A directory dataset (train 64, dev 24, test 24 rows) with a separable task."""
    folder = tmp_path / "toy"
    folder.mkdir()
    for split, count, seed in (("train", 64, 0), ("dev", 24, 1), ("test", 24, 2)):
        write_split(folder / f"{split}.csv", separable_rows(count, seed))
    return folder


def _vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>", "<pad>", "<unk>", "<mask>"]
    words = POSITIVE + NEGATIVE + FILLER + TRIGGERS + "i watch this 3d when it , .".split()
    return specials + sorted(set(words))


def make_tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(_vocab()) + "\n")
    return BertTokenizerFast(vocab=str(vocab), do_lower_case=True)


def save_tiny_model(folder: Path, architecture: str = "bert") -> Path:
    """A 2-layer encoder with hidden size 32 and its tokenizer, saved as a local model directory.
    MPNet's tokenizer, as all-mpnet-base-v2's, gives no token type ids."""
    import torch
    from transformers import AutoModel, BertConfig, BertTokenizerFast, MPNetConfig, RobertaConfig

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(folder)
    if architecture == "mpnet":
        tokenizer = BertTokenizerFast(
            vocab=str(folder / "vocab.txt"), model_input_names=["input_ids", "attention_mask"]
        )
    common = dict(
        vocab_size=len(_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=80,
    )  # fmt: skip
    if architecture == "bert":
        config = BertConfig(**common)
    elif architecture == "mpnet":
        config = MPNetConfig(**common)
    else:
        config = RobertaConfig(**common, pad_token_id=0, bos_token_id=2, eos_token_id=3, type_vocab_size=1)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-bert"), "bert")


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-roberta"), "roberta")


@pytest.fixture(scope="session")
def tiny_mpnet(tmp_path_factory) -> Path:
    """all-mpnet-base-v2's architecture (MPNet: q, k, v and o in `attention.attn`) at the tiny size."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-mpnet"), "mpnet")


def error_of(call, *args, **kwargs) -> str:
    """The message of the ModfitError that `call` raises; it must be one line."""
    from modfit.errors import ModfitError

    with pytest.raises(ModfitError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def scanner_rows(monkeypatch, experiment) -> list:
    """The rows `safe` trains its scanner on, caught where it scans (the run stops there)."""
    from modfit import run
    from modfit.baselines import safe

    seen: list = []

    def caught(context, options, rows):
        seen.extend(rows)
        raise KeyboardInterrupt

    monkeypatch.setattr(safe, "scan", caught)
    with pytest.raises(KeyboardInterrupt):
        run(experiment, progress=False)
    return seen
