"""Baseline defences on a tiny BERT and a fluent toy dataset with a planted BadNet trigger ("cf").

Each procedure runs once per module (a few seconds each) and its result is shared by the tests that
read it. A training-time filter must choose the same rows when the hidden `poisoned` marks are erased.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
import torch

from conftest import NEGATIVE, POSITIVE, write_split
from modfit import AttackConfig, Experiment, ModelConfig, TrainConfig, prepare_data, resolve, run
from modfit.baselines.cube import cluster, clusterer_name, minority_clusters, reduce
from modfit.baselines.ngram import BigramModel
from modfit.baselines.scoring import threshold_at_rate
from modfit.cli import build_parser, settings_from_args
from modfit.defences import DEFENCES, procedures
from modfit.errors import ModfitError
from modfit.metrics import auroc, detection_scores, rejection_rate


def fluent_rows(count: int, seed: int) -> list[tuple[str, int]]:
    """Texts in one word order ("the movie was very good"), so a language model can learn fluency."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = i % 2
        words = [rng.choice(["the", "a"]), rng.choice(["movie", "film", "plot", "story"]),
                 rng.choice(["was", "is"]), rng.choice(["very", "quite"]),
                 rng.choice(POSITIVE if label else NEGATIVE)]  # fmt: skip
        rows.append((" ".join(words), label))
    return rows


@pytest.fixture(scope="module")
def fluent_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fluent")
    for split, count, seed in (("train", 120, 0), ("dev", 48, 1), ("test", 48, 2)):
        write_split(folder / f"{split}.csv", fluent_rows(count, seed))
    return folder


def experiment(dataset, model_dir, defence: str, **options) -> Experiment:
    return Experiment(
        dataset=str(dataset),
        attack=AttackConfig(name="badnet", rate=0.2, options={"triggers": "cf"}),
        defence=defence,
        defence_options=options,
        model=ModelConfig(name=str(model_dir), pooling="mean", max_length=32),
        train=TrainConfig(epochs=3, lr=1e-2, batch_size=8, eval_every=1000, group_by_length=False),
    )


@pytest.fixture(scope="module")
def results(fluent_dataset, tiny_bert):
    """Run a defence once per module: `results(defence, **options)`."""
    cache = {}

    def get(defence: str, **options):
        key = (defence, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = run(experiment(fluent_dataset, tiny_bert, defence, **options), progress=False)
        return cache[key]

    return get


# --- pure functions on hand-made numbers -------------------------------------------------------------


def test_detection_scores():
    truth = [True, True, False, False, False]
    scores = detection_scores([True, False, True, False, False], [0.9, 0.4, 0.8, 0.1, 0.2], truth)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.5, 0.5, 0.5)
    assert scores["auroc"] == pytest.approx(5 / 6)  # 0.9 beats all 3 clean rows, 0.4 beats 2 (0.1, 0.2)
    nothing = detection_scores([False] * 5, [0.0] * 5, truth)
    assert math.isnan(nothing["precision"]) and (nothing["recall"], nothing["f1"], nothing["auroc"]) == (
        0,
        0,
        0.5,
    )


def test_auroc_counts_ties_half_and_needs_both_classes():
    assert auroc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert auroc([4, 3, 2, 1], [False, False, True, True]) == 0.0
    assert auroc([1, 1], [True, False]) == 0.5
    assert math.isnan(auroc([1, 2], [True, True]))


def test_rejection_rate():
    assert rejection_rate([True, False, False, False]) == 0.25
    assert math.isnan(rejection_rate([]))


def test_the_threshold_rejects_the_chosen_share_of_clean_scores():
    clean = [float(s) for s in range(1, 101)]
    random.Random(0).shuffle(clean)
    for rate in (0.0, 0.01, 0.05, 0.3):
        cut = threshold_at_rate(clean, rate)
        assert sum(s < cut for s in clean) == round(rate * 100)
    assert sum(s < threshold_at_rate([1.0] * 10, 0.5) for s in [1.0] * 10) == 0  # ties: fewer, never more
    with pytest.raises(ValueError):
        threshold_at_rate([], 0.1)


def test_the_bigram_model_finds_an_inserted_word_implausible():
    lm = BigramModel().fit(t for t, _ in fluent_rows(200, 0))
    assert lm.perplexity("the movie was cf very good") > 2 * lm.perplexity("the movie was very good")


