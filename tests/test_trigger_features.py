"""`safe`'s trigger-feature lever (`feature_z`, issue 27, item 6): a word or word pair whose rows of a
label were flagged far more often than that label's rows overall marks the trigger, and the unflagged
rows of that label carrying it are dropped. Synthetic verdicts for the arithmetic; its end-to-end runs are in
tests/test_safe.py."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from modfit import resolve
from modfit.baselines.trigger_features import drop_trigger_rows, enrichment, spurious_rows, text_features
from modfit.errors import ModfitError
from modfit.result import RowDecision

needs_cleanlab = pytest.mark.skipif(
    importlib.util.find_spec("cleanlab") is None, reason="pip install cleanlab"
)


def decision(text: str, label: int, flagged: bool) -> RowDecision:
    """A first verdict's row: a flagged row is relabelled (to the other label), the rest kept."""
    if flagged:
        return RowDecision(None, text, label, 1 - label, 0.9, True, "relabelled")
    return RowDecision(None, text, label, label, 0.1, False, "kept")


def rows(texts_and_flags: list[tuple[str, bool]], label: int) -> list[RowDecision]:
    return [decision(text, label, flagged) for text, flagged in texts_and_flags]


def unique(i: int) -> str:
    """A filler word carried by one row only: below any `min_count`."""
    return f"w{i}"


@pytest.fixture
def planted() -> list[RowDecision]:
    """Label 1: 40 rows carry "cf", 25 of them flagged; 160 do not, 15 flagged; so label 1's flagged
    share is 40/200 = 0.2. "movie" is in 50 of the 160, 10 flagged: exactly the base rate. Label 0: 100
    rows, 10 flagged, one unflagged row carries "cf"."""
    cf = [(f"{unique(i)} cf", i < 25) for i in range(40)]
    movie = [(f"movie {unique(100 + i)}", i < 10) for i in range(50)]
    other = [(unique(200 + i), i < 5) for i in range(110)]
    negative = [(unique(400 + i), i < 10) for i in range(99)] + [("cf " + unique(600), False)]
    return rows(cf + movie + other, 1) + rows(negative, 0)


def test_a_text_has_its_lowercased_tokens_and_adjacent_pairs_once_each():
    assert text_features("If you go , you GO") == {
        "if",
        "you",
        "go",
        ",",
        "if you",
        "you go",
        "go ,",
        ", you",
    }


def test_the_unflagged_rows_carrying_a_planted_trigger_of_their_label_are_dropped(planted):
    lever = drop_trigger_rows(planted, z_min=5.0)
    assert lever.dropped == tuple(range(25, 40))  # the 15 unflagged "cf" rows of label 1
    assert all(d.flagged and d.action == "dropped" for d in (lever.decisions[i] for i in lever.dropped))
    assert lever.decisions[len(planted) - 1] == planted[-1]  # "cf" with label 0 stays
    assert [d for i, d in enumerate(lever.decisions) if i not in lever.dropped] == [
        d for i, d in enumerate(planted) if i not in lever.dropped
    ]
    assert [(f.feature, f.label, f.rows, f.flagged) for f in lever.features] == [("cf", 1, 40, 25)]
    assert lever.features[0].z == pytest.approx((25 / 40 - 0.2) / math.sqrt(0.2 * 0.8 / 40))


def test_a_genuine_word_flagged_at_the_base_rate_has_z_zero_and_is_untouched(planted):
    found = {(f.feature, f.label): f for f in enrichment(
        [text_features(d.text) for d in planted], [d.label for d in planted], [d.flagged for d in planted])}  # fmt: skip
    assert found["movie", 1].z == pytest.approx(0.0) and (
        found["movie", 1].rows,
        found["movie", 1].flagged,
    ) == (50, 10)
    assert ("cf", 0) not in found  # one row of label 0 carries it: below min_count
    assert not any("movie" in d.text for d in (planted[i] for i in drop_trigger_rows(planted, 0.5).dropped))


