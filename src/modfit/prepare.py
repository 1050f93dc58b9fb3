"""Data preparation: load, subsample and poison the training split; build the triggered test rows."""

from __future__ import annotations

import random
from dataclasses import dataclass

from modfit.attacks import PoisonedTest, make_trigger, poison, poison_test
from modfit.config import Experiment
from modfit.data import Example, Splits, dataset_dir, load_dataset, read_examples, subsample
from modfit.errors import ModfitError

ATTACK_KINDS = {"text": ("badnet", "addsent", "syntactic", "style"), "image": ("patch", "blend")}


@dataclass(frozen=True)
class PoisonedData:
    splits: Splits
    train: list[Example]
    test_poison: PoisonedTest | None
    target: int


def prepare_data(experiment: Experiment) -> PoisonedData:
    """Load, subsample and poison the training split; build the triggered test rows."""
    splits = load_dataset(experiment.dataset)
    attack = experiment.attack
    if not 0 <= attack.target < splits.num_labels:
        raise ModfitError(
            f"target label {attack.target} is not a label of {splits.name} (0..{splits.num_labels - 1})"
        )
    if experiment.train_size is not None and experiment.train_size > len(splits.train):
        raise ModfitError(
            f"train_size {experiment.train_size}: {splits.name}'s training split has {len(splits.train):,} "
            f"rows; ask for at most {len(splits.train)}, or leave --train-size out to train on all of them"
        )
    train = subsample(splits.train, experiment.train_size, experiment.seed)
    if attack.name == "none":
        if experiment.poison_test is None:
            return PoisonedData(splits, train, None, attack.target)
        rows = read_examples(experiment.poison_test, num_labels=splits.num_labels)
        targets = {e.label for e in rows}
        if len(targets) != 1:
            raise ModfitError(
                f"{experiment.poison_test}: a poison test file needs one target label, found {sorted(targets)}"
            )
        return PoisonedData(splits, train, PoisonedTest(rows, None), targets.pop())
    trigger = make_trigger(attack, dataset_dir(experiment.dataset))
    if trigger.kind != splits.kind:
        raise ModfitError(
            f"attack {attack.name!r} poisons {trigger.kind}s but {splits.name} holds {splits.kind}s; "
            f"use one of {', '.join(ATTACK_KINDS[splits.kind])}"
        )
    poisoned_train = poison(train, trigger, attack, experiment.seed)
    return PoisonedData(
        splits,
        poisoned_train,
        poison_test(splits.test, trigger, attack.target, experiment.seed),
        attack.target,
    )


def eval_subset(
    data: PoisonedData, size: int | None, seed: int
) -> tuple[list[Example], list[Example], PoisonedTest | None]:
    """A seeded subset of dev and test; the triggered rows follow the chosen test rows."""
    dev = subsample(data.splits.dev, size, seed)
    test_poison = data.test_poison
    if size is None or size >= len(data.splits.test):
        return dev, data.splits.test, test_poison
    keep = sorted(random.Random(seed).sample(range(len(data.splits.test)), size))
    test = [data.splits.test[i] for i in keep]
    if test_poison is None or test_poison.sources is None:
        return dev, test, test_poison
    position = {source: new for new, source in enumerate(keep)}
    pairs = [
        (position[s], e)
        for s, e in zip(test_poison.sources, test_poison.examples, strict=True)
        if s in position
    ]
    return dev, test, PoisonedTest([e for _, e in pairs], [s for s, _ in pairs])
