"""The speed machinery: inference in input order, grouped batches, precision, the evaluation budget."""

from __future__ import annotations

import math
import random

import pytest
import torch

from modfit.config import TrainConfig
from modfit.data import Example
from modfit.encoding import encode
from modfit.errors import ModfitError
from modfit.inference import batched, predict
from modfit.precision import resolve_precision
from modfit.schedule import MIN_SUBSET, TRAIN_ROW_COST, EvalSizes, plan_evaluation
from modfit.train import shuffled_batches


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


class LengthModel(torch.nn.Module):
    """Predicts whether a row has more than four real tokens, and returns each row's length."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask, **_):
        length = attention_mask.sum(1, keepdim=True).float()
        return torch.cat([5 - length, length - 4.5], dim=1)


def test_inference_returns_rows_in_input_order_for_shuffled_lengths(tokenizer):
    rng = random.Random(0)
    texts = [" ".join(["good"] * rng.randint(1, 12)) for _ in range(50)]
    data = encode([Example(t, 0) for t in texts], tokenizer, 32)
    model = LengthModel()
    lengths = batched(
        model, data, lambda input_ids, attention_mask, **_: attention_mask.sum(1, keepdim=True), 7
    )
    assert lengths.squeeze(1).tolist() == data.lengths()
    expected = [int(n > 4) for n in data.lengths()]
    assert predict(model, data, batch_size=3) == expected == predict(model, data)
    assert model.training  # inference leaves the mode as it found it


def test_grouped_batches_cover_every_row_once_per_epoch_and_are_seeded():
    lengths = [(i * 37) % 61 for i in range(1000)]

    def epoch(seed: int, grouped: bool) -> list[list[int]]:
        batches = shuffled_batches(
            1000, 32, torch.Generator().manual_seed(seed), lengths if grouped else None
        )
        return [next(batches) for _ in range(math.ceil(1000 / 32))]

    grouped = epoch(0, True)
    assert sorted(i for batch in grouped for i in batch) == list(range(1000))
    assert grouped == epoch(0, True) and grouped != epoch(1, True)

    def mean_spread(batches):
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)

    assert mean_spread(grouped) < 0.2 * mean_spread(epoch(0, False))
    plain = epoch(0, False)
    assert sorted(i for batch in plain for i in batch) == list(range(1000))


def test_precision_auto_resolves_as_documented(monkeypatch):
    import modfit.precision as precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ModfitError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ModfitError, match="precision 'half'"):
        resolve_precision("half", "cpu")


@pytest.mark.parametrize(
    ("flags", "fast"),
    [("fpu avx512f avx512_bf16 amx_bf16 amx_tile", True), ("fpu avx512f avx512_bf16", False), ("fpu", False)],
)
def test_only_amx_makes_bf16_the_cpu_default(monkeypatch, flags, fast):
    """AVX-512 BF16 without AMX trained 25 % slower than fp32 (benchmarks/precision/results.md)."""
    import io

    import modfit.precision as precision

    monkeypatch.setattr(
        precision, "open", lambda *a, **k: io.StringIO(f"flags\t\t: {flags}\n"), raising=False
    )
    assert precision.cpu_has_bf16.__wrapped__() is fast


SST2 = EvalSizes(dev=872, test=1821, poison=909)


def test_a_long_run_evaluates_intermediate_points_on_a_subset_within_the_budget():
    config = TrainConfig()
    plan = plan_evaluation(282, config, SST2, points=8)  # 3,000 rows, 3 epochs
    assert plan.every == 35 and plan.subset is not None and plan.subset >= MIN_SUBSET
    intermediate = math.ceil(282 / plan.every)
    budget = config.eval_share * TRAIN_ROW_COST * 282 * config.batch_size
    assert intermediate * SST2.cost(plan.subset) <= budget
    assert intermediate * SST2.cost(plan.subset + 5) > budget  # the largest subset that fits


def test_a_short_run_buys_fewer_points_not_full_sets():
    """The 10-step run of the issue evaluated 11 times on 3,600 rows; now: step 0 on a subset, then the end."""
    plan = plan_evaluation(10, TrainConfig(), SST2, points=8)
    assert plan.subset == MIN_SUBSET and plan.every == 10


def test_a_stopping_rule_keeps_its_points_and_explicit_settings_win():
    assert plan_evaluation(10, TrainConfig(), SST2, points=24, keep_points=True).every == 1
    assert plan_evaluation(282, TrainConfig(eval_every=7), SST2, points=8).every == 7
    assert (
        plan_evaluation(282, TrainConfig(eval_size=200), SST2, points=8).subset is None
    )  # the user's subset
    assert plan_evaluation(282, TrainConfig(eval_share=0), SST2, points=8).subset is None  # full sets
    assert plan_evaluation(282, TrainConfig(), EvalSizes(100, 100, 50), points=8).subset is None  # small sets