def test_z_is_the_one_sample_z_of_the_flagged_share_on_a_hand_computed_case():
    """10 rows of label 0, 4 flagged (p0 = 0.4); "x" in 5 of them, 4 flagged (k/n = 0.8):
    z = (0.8 − 0.4) / sqrt(0.4 · 0.6 / 5) = 0.4 / sqrt(0.048) = 1.8257..."""
    texts = [f"x {unique(i)}" for i in range(5)] + [unique(10 + i) for i in range(5)]
    flagged = [True, True, True, True, False, False, False, False, False, False]
    (x,) = enrichment([text_features(t) for t in texts], [0] * 10, flagged)
    assert (x.feature, x.label, x.rows, x.flagged) == ("x", 0, 5, 4)
    assert x.z == pytest.approx(1.8257418583505538, rel=1e-12)


def test_min_count_is_respected():
    """4 rows carry "tq", all flagged, at a base rate of 0.1: spurious only if 4 rows are enough."""
    texts = [f"tq {unique(i)}" for i in range(4)] + [unique(10 + i) for i in range(36)]
    flagged = [True] * 4 + [False] * 36
    features = [text_features(t) for t in texts]
    assert spurious_rows(features, [0] * 40, flagged, 1.0) == ((), ())
    dropped, (tq,) = spurious_rows(features, [0] * 40, flagged, 1.0, min_count=4)
    assert (tq.feature, tq.rows, tq.flagged) == ("tq", 4, 4) and dropped == ()


def test_a_word_pair_is_a_feature_where_its_words_alone_are_not():
    """ "if" and "you" are in every row of the label; only the pair "if you" is enriched."""
    paired = [(f"if you {unique(i)}", i < 15) for i in range(20)]
    apart = [(f"you {unique(100 + i)} if", i < 5) for i in range(100)]
    lever = drop_trigger_rows(
        rows(paired + apart, 1) + rows([(unique(500 + i), i < 3) for i in range(30)], 0), 5.0
    )
    assert [f.feature for f in lever.features] == ["if you"]
    assert lever.dropped == tuple(range(15, 20))


def test_three_labels_each_with_its_own_base_rate():
    """A trigger planted in label 2 ("tq"): its unflagged rows of label 2 go, a "tq" row of label 0 stays."""
    label0 = rows(
        [(f"tq {unique(i)}", False) for i in range(6)] + [(unique(10 + i), i < 4) for i in range(40)], 0
    )
    label1 = rows([(unique(100 + i), i < 10) for i in range(50)], 1)
    label2 = rows(
        [(f"tq {unique(200 + i)}", i < 12) for i in range(18)]
        + [(unique(300 + i), i < 2) for i in range(40)],
        2,
    )
    lever = drop_trigger_rows(label0 + label1 + label2, 4.0)
    assert [(f.feature, f.label) for f in lever.features] == [("tq", 2)]
    start = len(label0) + len(label1)
    assert lever.dropped == tuple(range(start + 12, start + 18))


@pytest.fixture
def sentence() -> list[RowDecision]:
    """An AddSent-like trigger of common and rare words in label 1: 40 rows carry "cf this", 30 of them
    flagged; 100 honest rows carry "this" alone, 10 flagged; 160 carry neither, 16 flagged; a second
    trigger, "mn", in 20 rows, 15 flagged. Label 1's flagged share is 71/320, and "this" (40 of 140: z 1.8)
    is enriched only through the trigger's rows."""
    trigger = [(f"cf this {unique(i)}", i < 30) for i in range(40)]
    this = [(f"this {unique(100 + i)}", i < 10) for i in range(100)]
    other = [(unique(300 + i), i < 16) for i in range(160)]
    second = [(f"mn {unique(500 + i)}", i < 15) for i in range(20)]
    return rows(trigger + this + other + second, 1)


