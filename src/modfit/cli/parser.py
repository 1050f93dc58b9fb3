"""The argument parser: every command and flag of `modfit` (the CLI reference is generated from it)."""

from __future__ import annotations

import argparse

from modfit.config import POISON_MODES


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


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


def _add_row_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write-corrected",
        action="store_true",
        help="with --defence safe: also write OUT/corrected.csv, the training set as the defence left it "
        "(text,label: relabelled rows relabelled, dropped rows gone), to train on elsewhere",
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
