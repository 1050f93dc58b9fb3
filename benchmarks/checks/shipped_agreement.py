"""Does a shipped model predict what modfit predicts, on a real test split? (issue 30)

Trains the packaged MiniLM briefly with `--save-model` for each tuning form asked (the default: full
fine-tuning with mean pooling, which ships as `remote-code`, and `lora-reparam`, the authors' LoRA
with the RoBERTa head, which ships as a stock `BertForSequenceClassification`), then scores the SST-2
test split three ways: the model modfit trained (`result.model`), the folder through
`modfit.load_model`, and the folder through `transformers.pipeline`. It prints the label agreement
and the largest probability gap. The training is short on purpose: what is measured is agreement,
not accuracy.

    python benchmarks/checks/shipped_agreement.py --out runs/shipped_agreement
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import modfit
from modfit.data import load_dataset
from modfit.inference import probabilities
from modfit.tuning import ship

RUNS = {
    "full-mean": {"defence": "none"},
    "lora-reparam": {"defence": "lora-reparam", "train": {"epochs": 1}},
}


def pipeline_probabilities(folder: Path, texts: list[str], labels: list[str], remote: bool) -> torch.Tensor:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(folder), trust_remote_code=remote, top_k=None,
                        truncation=True)  # fmt: skip
    rows = classify(texts, batch_size=64)
    return torch.tensor([[{r["label"]: r["score"] for r in row}[name] for name in labels] for row in rows])


def check(name: str, settings: dict, out: Path, train_size: int) -> dict:
    started = time.perf_counter()
    experiment = modfit.resolve({"dataset": "sst2", "train_size": train_size, "seed": 0, **settings})
    result = modfit.run(experiment, progress=False)
    trained = time.perf_counter() - started
    folder = out / name
    ship(result.model, result.tokenizer, dataset="sst2", method=experiment.tuning.method,
         max_length=experiment.model.max_length).save(folder)  # fmt: skip
    texts = [e.text for e in load_dataset("sst2").test]
    ours = probabilities(result.model, texts, tokenizer=result.tokenizer, max_length=experiment.model.max_length)
    loaded = modfit.load_model(folder)
    reloaded = probabilities(loaded, texts)
    remote = json.loads((folder / "config.json").read_text())["modfit"]["form"] == "remote-code"
    piped = pipeline_probabilities(folder, texts, loaded.labels, remote)
    labels = ours.argmax(-1)
    return {
        "run": name, "form": "remote-code" if remote else "stock", "rows": len(texts),
        "load_model agrees": int((reloaded.argmax(-1) == labels).sum()),
        "pipeline agrees": int((piped.argmax(-1) == labels).sum()),
        "max |p gap| load_model": float((reloaded - ours).abs().max()),
        "max |p gap| pipeline": float((piped - ours).abs().max()),
        "modfit accuracy": float((labels == torch.tensor([e.label for e in load_dataset("sst2").test])).float().mean()),
        "train seconds": round(trained, 1),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--train-size", type=int, default=1000)
    args = parser.parse_args()
    for name in args.runs:
        print(json.dumps(check(name, RUNS[name], args.out, args.train_size)), flush=True)


if __name__ == "__main__":
    main()
