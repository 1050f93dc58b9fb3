"""The commands that run one experiment: `poison`, `train`, `scan` and `demo`."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from modfit.cli.settings import settings_from_args
from modfit.errors import ModfitError, NoTaskWarning

# Defences that judge every training row: their run writes OUT/rows.csv, and can write corrected.csv.
ROW_JUDGING_DEFENCES = ("safe",)


def _check_row_flags(args: argparse.Namespace, experiment) -> None:
    from modfit.defences import base_defence

    if args.write_corrected and base_defence(experiment.defence) not in ROW_JUDGING_DEFENCES:
        raise ModfitError(
            f"--write-corrected: defence {experiment.defence!r} judges no training row; use it with "
            f"--defence {' or '.join(ROW_JUDGING_DEFENCES)}"
        )


def _text_only(dataset: str, what: str, why: str) -> None:
    from modfit.vision.data import is_image_dataset

    if is_image_dataset(dataset):
        raise ModfitError(f"{what} takes text datasets only ({why}); {dataset} is an image dataset")


def command_poison(args: argparse.Namespace) -> None:
    from modfit.config import to_dict
    from modfit.experiment import prepare_data, resolve
    from modfit.output import check_folder, write_examples, write_json

    check_folder(args.out, "--out")
    experiment = resolve(settings_from_args(args))
    _text_only(experiment.dataset, "modfit poison", "it writes CSV files")
    if experiment.attack.name == "none":
        raise ModfitError("modfit poison needs an attack: --attack badnet|addsent|syntactic|style")
    data = prepare_data(experiment)
    out = Path(args.out)
    write_examples(out / "dev.csv", data.splits.dev)
    write_examples(out / "test.csv", data.splits.test)
    write_examples(out / "test_poison.csv", data.test_poison.examples)
    write_examples(out / "train.csv", data.train, with_poisoned=True)
    summary = {"dataset": experiment.dataset, "train_size": experiment.train_size, "seed": experiment.seed,
               "attack": to_dict(experiment.attack), "poisoned_rows": sum(e.poisoned for e in data.train)}  # fmt: skip
    write_json(out / "poison.json", summary)
    print(f"poisoned {summary['poisoned_rows']} of {len(data.train)} training rows → {out}")


def describe_training_rows(experiment, train: list) -> str:
    """What the run trains on, said before it starts: the rows as given, or how many were poisoned."""
    if experiment.attack.name == "none":
        return f"no attack: training on the {len(train):,} rows as given"
    a = experiment.attack
    return (
        f"poisoned {sum(e.poisoned for e in train):,} of {len(train):,} training rows: "
        f"{a.name}, {a.mode}, target {a.target}"
    )


def describe_scores(m: dict[str, Any]) -> str:
    """CACC, and ASR beside its floor where an attack (or `--poison-test`) gives triggered test rows:
    without them there is no ASR to print, and a NaN would read as a measurement."""
    if m["asr"] is None or math.isnan(m["asr"]):
        return f"CACC {m['cacc']:.4f}  (no attack: no ASR; --poison-test FILE measures one)"
    return f"CACC {m['cacc']:.4f}  ASR {m['asr']:.4f}  (floor {m['asr_floor']:.4f})"


def command_train(args: argparse.Namespace) -> None:
    from modfit.experiment import NO_TASK_MESSAGE, prepare_data, resolve, run
    from modfit.output import check_run_folder, claim_run_folder, write_run

    check_run_folder(args.out, args.overwrite)
    experiment = resolve(settings_from_args(args))
    if args.save_model:
        _text_only(experiment.dataset, "--save-model", "image runs write their metrics and history")
    _check_row_flags(args, experiment)
    data = prepare_data(experiment)
    claim_run_folder(args.out, args.overwrite)
    print(describe_training_rows(experiment, data.train))
    with warnings.catch_warnings():  # said below, in the summary's words
        warnings.simplefilter("ignore", NoTaskWarning)
        result = run(experiment, progress=not args.quiet, data=data)
    write_run(result, args.out, save_model=args.save_model, write_corrected=args.write_corrected)
    m = result.metrics()
    subset = f" (evaluated on a {m['eval_subset']}-row subset)" if m["eval_subset"] else ""
    flagged = f"  flagged {m['flagged_rows']:,} rows" if "flagged_rows" in m else ""
    if result.defence and result.defence.rows:
        flagged += f" (rows.csv{', corrected.csv' if args.write_corrected else ''})"
    print(
        f"{experiment.defence}: {describe_scores(m)}  dev {m['dev_acc']:.4f}{flagged}  "
        f"trainable {m['trainable_params']:,}  {m['compute_precision']}  {m['seconds']:.0f}s{subset} "
        f"→ {args.out}"
    )
    if m["no_task"]:
        print(f"warning: {NO_TASK_MESSAGE.format(m=m)}", file=sys.stderr)


def command_scan(args: argparse.Namespace) -> None:
    from modfit.config import from_dict
    from modfit.experiment import prepare_data, resolve, train_once
    from modfit.output import (
        check_run_folder,
        claim_run_folder,
        csv_text,
        write_atomic,
        write_json,
        write_run,
    )
    from modfit.scan import detection, scan, without_flagged
    from modfit.suspicion import Cut

    check_run_folder(args.out, args.overwrite)
    experiment = resolve(settings_from_args(args))
    _text_only(experiment.dataset, "modfit scan", "its suspicion list names training texts")
    cut = from_dict(Cut, {"top": args.drop_top, "fraction": args.drop_fraction}, where="scan")
    data = prepare_data(experiment)
    if cut.top is not None and cut.top >= len(data.train):
        raise ModfitError(
            f"--drop-top {cut.top}: the training set has {len(data.train)} rows; drop fewer than that"
        )
    claim_run_folder(args.out, args.overwrite)
    print(describe_training_rows(experiment, data.train))
    found = scan(experiment, cut, data, progress=not args.quiet)
    out = Path(args.out)
    rows = ({"row": data.train[i].row, "text": data.train[i].text, "label": data.train[i].label,
             "score": round(found.scores[i], 6), "flagged": int(found.flagged[i])} for i in found.order)  # fmt: skip
    write_atomic(out / "suspicion.csv", csv_text(rows, ["row", "text", "label", "score", "flagged"]))
    write_run(found.run, out / "run")  # the scanning run's history, to see the stage the scores cover
    summary = found.summary()
    if experiment.attack.name != "none":  # hidden marks exist: read them only now, after the ranking
        summary |= detection(found, [e.poisoned for e in data.train])
        write_json(out / "detection.json", summary)
    print(
        f"scan: {summary['rows']} rows ranked, {summary['flagged']} flagged; transition "
        f"{summary['transition_reason']} at epoch {summary['transition_epoch']}"
        + (f"; AUROC {summary['auroc']:.3f}" if "auroc" in summary else "")
        + f" → {out / 'suspicion.csv'}"
    )
    if cut.top is None and cut.fraction is None:
        return
    result = train_once(experiment, not args.quiet, data=without_flagged(data, found.flagged))
    write_run(result, out / "retrain")
    m = result.metrics()
    print(f"retrained without {summary['flagged']} rows: {describe_scores(m)} → {out / 'retrain'}")


def command_demo(args: argparse.Namespace) -> None:
    from modfit.demo import run_demo
    from modfit.output import check_folder

    check_folder(args.out, "--out")
    print(run_demo(args.out, train_size=args.train_size, progress=not args.quiet))
