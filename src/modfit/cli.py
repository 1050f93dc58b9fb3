"""The command line: flags and config files become one `Experiment` here, and only here."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from modfit.config import POISON_MODES
from modfit.errors import ModfitError, NoTaskWarning

# flag destination → path in the experiment settings
SETTING_PATHS: dict[str, tuple[str, ...]] = {
    "dataset": ("dataset",),
    "attack": ("attack", "name"),
    "mode": ("attack", "mode"),
    "poison_rate": ("attack", "rate"),
    "target": ("attack", "target"),
    "seed": ("seed",),
    "train_size": ("train_size",),
    "defence": ("defence",),
    "epochs": ("train", "epochs"),
    "lr": ("train", "lr"),
    "batch_size": ("train", "batch_size"),
    "warmup_ratio": ("train", "warmup_ratio"),
    "head_lr_scale": ("train", "head_lr_scale"),
    "eval_every": ("train", "eval_every"),
    "eval_size": ("train", "eval_size"),
    "eval_share": ("train", "eval_share"),
    "precision": ("train", "precision"),
    "group_by_length": ("train", "group_by_length"),
    "select": ("train", "select"),
    "model": ("model", "name"),
    "pooling": ("model", "pooling"),
    "head": ("model", "head"),
    "max_length": ("model", "max_length"),
    "image_size": ("model", "image_size"),
    "tuning": ("tuning", "method"),
    "poison_test": ("poison_test",),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _key_values(pairs: list[str] | None, flag: str) -> dict[str, str]:
    """`KEY=VALUE` pairs as text; `_typed_options` reads each value as its option's declared type."""
    options: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ModfitError(f"{flag} {pair!r}: write KEY=VALUE")
        options[key.strip()] = value
    return options


def _options_type(kind: str, name: str) -> type | None:
    """The options record of attack / defence / tuning method `name`, where one is registered."""
    if kind == "attack":
        from modfit.attacks import ATTACKS

        return ATTACKS.get(name).options if name in ATTACKS else None
    if kind == "defence":
        from modfit.defences import DEFENCES, base_defence

        base = base_defence(name)
        return DEFENCES.get(base).options if base in DEFENCES else None
    return None