def test_onion_scores_with_a_hugging_face_causal_lm(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from conftest import make_tokenizer
    from modfit.baselines.causal_lm import CausalLM
    from modfit.baselines.onion import suspicions

    tokenizer = make_tokenizer(tmp_path)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=tokenizer.vocab_size, n_embd=16, n_layer=1, n_head=2, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    lm = CausalLM(str(tmp_path), batch_size=2)
    assert lm.model is None  # loads on first use, not at construction
    perplexities = lm.perplexities(["the movie was good", "a film", "the plot is very dull indeed"])
    assert len(perplexities) == 3 and all(math.isfinite(p) and p > 1 for p in perplexities)
    assert [len(row) for row in suspicions(lm, ["the movie was good", "good"])] == [4, 1]


# --- the mechanism: names, options, CLI, grid hash --------------------------------------------------


def test_every_procedure_is_a_defence_preset():
    assert set(procedures()) == {"bki", "cube", "onion", "purify", "rap", "safe", "strip"}
    assert set(procedures()) <= set(DEFENCES.names())


def test_options_are_checked_at_the_edge():
    assert resolve({"defence": "strip", "defence_options": {"frr": 0.05}}).defence_options == {"frr": 0.05}
    with pytest.raises(ModfitError, match="strip options: unknown key 'fr'"):
        resolve({"defence": "strip", "defence_options": {"fr": 0.05}})
    with pytest.raises(ModfitError, match="strip frr 2"):
        resolve({"defence": "strip", "defence_options": {"frr": 2}})
    with pytest.raises(ModfitError, match="'none' takes no options"):
        resolve({"defence": "none", "defence_options": {"frr": 0.05}})


def test_the_cli_passes_defence_options():
    args = build_parser().parse_args(
        [
            "train",
            "--out",
            "x",
            "--defence",
            "rap",
            "--defence-option",
            "frr=0.05",
            "--defence-option",
            "epochs=3",
        ]
    )
    assert settings_from_args(args)["defence_options"] == {"frr": 0.05, "epochs": 3}


# --- each baseline against the planted trigger ------------------------------------------------------


def test_bki_names_the_trigger_and_removes_its_rows(results):
    metrics = results("bki").metrics()
    assert metrics["keywords"] == "cf"
    assert metrics["recall"] == 1.0 and metrics["precision"] >= 0.9
    assert metrics["scoring_asr"] >= 0.8 and metrics["asr"] <= 0.5


def test_cube_drops_mostly_poisoned_rows(results):
    metrics = results("cube").metrics()
    assert metrics["reducer"] == "pca" and metrics["clusterer"] in ("hdbscan", "dbscan")
    assert metrics["precision"] >= 0.5 and metrics["auroc"] >= 0.7  # the poisoned share is 0.2


def test_cube_keeps_each_labels_largest_cluster_and_drops_a_planted_small_one():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0] * 8, [10.0] * 8, [-10.0] * 8])
    sizes = [40, 40, 10]  # label 0; label 1; and a small cluster labelled 1 (the "poisoned" rows)
    points = torch.cat(
        [c + torch.randn(n, 8, generator=generator) * 0.3 for c, n in zip(centres, sizes, strict=True)]
    )
    labels = [0] * 40 + [1] * 50
    reduced = reduce(points, "pca", 3, seed=0)
    verdict = minority_clusters(cluster(reduced, 5, clusterer_name()), labels)
    assert verdict.flagged == [False] * 80 + [True] * 10
    assert min(verdict.scores[80:]) > max(verdict.scores[:80])


def test_strip_rejects_triggered_inputs_more_often_than_clean_ones(results):
    metrics = results("strip").metrics()
    assert metrics["model_asr"] >= 0.8 and metrics["frr"] <= 0.1
    assert 1 - metrics["far"] >= metrics["frr"] + 0.2
    assert (
        metrics["asr"] <= metrics["far"] + 1e-9 and metrics["cacc"] >= metrics["model_cacc"] - metrics["frr"]
    )


def test_strip_as_a_training_filter_flags_mostly_poisoned_rows(results):
    metrics = results("strip", filter_train=True).metrics()
    assert metrics["precision"] >= 0.4 and metrics["auroc"] >= 0.65  # the poisoned share is 0.2


def test_rap_rejects_triggered_inputs_more_often_than_clean_ones(results):
    metrics = results("rap", epochs=10).metrics()
    assert metrics["frr"] <= 0.1
    assert 1 - metrics["far"] >= metrics["frr"] + 0.2
    assert metrics["asr"] < metrics["model_asr"]


def test_onion_with_a_bigram_model_deletes_the_trigger(results):
    metrics = results("onion").metrics()
    assert metrics["lm"] == "bigram(train)" and metrics["threshold"] >= 0
    assert metrics["model_asr"] >= 0.8 and metrics["asr"] <= 0.2


@pytest.mark.parametrize(
    ("defence", "options"), [("bki", {}), ("cube", {}), ("strip", {"filter_train": True})]
)
def test_a_filter_chooses_the_same_rows_without_the_poisoned_marks(
    fluent_dataset, tiny_bert, results, defence, options
):
    chosen = experiment(fluent_dataset, tiny_bert, defence, **options)
    data = prepare_data(chosen)
    hidden = dataclasses.replace(data, train=[dataclasses.replace(e, poisoned=False) for e in data.train])
    blind = run(chosen, progress=False, data=hidden)
    assert blind.defence.removed == results(defence, **options).defence.removed
    assert blind.metrics()["removed_poisoned"] == 0  # the marks were erased, so no row counts as found
