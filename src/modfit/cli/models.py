"""The commands that read a saved model: `export` and `predict`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modfit.errors import ModfitError


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