def _typed_options(text: dict[str, str], kind: str, name: str, flag: str) -> dict[str, Any]:
    """Command-line option text read as the option's type (`sentence=yes` stays "yes", `num_triggers=3`
    is 3); without a registered type (tuning methods), as YAML, each error one line."""
    import yaml

    from modfit.config import options_from_text

    options_type = _options_type(kind, name)
    if options_type is not None:
        return options_from_text(options_type, text, f"{flag} ({name})")
    typed: dict[str, Any] = {}
    for key, value in text.items():
        try:
            typed[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ModfitError(
                f"{flag} {key}={value!r}: cannot read it ({str(err).splitlines()[0]})"
            ) from None
    return typed


def _read_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    from modfit.config import read_yaml

    loaded = read_yaml(path, f"--config {path}")
    if not isinstance(loaded, dict):
        raise ModfitError(f"--config {path}: expected a mapping of settings at the top level")
    return loaded


def _setting(settings: dict[str, Any], section: str, key: str) -> Any:
    node = settings.get(section)
    return node.get(key) if isinstance(node, dict) else None


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Config file settings, overridden by every flag the user gave."""
    from modfit.config import merge

    flags: dict[str, Any] = {}
    for dest, path in SETTING_PATHS.items():
        value = getattr(args, dest, None)
        if value is not None:
            node = flags
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
    settings = merge(_read_config(getattr(args, "config", None)), flags)
    if getattr(args, "attack_option", None):
        text = _key_values(args.attack_option, "--attack-option")
        name = str(_setting(settings, "attack", "name") or "none")
        settings = merge(
            settings, {"attack": {"options": _typed_options(text, "attack", name, "--attack-option")}}
        )
    if getattr(args, "tuning_option", None):
        text = _key_values(args.tuning_option, "--tuning-option")
        name = str(_setting(settings, "tuning", "method") or "full")
        settings = merge(
            settings, {"tuning": {"options": _typed_options(text, "tuning", name, "--tuning-option")}}
        )
    if getattr(args, "defence_option", None):
        text = _key_values(args.defence_option, "--defence-option")
        name = str(settings.get("defence", "none"))
        settings = merge(
            settings, {"defence_options": _typed_options(text, "defence", name, "--defence-option")}
        )
    return settings


def _add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        help="sst2, hsol, agnews, a directory of train/dev/test files, hf:<id>; images: cifar10, or an "
        "ImageFolder folder or tar (split/class/file)",
    )
    parser.add_argument(
        "--attack",
        help="badnet, addsent, syntactic, style, or none (default: none, the rows as given); images: patch, blend",
    )
    parser.add_argument("--mode", choices=POISON_MODES, help="poisoning mode (default dirty)")
    parser.add_argument("--poison-rate", type=float, help="share of the training set poisoned (default 0.1)")
    parser.add_argument("--target", type=int, help="target label (default 1)")
    parser.add_argument("--attack-option", action="append", metavar="KEY=VALUE", help="e.g. num_triggers=3")
    parser.add_argument(
        "--train-size", type=int, help="seeded subset of the training split, taken before poisoning"
    )
    parser.add_argument("--seed", type=int, help="seed for subsets, poisoning and training (default 0)")
    parser.add_argument("--config", help="YAML or JSON file of settings; flags override it")


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--defence",
        help="none, fewer-epochs, lower-lr, ... (a preset; flags override it), auto or NAME+auto (stop at "
        "the end of moderate-fitting), safe or purify (filter the training rows first), or a baseline: "
        "bki, cube, onion, rap, strip",
    )
    parser.add_argument(
        "--defence-option", action="append", metavar="KEY=VALUE", help="a baseline's option, e.g. frr=0.05"
    )
    parser.add_argument("--epochs", type=float, help="training epochs, fractions allowed")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--warmup-ratio", type=float)
    parser.add_argument(
        "--head-lr-scale", type=float, help="the classification head's lr as a multiple of --lr"
    )
    parser.add_argument("--max-length", type=int, help="tokens per text (default 64)")
    parser.add_argument(
        "--image-size", type=int, help="images: square side fed to the model (default: as stored)"
    )
    parser.add_argument(
        "--eval-every", type=int, help="evaluate every N steps (default: about 8 points, within the budget)"
    )
    parser.add_argument(
        "--eval-size", type=int, help="seeded subset of dev and test rows for every evaluation point"
    )
    parser.add_argument(
        "--eval-share",
        type=float,
        help="intermediate evaluation may cost this share of the training compute (default 0.3; 0: full sets)",
    )
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="auto (default): bf16 autocast where the CPU or GPU has it, else fp32; fp16 on CUDA only",
    )
    parser.add_argument(
        "--no-group-by-length",
        dest="group_by_length",
        action="store_const",
        const=False,
        help="batches in plain random order instead of grouped by text length",
    )
    parser.add_argument(
        "--select",
        choices=["last", "best-dev", "auto"],
        help="final model: last step, best clean dev, or auto (the end of moderate-fitting)",
    )
    parser.add_argument(
        "--model",
        help="Hugging Face encoder id or local directory (default: packaged MiniLM); images: "
        "efficientnet-lite0 (default), timm:<name>, torchvision:<name>",
    )
    parser.add_argument("--pooling", choices=["cls", "mean"], help="classification head pooling")
    parser.add_argument(
        "--head",
        choices=["linear", "roberta"],
        help="classification head: linear (default) or roberta, the paper's (first token, dense, tanh, out_proj)",
    )
    parser.add_argument("--tuning", help="which parameters adapt: full, head, ...")
    parser.add_argument("--tuning-option", action="append", metavar="KEY=VALUE")
    parser.add_argument("--poison-test", help="with --attack none: file of triggered test rows for ASR")
    parser.add_argument(
        "--save-model", action="store_true", help="also write the model to OUT/model (a transformers folder)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace what a non-empty --out holds (default: refuse it)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


# Defences that judge every training row: their run writes OUT/rows.csv, and can write corrected.csv.
ROW_JUDGING_DEFENCES = ("safe",)


def _add_row_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write-corrected",
        action="store_true",
        help="with --defence safe: also write OUT/corrected.csv, the training set as the defence left it "
        "(text,label: relabelled rows relabelled, dropped rows gone), to train on elsewhere",
    )


def _check_row_flags(args: argparse.Namespace, experiment) -> None:
    from modfit.defences import base_defence

    if args.write_corrected and base_defence(experiment.defence) not in ROW_JUDGING_DEFENCES:
        raise ModfitError(
            f"--write-corrected: defence {experiment.defence!r} judges no training row; use it with "
            f"--defence {' or '.join(ROW_JUDGING_DEFENCES)}"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="modfit", description="Backdoor attacks and moderate-fitting defences for fine-tuning."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    poison = commands.add_parser("poison", help="write a poisoned copy of a dataset")
    _add_data_flags(poison)
    poison.add_argument("--out", required=True, help="folder for train/dev/test/test_poison.csv")

    train = commands.add_parser("train", help="fine-tune on (poisoned) data and track CACC and ASR")
    _add_data_flags(train)
    _add_train_flags(train)
    train.add_argument("--out", required=True, help="folder for config, history, metrics and plot")
    _add_row_flags(train)

    scan = commands.add_parser(
        "scan", help="train once recording each row's loss; rank the training rows by suspicion"
    )
    _add_data_flags(scan)
    _add_train_flags(scan)
    scan.add_argument(
        "--out", required=True, help="folder for suspicion.csv, run/ (and detection.json, retrain/)"
    )
    cut = scan.add_mutually_exclusive_group()
    cut.add_argument("--drop-top", type=int, help="retrain without the K most suspicious rows")
    cut.add_argument("--drop-fraction", type=float, help="retrain without this share of the rows")

    demo = commands.add_parser("demo", help="the main job: SST-2 BadNet, undefended vs the defences")
    demo.add_argument(
        "--out", default="runs/demo", help="folder for the runs and the plot (default runs/demo)"
    )
    demo.add_argument(
        "--train-size", type=int, default=None, help="training rows (default: the demo's subset)"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_study_commands(commands)
    _add_model_commands(commands)
    return parser


def _add_study_commands(commands) -> None:
    grid = commands.add_parser("grid", help="run every cell of a study spec into a resumable SQLite store")
    grid.add_argument("spec", help="study spec (YAML): datasets, attacks, defences, rates, modes, seeds")
    grid.add_argument("--store", required=True, help="the study's SQLite file; rerun to resume")
    grid.add_argument("--train-size", type=int, help="override the spec's train_size for every cell")
    grid.add_argument("--eval-size", type=int, help="override the spec's eval_size for every cell")
    grid.add_argument("--skip-failed", action="store_true", help="leave failed cells failed (default: retry)")
    grid.add_argument(
        "--only", action="append", metavar="AXIS=V1,V2",
        help="run only the cells with these values (e.g. attack=syntactic,style; repeatable): a part of a "
        "study, say in its own store beside another part; `modfit report A B` joins them",
    )  # fmt: skip
    grid.add_argument("--dry-run", action="store_true", help="list the cells and their status; run nothing")
    grid.add_argument(
        "--force-spec", action="store_true",
        help="run a spec of another name (another study) into an existing store (default: refuse)",
    )  # fmt: skip
    grid.add_argument("--quiet", action="store_true", help="no progress bars")
    grid.add_argument(
        "--executor", choices=["local", "ray"], default="local",
        help="where cells run: here, one after another (default), or as Ray tasks (pip install 'modfit[ray]')",
    )  # fmt: skip
    grid.add_argument("--address", help="with --executor ray: a Ray cluster (default: RAY_ADDRESS, else a new local one)")  # fmt: skip
    grid.add_argument("--gpus-per-cell", type=float, help="with --executor ray: GPUs per cell (default 0)")
    grid.add_argument("--cpus-per-cell", type=float, help="with --executor ray: CPUs per cell (default 1)")

    report = commands.add_parser("report", help="tables, dynamics, rate curves and maps from a study store")
    report.add_argument(
        "store", nargs="+", help="the study's SQLite file (may be read while a grid writes it); several "
        "stores (studies run apart) make one report",
    )  # fmt: skip
    report.add_argument("--out", required=True, help="folder for report.md, report.html and the PNGs")
    report.add_argument(
        "--projection", choices=["auto", "pca", "tsne"], default="auto",
        help="representation maps: t-SNE when scikit-learn is installed (auto), or PCA",
    )  # fmt: skip
    report.add_argument("--title", help="report title (default: the study's name)")
    report.add_argument(
        "--only", action="append", metavar="AXIS=V1,V2",
        help="report only the cells with these values (e.g. defence=none,auto; repeatable): a study's "
        "baselines taken from another study's store, without the rest of that store",
    )  # fmt: skip


def _add_model_commands(commands) -> None:
    export = commands.add_parser(
        "export", help="write a run's saved model as a transformers folder that pipeline() loads"
    )
    export.add_argument("run", help="a run folder trained with --save-model (it holds model/), or its model/")
    export.add_argument("--out", required=True, help="folder for the exported model")
    export.add_argument(
        "--overwrite", action="store_true", help="replace what a non-empty --out holds (default: refuse it)"
    )
    predict = commands.add_parser(
        "predict", help="label texts with a saved model: CSV of label, label name and probabilities"
    )
    predict.add_argument(
        "file", help="CSV, TSV or JSONL with a text column, or one text a line; - reads stdin"
    )
    predict.add_argument("--model", required=True, help="a saved model: RUN/model, or modfit export's --out")
    predict.add_argument("--out", help="CSV file to write (default: stdout)")
    predict.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")


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


def _saved_model_folder(run: Path) -> Path:
    """The model folder of a run folder (RUN/model), or `run` itself where it is one; else one line."""
    from modfit.output import FINISHED

    if not run.is_dir():
        raise ModfitError(f"{run}: no such folder; give a run folder trained with --save-model")
    if (run / "model").is_dir():
        return run / "model"
    if (run / "config.json").is_file() and not (run / FINISHED).is_file():  # a model folder itself
        return run
    raise ModfitError(
        f"{run}: no saved model (no model/ folder); train again with --save-model to keep the model"
    )


def command_export(args: argparse.Namespace) -> None:
    import json

    from modfit.output import FINISHED, check_run_folder, model_about, write_model
    from modfit.tuning import load_model

    check_run_folder(args.out, args.overwrite)
    folder = _saved_model_folder(Path(args.run))
    run = folder.parent  # its settings say what a model saved in modfit's earlier format does not
    about = {}
    if (run / FINISHED).is_file() and (run / "config.json").is_file():
        about = model_about(json.loads((run / "config.json").read_text(encoding="utf-8")))
    model = load_model(folder, **about)
    write_model(model, args.out)
    remote = " (load it with trust_remote_code=True)" if model.needs_remote_code else ""
    print(
        f"exported a {model.about.get('form')} model, labels {', '.join(model.labels)} → {args.out}{remote}"
    )


def command_predict(args: argparse.Namespace) -> None:
    from modfit.data.loaders import read_texts, text_lines
    from modfit.inference import probabilities
    from modfit.output import check_file_place, csv_text, write_atomic
    from modfit.tuning import load_model

    if args.out is not None:
        check_file_place(args.out, "--out")
    if args.batch_size < 1:
        raise ModfitError(f"--batch-size {args.batch_size}: use at least 1")
    rows = text_lines(sys.stdin.read()) if args.file == "-" else read_texts(args.file)
    model = load_model(Path(args.model))
    probs = probabilities(model, [text for _, text in rows], batch_size=args.batch_size)
    names = model.labels
    columns = ["row", "text", "label", "label_name", *(f"prob_{name}" for name in names)]
    table = []
    for (number, text), p in zip(rows, probs.tolist(), strict=True):
        label = max(range(len(p)), key=p.__getitem__)
        table.append({"row": number, "text": text, "label": label, "label_name": names[label],
                      **{f"prob_{name}": round(value, 6) for name, value in zip(names, p, strict=True)}})  # fmt: skip
    if args.out is None:
        sys.stdout.write(csv_text(table, columns))
    else:
        write_atomic(args.out, csv_text(table, columns))
        print(f"predicted {len(table)} rows → {args.out}", file=sys.stderr)


def _only_patterns(values: list[str]) -> list[tuple[str, set[str]]]:
    """`--only attack=syntactic,style` → ("attack", {"syntactic", "style"}): a part of a study."""
    from modfit.grid.spec import AXES

    patterns = []
    for value in values:
        axis, _, wanted = value.partition("=")
        if axis not in AXES or not wanted:
            raise ModfitError(
                f"--only {value!r}: use AXIS=VALUE[,VALUE...] with AXIS one of {', '.join(AXES)}"
            )
        patterns.append((axis, set(wanted.split(","))))
    return patterns


def _selects(pattern: tuple[str, set[str]], coordinates) -> bool:
    """Whether a grid cell's coordinates, or a stored cell, has one of the wanted values on the axis."""
    axis, wanted = pattern
    return str(getattr(coordinates, axis)) in wanted


def command_grid(args: argparse.Namespace) -> int:
    from modfit.grid import check_cells, expand, read_spec, run_grid
    from modfit.output import check_file_place
    from modfit.store import exclusive_writer, open_store

    check_file_place(args.store, "--store")
    overrides = {
        k: v for k, v in (("train_size", args.train_size), ("eval_size", args.eval_size)) if v is not None
    }
    spec = read_spec(args.spec, overrides)
    only = _only_patterns(args.only or [])
    cells = [cell for cell in expand(spec) if all(_selects(p, cell.coordinates) for p in only)]
    if not cells:
        raise ModfitError(f"--only {' '.join(args.only)} matches no cell of {spec.name}; check the values")
    check_cells(cells)  # every dataset and target, before a store is touched
    if args.dry_run:
        statuses = {}
        if Path(args.store).is_file():
            with open_store(args.store) as store:
                statuses = store.statuses()
        for cell in cells:
            print(f"{statuses.get(cell.hash, 'new'):8} {cell.hash[:12]}  {cell.coordinates.describe()}")
        print(f"{len(cells)} cells, {len({c.hash for c in cells})} distinct")
        return 0
    from modfit.grid.executors import executor_from_flags

    executor = executor_from_flags(args.executor, args.address, args.gpus_per_cell, args.cpus_per_cell)
    with exclusive_writer(args.store), open_store(args.store, create=True) as store:  # the lock first
        named = store.meta().get("name")
        if named is not None and named != spec.name and not args.force_spec:
            raise ModfitError(
                f"--store {args.store} holds study {named!r}, not {spec.name!r}; give another store, "
                "or --force-spec to run this spec into it"
            )
        store.set_meta("name", spec.name)
        store.set_meta("spec", Path(args.spec).read_text(encoding="utf-8"))
        summary = run_grid(
            cells, store, not args.quiet, retry_failed=not args.skip_failed, lock=False, executor=executor
        )
    print(f"{spec.name}: {summary.describe()} → {args.store}")
    if summary.failed:
        print(
            f"{len(summary.failed)} cell(s) failed; their errors are in the store and the report",
            file=sys.stderr,
        )
        return 1
    return 0


def _join_stores(stores: list, only: list[tuple[str, set[str]]]) -> tuple[list, dict]:
    """The cells of several stores that `only` selects, read once: a cell that several hold (same
    experiment, same coordinates) is listed once, the done copy if any store finished it; and for each
    hash the store that holds the chosen copy (where its representations are)."""
    chosen: dict[tuple, tuple] = {}
    for store in stores:
        for cell in store.cells():
            if not all(_selects(p, cell) for p in only):
                continue
            key = (cell.hash, cell.dataset, cell.attack, cell.defence, cell.rate, cell.mode, cell.seed)
            if key not in chosen or (chosen[key][0].status != "done" and cell.status == "done"):
                chosen[key] = (cell, store)
    owner: dict = {}
    for cell, store in chosen.values():
        if cell.hash not in owner or cell.status == "done":
            owner[cell.hash] = store
    return [cell for cell, _ in chosen.values()], owner


def _check_report_sources(paths: list[str]) -> None:
    """`report` reads study stores (SQLite files); a folder given instead, most often a run's, is named
    as what it is, with where its results are."""
    for path in map(Path, paths):
        if not path.is_dir():
            continue
        if (path / "config.json").is_file() or (path / "metrics.json").is_file():
            raise ModfitError(
                f"{path} is a run folder (modfit train), not a study store: its results are "
                f"{path / 'metrics.json'}, history.csv and dynamics.png; report reads the SQLite file "
                "that `modfit grid SPEC --store FILE` writes"
            )
        raise ModfitError(
            f"{path} is a folder, not a study store; give the SQLite file that `modfit grid SPEC --store "
            "FILE` wrote"
        )


def command_report(args: argparse.Namespace) -> None:
    from modfit.output import check_folder
    from modfit.report.document import write_report
    from modfit.report.study import ReportOptions, build_report
    from modfit.store import open_store

    check_folder(args.out, "--out")
    _check_report_sources(args.store)
    only = _only_patterns(args.only or [])
    with contextlib.ExitStack() as stack:
        stores = [stack.enter_context(open_store(path)) for path in args.store]
        cells, owner = _join_stores(stores, only)
        if not cells and not only:
            raise ModfitError(
                f"{', '.join(args.store)}: no cells yet; run `modfit grid SPEC --store FILE` into it first"
            )
        if not cells:
            raise ModfitError(f"no cell in {', '.join(args.store)} matches --only; check the values")
        metas = [store.meta() for store in stores if store in owner.values()]
        # parts of one study (`grid --only` into several stores) name it, and show its spec, once
        names = dict.fromkeys(m.get("name", "unnamed") for m in metas)
        specs = dict.fromkeys(m["spec"] for m in metas if m.get("spec"))
        meta = {"name": " + ".join(names), "spec": "\n---\n".join(specs)}
        document = build_report(
            cells,
            lambda digest: owner[digest].snapshots(digest),
            ReportOptions(args.projection, args.title),
            meta,
        )
    write_report(document, args.out)
    done = len({c.hash for c in cells if c.status == "done"})
    print(
        f"report of {len(cells)} cells ({done} distinct runs done) → {Path(args.out) / 'report.md'}, report.html"
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"poison": command_poison, "train": command_train, "scan": command_scan, "demo": command_demo,
                "grid": command_grid, "report": command_report, "export": command_export,
                "predict": command_predict}  # fmt: skip
    try:
        code = handlers[args.command](args)
    except ModfitError as err:
        print(f"modfit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line; the finish markers (metrics.json, done cells) are absent
        print(f"modfit {args.command}: interrupted; what was running is not marked finished", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