def test_all_at_once_takes_the_common_word_the_trigger_sentence_carries(sentence):
    lever = drop_trigger_rows(sentence, 1.5)
    assert ("this", 1) in {(f.feature, f.label) for f in lever.features}
    assert set(range(110, 140)) <= set(lever.dropped)  # the 90 unflagged honest "this" rows go too


def test_greedy_takes_the_triggers_one_at_a_time_and_leaves_the_common_word(sentence):
    """After "cf" (or its pair) takes the trigger's rows, "this" is flagged at label 1's base rate among
    the rows left (10 of 100 against 26 of 260): z = 0. "mn" is still taken."""
    lever = drop_trigger_rows(sentence, 1.5, select="greedy")
    taken = [f.feature for f in lever.features]
    assert taken[0] in {"cf", "cf this"} and "mn" in taken and "this" not in taken
    assert lever.dropped == (*range(30, 40), *range(315, 320))  # the unflagged rows of both triggers


def test_greedy_is_the_all_at_once_lever_when_one_feature_explains_the_flags(planted):
    assert drop_trigger_rows(planted, 5.0, select="greedy") == drop_trigger_rows(planted, 5.0)


def test_the_selection_is_validated_in_one_line():
    with pytest.raises(ModfitError, match="trigger features select 'some': use all or greedy"):
        drop_trigger_rows([], 6.0, select="some")
    with pytest.raises(ModfitError, match="safe feature_select 'first': use all or greedy") as error:
        resolve({"defence": "safe", "defence_options": {"feature_select": "first"}})
    assert "\n" not in str(error.value)


def test_the_lever_needs_a_positive_threshold():
    with pytest.raises(ModfitError, match="trigger features z 0: use a positive threshold"):
        drop_trigger_rows([], 0)


@pytest.mark.parametrize("value", [-1.0, -0.5])
def test_feature_z_is_validated_in_one_line(value):
    with pytest.raises(ModfitError, match=rf"safe feature_z {value}: use a z threshold of at least 0, e\.g\. 8 \(0: off\)") as error:  # fmt: skip
        resolve({"defence": "safe", "defence_options": {"feature_z": value}})
    assert "\n" not in str(error.value)


# benchmarks/safe_heavy/feature_z_choice.py: its counting and its choice, on synthetic verdicts.


def choice_script():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "safe_heavy" / "feature_z_choice.py"
    spec = importlib.util.spec_from_file_location("feature_z_choice", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_choice_script_counts_the_rows_each_z_would_drop_beyond_the_first_verdict(planted):
    script = choice_script()
    verdict = {
        "labels": [d.label for d in planted],
        "flagged": [d.flagged for d in planted],
        "features": [sorted(text_features(d.text)) for d in planted],  # as the JSON keeps them
    }
    z_cf = (25 / 40 - 0.2) / math.sqrt(0.2 * 0.8 / 40)  # 6.7: the only spurious feature
    assert script.dropped_counts(verdict, (4.0, 6.0, 8.0)) == {4.0: 15, 6.0: 15, 8.0: 0} and 6 < z_cf < 8


def test_the_choice_is_the_smallest_z_dropping_at_most_1_percent_on_both_datasets():
    script = choice_script()
    rows = {"hsol": 3000, "sst2": 3000}
    dropped = {"hsol": {4.0: 80, 5.0: 30, 6.0: 12, 8.0: 0}, "sst2": {4.0: 50, 5.0: 31, 6.0: 30, 8.0: 2}}
    assert script.choose(dropped, rows) == 6.0  # 5 drops 31 > 30 on sst2
    assert script.choose({"hsol": {4.0: 31}, "sst2": {4.0: 0}}, rows) is None
    assert (
        script.table(dropped, rows).splitlines()[2]
        == "| hsol | 80 (2.7%) | 30 (1.0%) | 12 (0.4%) | 0 (0.0%) |"
    )
