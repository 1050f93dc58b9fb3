"""Safe (beyond the paper, issue 17): correct the training labels with a scanner that cannot learn a trigger.

A scanner — the victim (text encoder or image backbone) fully fine-tuned on the clean dev split only —
never sees a training row, so it cannot learn a trigger. In dirty-label poisoning a poisoned row's label
contradicts its text or image; the scanner's out-of-sample class probabilities on every training row go
to cleanlab's confident learning (`find_label_issues`, per-class thresholds), which flags the rows whose
label the scanner confidently disputes. `relabel` (what `action=auto` does with trusted rows) gives
each flagged row the scanner's label: a caught poisoned row keeps its trigger but now carries its true
label, so the trigger co-occurs with the non-target label and the poison left behind is outvoted, while
no clean row is lost. `drop` removes the flagged rows instead. Then the rows the scanner believes but
that carry the surface form of the rows it caught — a word or word pair of a label far more often
flagged than that label's other rows — are dropped (`feature_z`, `modfit.baselines.trigger_features`;
text only). The final model trains on the result with the user's settings (the baseline's epochs: a
moderate dose cost clean accuracy on SST-2, benchmarks/safe_heavy/, fourth rule).

The trusted rows are the whole clean dev split by default; `trusted=N` takes a seeded,
label-stratified sample of N of them (a practitioner can check a hundred rows by hand, rarely a whole
split) and `trusted_file=PATH` the user's own checked rows (text; an image dataset's checked images are
its dev/ split). Only they train the scanner. Scanners are
one file each (`modfit.baselines.scanners`): `finetune` (above), `probe` (a logistic regression on the
frozen encoder's features) and `self` (cross-fitted on the training rows themselves, joined by the
trusted rows where there are some, label-pure words cut from its texts; its flagged rows are dropped:
benchmarks/safe_budget/, rules 4 and 5); `scanner=auto` takes `self` below 250 trusted rows, `finetune`
from 250 and for the whole dev split.

What it cannot catch: clean-label poisoning (labels agree with the text, nothing to dispute), and any
poisoned row the scanner itself gets wrong; the scanner is only as good as its trusted rows allow.
Settings and measurements: benchmarks/safe_selection/results.md.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from modfit.baselines.base import Context, procedure
from modfit.baselines.scanners import SCANNERS, Scan, ScannerSettings, auto_scanner
from modfit.baselines.scanners.finetune import class_probabilities, fine_tune
from modfit.baselines.trigger_features import SELECTIONS, drop_trigger_rows
from modfit.config import TrainConfig
from modfit.data import Example, read_examples, stratified_sample
from modfit.errors import ModfitError, require
from modfit.metrics import detection_scores
from modfit.result import Outcome, RowDecision, RunResult

ACTIONS = ("auto", "relabel", "drop")
TOP_FEATURES = 20  # the spurious features `details["trigger_features"]` names, highest z first
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")


@dataclass(frozen=True)
class SafeOptions:
    action: str = "auto"  # relabel with a trusted scanner; drop with the self-scanner (safe_budget, rule 4)
    filter_by: str = "prune_by_noise_rate"  # cleanlab's rule (its default)
    scanner_epochs: float = 6.0  # the scanner: full fine-tuning on dev
    scanner_lr: float = 1e-4  # by 2-fold CV accuracy on clean dev (scanner_schedule.md)
    scanner_batch_size: int = 32
    batch_size: int = 128  # scoring
    trusted: int | None = None  # rows of the clean dev split that train the scanner (None: all)
    trusted_file: str | None = None  # or the user's own checked rows (text,label)
    # Heavy poison (issue 27, item 6; benchmarks/safe_heavy/): off at these defaults.
    unsure_below: float = 0.0  # drop an unflagged row whose p(given label) is below this
    rounds: int = 1  # 2: a second verdict by scanners refitted on trusted + least suspicious rows
    refit_share: float = 0.5  # the share of the corrected set, least suspicious first, added in round 2
    refit_epochs: float = 1.0  # round 2's scanners: short, so a trigger among their rows stays unlearned
    # drop unflagged rows carrying a word (pair) this enriched among the flagged (0: off; images: off). 6 was
    # chosen on clean data and made the default on one frozen cell (benchmarks/safe_heavy/, second rule).
    feature_z: float = 6.0
    feature_select: str = "all"  # or "greedy": the features one at a time (safe_heavy, third rule)
    # The scanner (issue 27): which one (auto: by the number of trusted rows, scanners.base.AUTO), and
    # the no-trust self-scanner's dose: folds, epochs and lr of its cross-fitted fold models.
    scanner: str = "auto"
    # chosen by rule 4 of benchmarks/safe_budget/ on its tuning cell (with action auto = drop)
    self_folds: int = 2
    self_epochs: float = 2.0
    self_lr: float = 5e-5
    # cut label-pure words (this purity; 0: off) from what the self-scanner sees (scanners.self_fit)
    self_mask: float = 0.95

    def validate(self) -> None:
        require(
            self.trusted is None or self.trusted >= 0,
            f"safe trusted {self.trusted}: give a number of trusted rows (0: none, the self-scanner), or "
            "leave trusted unset to train the scanner on the whole clean dev split",
        )
        require(
            self.trusted is None or self.trusted_file is None,
            "safe trusted and trusted_file: give one (a sample size of the dev split, or a file of your rows)",
        )
        self.validate_scanner()
        require(
            self.action in ACTIONS,
            f"safe action {self.action!r}: use {', '.join(ACTIONS[:-1])} or {ACTIONS[-1]}",
        )
        require(
            self.filter_by in FILTERS, f"safe filter_by {self.filter_by!r}: use one of {', '.join(FILTERS)}"
        )
        require(self.scanner_epochs > 0, f"safe scanner_epochs {self.scanner_epochs}: use a positive number")
        require(
            self.scanner_lr > 0, f"safe scanner_lr {self.scanner_lr}: use a positive learning rate, e.g. 1e-4"
        )
        require(
            self.scanner_batch_size >= 1, f"safe scanner_batch_size {self.scanner_batch_size}: use at least 1"
        )
        require(self.batch_size >= 1, f"safe batch_size {self.batch_size}: use at least 1")
        require(
            0.0 <= self.unsure_below < 1.0,
            f"safe unsure_below {self.unsure_below}: use a probability in [0, 1), e.g. 0.5 (0: drop none)",
        )
        require(self.rounds in (1, 2), f"safe rounds {self.rounds}: use 1 or 2")
        require(
            0.0 < self.refit_share <= 1.0,
            f"safe refit_share {self.refit_share}: use a share in (0, 1], e.g. 0.5",
        )
        require(self.refit_epochs > 0, f"safe refit_epochs {self.refit_epochs}: use a positive number")
        require(
            self.feature_z >= 0,
            f"safe feature_z {self.feature_z}: use a z threshold of at least 0, e.g. 8 (0: off)",
        )
        require(
            self.feature_select in SELECTIONS,
            f"safe feature_select {self.feature_select!r}: use {' or '.join(SELECTIONS)}",
        )

    def validate_scanner(self) -> None:
        names = ["auto", *SCANNERS.names()]
        require(self.scanner in names, f"safe scanner {self.scanner!r}: use one of {', '.join(names)}")
        require(self.self_folds >= 2, f"safe self_folds {self.self_folds}: use at least 2 (cross-fitting)")
        require(self.self_epochs > 0, f"safe self_epochs {self.self_epochs}: use a positive number")
        require(self.self_lr > 0, f"safe self_lr {self.self_lr}: use a positive learning rate, e.g. 5e-5")
        require(
            self.self_mask == 0 or 0.5 < self.self_mask <= 1,
            f"safe self_mask {self.self_mask}: use a label purity in (0.5, 1], e.g. 0.95 (0: off)",
        )
        if self.scanner == "auto":
            return
        require(
            not SCANNERS.get(self.scanner).needs_trusted or self.trusted != 0,
            f"safe trusted 0 with scanner {self.scanner}: it learns from trusted rows; use scanner=self "
            "(or auto) for no trusted rows, or trust some rows",
        )

    def scanner_settings(self) -> ScannerSettings:
        return ScannerSettings(
            self.scanner_epochs, self.scanner_lr, self.scanner_batch_size, self.batch_size,
            self.self_epochs, self.self_lr, self.self_folds, self.self_mask,
        )  # fmt: skip


@dataclass(frozen=True)
class LabelVerdict:
    """The scanner's judgement of the training rows: suspicion (1 − p(given label)), the flagged rows,
    and the label the scanner would give each row."""

    scores: list[float]
    flagged: list[bool]
    suggested: list[int]


def trusted_rows(context: Context, options: SafeOptions) -> list[Example]:
    """The rows the scanner may learn from beside the training rows: never a training row
    (docs/defences/safe.md, "safe"); none for `trusted=0`."""
    num_labels = context.data.splits.num_labels
    if options.trusted == 0:
        return []
    if options.trusted_file is not None:
        require(
            context.data.splits.kind == "text",
            "safe trusted_file reads text rows; for images put your checked images in the dataset's dev/ "
            "split, or sample it with trusted=N",
        )
        return read_examples(options.trusted_file, num_labels=num_labels)
    dev = context.data.splits.dev
    return (
        dev if options.trusted is None else stratified_sample(dev, options.trusted, context.experiment.seed)
    )


def require_labels(trusted: list[Example], scanner: str) -> None:
    """A scanner that learns from the trusted rows alone needs rows of at least two labels."""
    labels = {e.label for e in trusted}
    require(
        not SCANNERS.get(scanner).needs_trusted or len(labels) >= 2,
        f"safe: the {len(trusted)} trusted rows carry {len(labels)} label; the scanner needs rows of at "
        "least two labels: trust more rows",
    )


def scanner_name(options: SafeOptions, trusted: list[Example]) -> str:
    """The scanner that runs: `auto` picks by the budget (None: the whole dev split, today's scanner)."""
    if options.scanner != "auto":
        return options.scanner
    whole_split = options.trusted is None and options.trusted_file is None
    return auto_scanner(None if whole_split else len(trusted))


def scan(context: Context, options: SafeOptions, trusted: list[Example]) -> Scan:
    """The chosen scanner's out-of-sample probabilities on every training row."""
    build = SCANNERS.get(scanner_name(options, trusted)).build
    return build(context, options.scanner_settings(), trusted)


def label_verdict(probs: torch.Tensor, labels: list[int], filter_by: str) -> LabelVerdict:
    """Confident learning by cleanlab on out-of-sample probabilities: texts' labels only, no marks."""
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        raise ModfitError("defence safe needs cleanlab: pip install cleanlab") from None

    if len(set(labels)) < 2:
        raise ModfitError("defence safe needs training rows of at least two labels to dispute a label")
    given = torch.tensor(labels)
    numpy_probs = probs.double().numpy()
    flagged = find_label_issues(given.numpy(), numpy_probs, filter_by=filter_by, n_jobs=1)
    scores = 1.0 - probs.gather(1, given.unsqueeze(1)).squeeze(1)
    return LabelVerdict(scores.tolist(), [bool(f) for f in flagged], probs.argmax(-1).tolist())


def row_decisions(rows: list[Example], verdict: LabelVerdict, action: str) -> tuple[RowDecision, ...]:
    """Every training row with the scanner's label, its suspicion and what is done to it: a flagged row
    is dropped (`drop`) or takes the scanner's label (`relabel`; kept where that is its own)."""

    def done(example: Example, flagged: bool, new: int) -> str:
        if not flagged:
            return "kept"
        if action == "drop":
            return "dropped"
        return "relabelled" if new != example.label else "kept"

    return tuple(
        RowDecision(e.row, e.text, e.label, new, score, flagged, done(e, flagged, new))
        for e, score, flagged, new in zip(
            rows, verdict.scores, verdict.flagged, verdict.suggested, strict=True
        )
    )


def corrected_rows(rows: list[Example], decisions: Sequence[RowDecision]) -> list[Example]:
    """The training set as the decisions leave it: relabelled rows take the scanner's label, dropped
    rows go. Marks travel along."""
    return [dataclasses.replace(e, label=d.corrected_label)
            for e, d in zip(rows, decisions, strict=True) if d.action != "dropped"]  # fmt: skip


def drop_unsure(decisions: Sequence[RowDecision], below: float) -> tuple[RowDecision, ...]:
    """`unsure_below`: a row cleanlab left alone but whose label the scanner gives p < `below` (1 −
    suspicion) is dropped, and marked flagged: the scanner doubts it without disputing it outright,
    where the poisoned rows it misses gather. Relabelling it would guess; dropping costs one row."""
    return tuple(
        dataclasses.replace(d, flagged=True, action="dropped")
        if not d.flagged and 1.0 - d.suspicion < below
        else d
        for d in decisions
    )


def refit_folds(decisions: Sequence[RowDecision], share: float, seed: int) -> tuple[list[int], list[int]]:
    """Round 2's training rows: the unflagged rows the first verdict trusts most (lowest suspicion),
    `share` of the corrected set, split at random (seeded) into two folds for cross-fitting."""
    kept = [i for i, d in enumerate(decisions) if d.action != "dropped"]
    trusted = sorted((i for i in kept if not decisions[i].flagged), key=lambda i: decisions[i].suspicion)
    chosen = trusted[: round(share * len(kept))]
    random.Random(seed).shuffle(chosen)
    return sorted(chosen[::2]), sorted(chosen[1::2])


def second_round(
    context: Context,
    options: SafeOptions,
    rows: list[Example],
    trusted: list[Example],
    decisions: Sequence[RowDecision],
) -> tuple[RowDecision, ...]:
    """`rounds=2`: a second confident-learning verdict on the corrected set. Two scanners are refitted
    (from the pretrained encoder, `refit_epochs`) on the trusted rows plus one fold each of the rows
    the first verdict trusts most (`refit_folds`); a row of a fold is scored by the other fold's
    scanner, every other row by the mean of both, so no scanner scores a row it trained on. A row this
    verdict flags is dropped (`drop`) or takes its label (`relabel`)."""
    corrected = [
        dataclasses.replace(e, label=d.corrected_label) for e, d in zip(rows, decisions, strict=True)
    ]
    folds = refit_folds(decisions, options.refit_share, context.experiment.seed)
    config = TrainConfig(
        epochs=options.refit_epochs, lr=options.scanner_lr, batch_size=options.scanner_batch_size
    )
    scored = []
    for number, fold in enumerate(folds, start=1):
        label = f"safe round 2, scanner {number} of 2"
        scanner = fine_tune(context, trusted + [corrected[i] for i in fold], config, label)
        scored.append(class_probabilities(context, scanner, corrected, options.batch_size))
        del scanner
    probs = (scored[0] + scored[1]) / 2
    for own, other in ((folds[0], scored[1]), (folds[1], scored[0])):
        probs[own] = other[own]
    kept = [i for i, d in enumerate(decisions) if d.action != "dropped"]
    verdict = label_verdict(probs[kept], [corrected[i].label for i in kept], options.filter_by)
    updated = list(decisions)
    for i, flagged, new in zip(kept, verdict.flagged, verdict.suggested, strict=True):
        if flagged:
            action = (
                "dropped" if options.action == "drop" else "relabelled" if new != rows[i].label else "kept"
            )
            updated[i] = dataclasses.replace(decisions[i], scanner_label=new, flagged=True, action=action)
    return tuple(updated)


def resolved_action(action: str, scanner: str) -> str:
    """`auto`: a scanner fitted on trusted rows relabels (its guess is usually right), the self-scanner
    drops (its fold models, at 0.79 clean accuracy, would flip honest rows: safe_budget, rule 4)."""
    if action != "auto":
        return action
    return "relabel" if SCANNERS.get(scanner).needs_trusted else "drop"


@procedure("safe", SafeOptions, image={"defence_options": {"feature_z": 0.0, "self_mask": 0.0}})
def safe(context: Context, options: SafeOptions) -> RunResult:
    rows = context.data.train
    for name, value in (("feature_z", options.feature_z), ("self_mask", options.self_mask)):
        require(
            value == 0 or context.data.splits.kind == "text",
            f"safe {name} reads the words of text rows, and an image's row is its path: set {name}=0 on images",
        )
    trusted = trusted_rows(context, options)
    chosen = scanner_name(options, trusted)
    require_labels(trusted, chosen)
    options = dataclasses.replace(options, action=resolved_action(options.action, chosen))
    scanned = scan(context, options, trusted)
    verdict = label_verdict(scanned.probabilities, [e.label for e in rows], options.filter_by)
    decisions = row_decisions(rows, verdict, options.action)
    heavy: dict[str, int] = {}
    if options.unsure_below > 0:
        first = decisions
        decisions = drop_unsure(decisions, options.unsure_below)
        heavy["unsure_dropped"] = sum(a != b for a, b in zip(first, decisions, strict=True))
    if options.rounds == 2:
        first = decisions
        decisions = second_round(context, options, rows, trusted, decisions)
        heavy["second_round_changed"] = sum(a != b for a, b in zip(first, decisions, strict=True))
    named: dict[str, list] = {}
    if options.feature_z > 0:  # learns from the rows flagged so far (unsure and round-2 flags included)
        lever = drop_trigger_rows(decisions, options.feature_z, select=options.feature_select)
        decisions = lever.decisions
        heavy["feature_dropped"] = len(lever.dropped)
        named["trigger_features"] = [dataclasses.asdict(f) for f in lever.features[:TOP_FEATURES]]
    kept = corrected_rows(rows, decisions)
    final = context.train(kept)
    flags = [d.flagged for d in decisions]
    flagged = tuple(i for i, f in enumerate(flags) if f)
    removed = tuple(i for i, d in enumerate(decisions) if d.action == "dropped")
    truth = [e.poisoned for e in rows]  # read only now, after the verdict: the defence never saw them
    metrics = {
        "flagged_rows": len(flagged),
        "flagged_poisoned": sum(truth[i] for i in flagged),
        "removed_rows": len(removed),
        "relabelled_rows": sum(d.action == "relabelled" for d in decisions),
        **detection_scores(flags, verdict.scores, truth),
        "scanner_cacc": scanned.test_accuracy,
        "trusted_rows": len(trusted),
        **heavy,
    }
    details = {
        "flagged": flagged,
        "action": options.action,
        "scanner": chosen,
        **named,
    }
    return dataclasses.replace(final, defence=Outcome(metrics, removed, details, decisions))
