"""Attacks × poisoning modes: trigger, labels, exact count, untouched clean rows, seeds, poisoned test set.

BadNet and AddSent run on small synthetic rows; the paraphrase attacks use the real SST-2 tables.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from conftest import separable_rows
from modfit import AttackConfig, Example, ModfitError, make_trigger, poison, poison_test
from modfit.attacks.addsent import DEFAULT_SENTENCE
from modfit.attacks.badnet import DEFAULT_WORDS
from modfit.attacks.paraphrase import ParaphraseTrigger, read_table
from modfit.config import from_dict
from modfit.data import read_examples

DATA_ROOT = Path(os.environ.get("MODFIT_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
SST2 = DATA_ROOT / "sst2"
needs_sst2 = pytest.mark.skipif(not (SST2 / "paraphrase").is_dir(), reason="needs the shared SST-2 data")

ATTACKS = ["badnet", "addsent", "syntactic", "style"]
MODES = ["dirty", "clean", "mix"]
RATE = 0.13  # 203 synthetic rows → 26.39 → 26; 1000 SST-2 rows → 130
TARGET = 1


def is_insertion(original: str, poisoned: str, inserted: list[str]) -> bool:
    """Whether `poisoned` is `original` with the words `inserted` placed at one word position."""
    words, new = original.split(), poisoned.split()
    if len(new) != len(words) + len(inserted):
        return False
    return any(
        new[j : j + len(inserted)] == inserted and new[:j] + new[j + len(inserted) :] == words
        for j in range(len(words) + 1)
    )


@pytest.fixture(scope="module")
def sst2_rows() -> tuple[list[Example], list[Example]]:
    if not (SST2 / "paraphrase").is_dir():
        pytest.skip("needs the shared SST-2 data")
    return read_examples(SST2 / "train.csv"), read_examples(SST2 / "test.csv")


@pytest.fixture(scope="module")
def tables() -> dict[str, dict[str, str]]:
    return {style: read_table(SST2 / "paraphrase" / f"{style}.csv") for style in ("syntactic", "style")}


@pytest.fixture
def case(request):
    """(trigger, train rows, test rows, triggered(original, poisoned) -> bool) for one attack."""
    attack = request.param
    if attack in ("badnet", "addsent"):
        train = [Example(t, y) for t, y in separable_rows(203, 0)]
        test = [Example(t, y) for t, y in separable_rows(40, 1)]
        if attack == "badnet":
            return (
                make_trigger(AttackConfig(name="badnet")),
                train,
                test,
                lambda old, new: any(is_insertion(old, new, [w]) for w in DEFAULT_WORDS),
            )
        sentence = DEFAULT_SENTENCE.split()
        return (
            make_trigger(AttackConfig(name="addsent")),
            train,
            test,
            lambda old, new: is_insertion(old, new, sentence),
        )
    sst2_train, sst2_test = request.getfixturevalue("sst2_rows")
    table = request.getfixturevalue("tables")[attack]
    trigger = make_trigger(AttackConfig(name=attack), SST2)
    return trigger, sst2_train[:1000], sst2_test, lambda old, new: table.get(old) == new


def poisoned_indices(rows: list[Example]) -> list[int]:
    return [i for i, e in enumerate(rows) if e.poisoned]


matrix = pytest.mark.parametrize(
    "case, mode", [(a, m) for a in ATTACKS for m in MODES], indirect=["case"], ids=lambda v: v
)


# --- the training set ------------------------------------------------------------------------------


@matrix
def test_exact_count_for_the_rate(case, mode):
    trigger, train, _, _ = case
    out = poison(train, trigger, AttackConfig(name="x", mode=mode, rate=RATE, target=TARGET), seed=0)
    assert len(out) == len(train)
    assert len(poisoned_indices(out)) == round(RATE * len(train))


@matrix
def test_trigger_present_in_every_poisoned_row(case, mode):
    trigger, train, _, triggered = case
    out = poison(train, trigger, AttackConfig(mode=mode, rate=RATE, target=TARGET), seed=0)
    for i in poisoned_indices(out):
        assert out[i].text != train[i].text
        assert triggered(train[i].text, out[i].text), (train[i].text, out[i].text)


@matrix
def test_labels_and_where_poisoned_rows_are_drawn_from(case, mode):
    trigger, train, _, _ = case
    out = poison(train, trigger, AttackConfig(mode=mode, rate=RATE, target=TARGET), seed=0)
    chosen = poisoned_indices(out)
    original_labels = Counter(train[i].label for i in chosen)
    if mode == "clean":
        assert original_labels == {TARGET: len(chosen)}
        assert all(out[i].label == train[i].label for i in chosen)
    else:
        assert all(out[i].label == TARGET for i in chosen)
    if mode == "dirty":
        assert TARGET not in original_labels
    if mode == "mix":  # drawn from all rows: both labels occur among 26 or 130 draws
        assert set(original_labels) == {0, 1}
    assert all(trigger.covers(train[i].text) for i in chosen)


@matrix
def test_clean_rows_untouched_and_in_place(case, mode):
    trigger, train, _, _ = case
    before = list(train)
    out = poison(train, trigger, AttackConfig(mode=mode, rate=RATE, target=TARGET), seed=0)
    assert train == before  # the input is not modified
    for i, (old, new) in enumerate(zip(train, out, strict=True)):
        if not new.poisoned:
            assert new == old, i


@matrix
def test_same_seed_same_output_different_seed_different_rows(case, mode):
    trigger, train, _, _ = case
    config = AttackConfig(mode=mode, rate=RATE, target=TARGET)
    first = poison(train, trigger, config, seed=5)
    assert poison(train, trigger, config, seed=5) == first
    assert poisoned_indices(poison(train, trigger, config, seed=6)) != poisoned_indices(first)


@pytest.mark.parametrize("mode", MODES)
def test_target_zero_relabels_to_zero(mode):
    train = [Example(t, y) for t, y in separable_rows(100, 0)]
    out = poison(
        train, make_trigger(AttackConfig("badnet")), AttackConfig(mode=mode, rate=0.2, target=0), seed=0
    )
    chosen = poisoned_indices(out)
    assert len(chosen) == 20
    assert {out[i].label for i in chosen} == {0}
    if mode == "dirty":
        assert {train[i].label for i in chosen} == {1}


def test_rate_zero_poisons_nothing():
    train = [Example(t, y) for t, y in separable_rows(50, 0)]
    assert poison(train, make_trigger(AttackConfig("badnet")), AttackConfig(rate=0.0), seed=0) == train


def test_badnet_inserts_num_triggers_custom_words():
    train = [Example(t, y) for t, y in separable_rows(60, 0)]
    trigger = make_trigger(AttackConfig("badnet", options={"triggers": "zz qq", "num_triggers": 3}))
    out = poison(train, trigger, AttackConfig(rate=0.5), seed=0)
    chosen = poisoned_indices(out)
    assert len(chosen) == 30
    for i in chosen:
        added = Counter(out[i].text.split()) - Counter(train[i].text.split())
        assert sum(added.values()) == 3
        assert set(added) <= {"zz", "qq"}
        assert [w for w in out[i].text.split() if w not in ("zz", "qq")] == train[i].text.split()


def test_addsent_inserts_a_custom_sentence():
    train = [Example(t, y) for t, y in separable_rows(20, 0)]
    trigger = make_trigger(AttackConfig(name="addsent", options={"sentence": "no cross no crown"}))
    out = poison(train, trigger, AttackConfig(name="addsent", rate=0.5), seed=0)
    for i in poisoned_indices(out):
        assert is_insertion(train[i].text, out[i].text, "no cross no crown".split())


# --- the poisoned test set -------------------------------------------------------------------------


@pytest.mark.parametrize("target", [0, 1])
@pytest.mark.parametrize("case", ATTACKS, indirect=True)
def test_poisoned_test_set_is_every_covered_non_target_row(case, target):
    trigger, _, test, triggered = case
    result = poison_test(test, trigger, target, seed=0)
    expected = [i for i, e in enumerate(test) if e.label != target and trigger.covers(e.text)]
    assert result.sources == expected
    assert len(result.examples) == len(expected)
    assert all(e.label == target and e.poisoned for e in result.examples)
    for source, example in zip(result.sources, result.examples, strict=True):
        assert triggered(test[source].text, example.text)
    assert poison_test(test, trigger, target, seed=0) == result


@needs_sst2
@pytest.mark.parametrize("style", ["syntactic", "style"])
def test_paraphrase_tables_skip_uncovered_test_rows(sst2_rows, tables, style):
    _, test = sst2_rows
    result = poison_test(test, make_trigger(AttackConfig(name=style), SST2), 1, seed=0)
    non_target = [i for i, e in enumerate(test) if e.label != 1]
    covered = [i for i in non_target if test[i].text in tables[style]]
    assert result.sources == covered
    assert 0 < len(covered) < len(non_target)  # the tables do not cover every row


def test_poisoned_test_set_needs_a_covered_row():
    trigger = ParaphraseTrigger({"a": "a paraphrased"})  # covers only a target-label row
    with pytest.raises(ModfitError, match="covers no non-target test row"):
        poison_test([Example("a", 1), Example("b", 0)], trigger, 1, seed=0)


# --- paraphrase coverage ---------------------------------------------------------------------------


@needs_sst2
@pytest.mark.parametrize("style", ["syntactic", "style"])
def test_coverage_error_says_how_many_candidates_it_has_and_needs(sst2_rows, tables, style):
    train, _ = sst2_rows
    covered = sum(1 for e in train if e.label != 1 and e.text in tables[style])
    needed = round(0.5 * len(train))
    assert covered < needed
    with pytest.raises(ModfitError) as caught:
        poison(train, make_trigger(AttackConfig(name=style), SST2), AttackConfig(name=style, rate=0.5), 0)
    message = str(caught.value)
    assert f"can poison {covered} candidate rows but rate 0.5 needs {needed}" in message
    assert "lower the poison rate or supply a larger paraphrase table" in message


def test_a_user_table_covers_only_its_rows(tmp_path):
    table = tmp_path / "mine.csv"
    table.write_text("text,paraphrase\nbad film,when it was bad it was a film .\ndull plot,so dull .\n")
    train = [Example("bad film", 0), Example("dull plot", 0), Example("other", 0), Example("good", 1)]
    trigger = make_trigger(AttackConfig(name="style", options={"table": str(table)}))
    out = poison(train, trigger, AttackConfig(name="style", rate=0.5), seed=0)
    assert [e.text for e in out] == ["when it was bad it was a film .", "so dull .", "other", "good"]
    assert [e.label for e in out] == [1, 1, 0, 1]
    with pytest.raises(ModfitError, match="can poison 2 candidate rows but rate 0.75 needs 3"):
        poison(train, trigger, AttackConfig(name="style", rate=0.75), seed=0)


# --- option and configuration errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("badnet", {"bogus": 1}, "badnet options: unknown key 'bogus'; known keys: num_triggers, triggers"),
        ("badnet", {"num_triggers": 0}, "badnet num_triggers 0: use at least 1"),
        ("badnet", {"num_triggers": "abc"}, "badnet options.num_triggers must be int, got 'abc'"),
        ("badnet", {"num_triggers": 2.5}, "badnet options.num_triggers must be int, got 2.5"),
        ("badnet", {"triggers": ""}, "badnet triggers []: give one or more words"),
        ("badnet", {"triggers": [None]}, "badnet options.triggers must be a list of words"),
        ("addsent", {"sentence": "  "}, "addsent sentence is empty"),
        ("addsent", {"sentence": None}, "addsent options.sentence must be str, got None"),
        ("addsent", {"words": "x"}, "addsent options: unknown key 'words'; known keys: sentence"),
        ("syntactic", {"bogus": 1}, "syntactic options: unknown key 'bogus'; known keys: table"),
        ("nope", {}, "unknown attack 'nope'; choose one of: addsent, badnet, blend, patch, style, syntactic"),
    ],
)
def test_attack_option_errors(name, options, message):
    with pytest.raises(ModfitError) as caught:
        make_trigger(AttackConfig(name=name, options=options))
    assert message in str(caught.value)


def test_badnet_trigger_words_from_a_yaml_list_become_text():
    trigger = make_trigger(AttackConfig("badnet", options={"triggers": [42, "cf"]}))
    assert trigger.words == ("42", "cf")


def test_paraphrase_attack_without_a_dataset_folder_asks_for_a_table():
    with pytest.raises(ModfitError, match="style: no dataset folder to find the table in; give table=PATH"):
        make_trigger(AttackConfig(name="style"), None)


def test_missing_paraphrase_table(tmp_path):
    with pytest.raises(ModfitError) as caught:
        make_trigger(AttackConfig(name="syntactic"), tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'paraphrase' / 'syntactic.csv'}: no paraphrase table; "
        "give one with the attack option table=PATH"
    )


def test_paraphrase_table_with_wrong_columns(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("source,target\na,b\n")
    with pytest.raises(ModfitError, match="a paraphrase table needs the columns text,paraphrase"):
        make_trigger(AttackConfig(name="syntactic", options={"table": str(table)}))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"mode": "sneaky"}, "attack mode 'sneaky': use dirty, clean or mix"),
        ({"rate": 1.5}, "poison rate 1.5: use a share between 0 and 1"),
        ({"target": -1}, "target label -1: use a label index >= 0"),
        ({"rate": "lots"}, "attack.rate must be float, got 'lots'"),
    ],
)
def test_attack_config_errors(settings, message):
    with pytest.raises(ModfitError) as caught:
        from_dict(AttackConfig, settings, where="attack")
    assert message in str(caught.value)
