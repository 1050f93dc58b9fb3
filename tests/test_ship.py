"""Models that ship: every tuning method as a transformers folder that `pipeline` loads and that
predicts what modfit predicts; `modfit predict`, `modfit export` and `modfit.predict` on raw texts."""

from __future__ import annotations

import ast
import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import torch

import modfit
from conftest import error_of, make_tokenizer
from modfit import Classifier
from modfit.cli import main
from modfit.defences import PAPER_TUNING
from modfit.tuning import apply_tuning, load_model, ship
from modfit.tuning.export import REMOTE_CODE, STOCK

REPARAM = {"reparam": {"in_dim": 2, "mid_dim": 2}}
TEXTS = [
    "good movie the plot", "the film was awful", "a nice actor", "boring scene very dull is the story",
    "i watch this 3d movie when it is very quite lovely , the actor was superb .", "cf bad",
]  # fmt: skip
CASES = [  # (architecture, method, options, pooling, form)
    ("bert", "full", {}, "cls", STOCK),
    ("bert", "full", {}, "mean", REMOTE_CODE),
    ("bert", "head", {}, "cls", STOCK),
    ("bert", "head", {}, "mean", REMOTE_CODE),
    ("bert", "lora", {}, "cls", STOCK),
    ("bert", "lora", REPARAM, "cls", STOCK),
    ("bert", "lora", {}, "mean", REMOTE_CODE),
    ("bert", "lora", REPARAM, "mean", REMOTE_CODE),
    ("bert", "adapter", {}, "mean", REMOTE_CODE),
    ("bert", "adapter", REPARAM, "cls", REMOTE_CODE),
    ("bert", "prefix", {}, "cls", REMOTE_CODE),
    ("bert", "prefix", REPARAM, "mean", REMOTE_CODE),
    ("roberta", "full", {}, "cls", STOCK),
    ("roberta", "lora", REPARAM, "cls", STOCK),
    ("roberta", "adapter", REPARAM, "mean", REMOTE_CODE),
    ("distilbert", "full", {}, "cls", REMOTE_CODE),  # no pooler: the first token's hidden state
    # the paper's presets: the RoBERTa head (`--head roberta`), their placement, activation and generators
    ("bert", "lora", PAPER_TUNING["lora"], "roberta", STOCK),
    ("bert", "adapter", PAPER_TUNING["adapter"], "roberta", REMOTE_CODE),
    ("bert", "prefix", PAPER_TUNING["prefix"], "roberta", REMOTE_CODE),
    ("roberta", "full", {}, "roberta", STOCK),
    # MPNet (all-mpnet-base-v2's architecture): its stock head is RoBERTa's; adapters in its own places
    ("mpnet", "lora", PAPER_TUNING["lora"], "roberta", STOCK),
    ("mpnet", "lora", {}, "cls", STOCK),
    ("mpnet", "adapter", PAPER_TUNING["adapter"], "roberta", REMOTE_CODE),
    ("mpnet", "adapter", REPARAM, "mean", REMOTE_CODE),
    ("mpnet", "full", {}, "mean", REMOTE_CODE),
]


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory) -> Path:
    """A 2-layer DistilBERT (no pooler, no token type ids) and its tokenizer."""
    from transformers import AutoModel, BertTokenizerFast, DistilBertConfig

    folder = tmp_path_factory.mktemp("tiny-distilbert")
    vocab = make_tokenizer(folder).vocab_size
    BertTokenizerFast(
        vocab=str(folder / "vocab.txt"), model_input_names=["input_ids", "attention_mask"]
    ).save_pretrained(folder)
    config = DistilBertConfig(
        vocab_size=vocab, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=80
    )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    return folder


def tuned(folder: Path, method: str, options: dict, pooling: str) -> torch.nn.Module:
    """A tuned tiny classifier whose trained tensors (or generators) moved away from their start.
    `pooling` "roberta" means the RoBERTa head on the first token."""
    from transformers import AutoModel

    head = "roberta" if pooling == "roberta" else "linear"
    with torch.random.fork_rng(devices=[]):  # the head's initialisation, whatever ran before
        torch.manual_seed(0)
        encoder = AutoModel.from_pretrained(folder)
        classifier = Classifier(encoder, 2, "cls" if head == "roberta" else pooling, head=head)
    model = apply_tuning(classifier, method, options, seed=1)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:  # generators further: their output moves less than their parameters
                scale = 1.0 if name.startswith("generators.") else 0.3
                p.add_(torch.randn(p.shape, generator=generator) * scale)
    return model.eval()


def modfit_probabilities(model, tokenizer, texts=TEXTS) -> torch.Tensor:
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).softmax(-1)


def pipeline_probabilities(folder: Path, remote: bool, labels: list[str], texts=TEXTS) -> torch.Tensor:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(folder), trust_remote_code=remote, top_k=None)
    rows = classify(texts)
    return torch.tensor([[{r["label"]: r["score"] for r in row}[name] for name in labels] for row in rows])


@pytest.mark.parametrize(("architecture", "method", "options", "pooling", "form"), CASES)
def test_every_method_ships_and_pipeline_predicts_what_modfit_predicts(
    tiny_bert, tiny_roberta, tiny_distilbert, tiny_mpnet, tmp_path, architecture, method, options, pooling, form
):
    from transformers import AutoTokenizer

    folders = {"bert": tiny_bert, "roberta": tiny_roberta, "distilbert": tiny_distilbert, "mpnet": tiny_mpnet}
    folder = folders[architecture]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = tuned(folder, method, options, pooling)
    shipped = ship(model, tokenizer, method=method, dataset="sst2", max_length=32)
    shipped.save(tmp_path / "model")

    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["modfit"]["form"] == form and config["id2label"] == {"0": "negative", "1": "positive"}
    assert (tmp_path / "model" / "modeling_modfit.py").is_file() == (form == REMOTE_CODE)
    if form == REMOTE_CODE:
        assert set(config["auto_map"]) == {"AutoConfig", "AutoModelForSequenceClassification"}

    ours = modfit_probabilities(model, tokenizer)
    assert ours.max() - ours.min() > 0.05  # the head is not trivial: the agreement below means something
    theirs = pipeline_probabilities(tmp_path / "model", form == REMOTE_CODE, ["negative", "positive"])
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)

    loaded = load_model(tmp_path / "model")
    assert loaded.labels == ["negative", "positive"] and loaded.max_length == 32
    assert modfit.predict(loaded, TEXTS) == ours.argmax(-1).tolist()
    torch.testing.assert_close(modfit.probabilities(loaded, TEXTS), ours, rtol=0, atol=1e-5)


def test_pipeline_with_truncation_sees_a_long_text_as_modfit_does(tiny_bert, tmp_path):
    """modfit reads at most the trained max_length tokens; the shipped tokenizer truncates there."""
    from transformers import AutoTokenizer

    model = tuned(tiny_bert, "full", {}, "mean")
    ship(model, AutoTokenizer.from_pretrained(tiny_bert), max_length=12).save(tmp_path / "model")
    long = ["good " + "the movie was very dull and boring , " * 6 + "lovely"]
    loaded = load_model(tmp_path / "model")
    assert len(loaded.tokenizer(long[0])["input_ids"]) > 12
    ours = modfit.probabilities(loaded, long)
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(tmp_path / "model"), trust_remote_code=True,
                        top_k=None, truncation=True)  # fmt: skip
    theirs = torch.tensor([[{r["label"]: r["score"] for r in classify(long)[0]}[n] for n in loaded.labels]])
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_the_modeling_file_needs_only_torch_and_transformers():
    """It ships inside the model folder, where modfit may not be installed."""
    source = Path(modfit.__file__).with_name("modeling_modfit.py").read_text(encoding="utf-8")
    named = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            named.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            named.add((node.module or "").split(".")[0])
    assert named == {"__future__", "torch", "transformers"}


def test_export_refuses_a_model_whose_logits_would_change(tiny_bert, tmp_path, monkeypatch):
    from modfit import modeling_modfit

    def cls_instead_of_mean(self, input_ids, attention_mask=None, **inputs):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state[
            :, 0
        ]

    monkeypatch.setattr(modeling_modfit.ModfitForSequenceClassification, "features", cls_instead_of_mean)
    message = error_of(ship, tuned(tiny_bert, "full", {}, "mean"), None)
    assert message.startswith("export would change the model's logits (max difference")


def test_label_names_are_the_datasets_where_known(tiny_bert):
    model = tuned(tiny_bert, "head", {}, "mean")
    assert ship(model, None, dataset="/data/mydata").labels == ["LABEL_0", "LABEL_1"]
    assert ship(model, None, dataset="sst2").labels == ["negative", "positive"]


def test_predict_on_texts_needs_a_tokenizer_and_a_list(tiny_bert):
    from transformers import AutoTokenizer

    model = tuned(tiny_bert, "head", {}, "mean")
    assert "needs a tokenizer" in error_of(modfit.predict, model, ["a text"])
    assert "not one string" in error_of(modfit.predict, model, "a text")
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    expected = modfit_probabilities(model, tokenizer).argmax(-1).tolist()
    assert modfit.predict(model, TEXTS, tokenizer=tokenizer) == expected
    assert modfit.predict(model, [], tokenizer=tokenizer) == []


# --- the command line: train --save-model, predict, export -------------------------------------------


def train_args(dataset, model, out, *extra: str) -> list[str]:
    return [
        "train", "--dataset", str(dataset), "--attack", "none", "--epochs", "1", "--lr", "1e-2",
        "--batch-size", "8", "--eval-every", "4", "--model", str(model), "--pooling", "mean",
        "--max-length", "32", "--quiet", "--out", str(out), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def saved_run(tiny_bert, tmp_path_factory) -> Path:
    """A tiny run trained with --save-model (adapter tuning, mean pooling: the remote-code form)."""
    from conftest import separable_rows, write_split

    root = tmp_path_factory.mktemp("saved")
    data = root / "toy"
    data.mkdir()
    for split, count, seed in (("train", 64, 0), ("dev", 24, 1), ("test", 24, 2)):
        write_split(data / f"{split}.csv", separable_rows(count, seed))
    out = root / "run"
    assert main(train_args(data, tiny_bert, out, "--tuning", "adapter", "--save-model")) == 0
    return out


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_predict_writes_labels_names_and_probabilities_for_a_csv(saved_run, tmp_path, capsys):
    texts = tmp_path / "texts.csv"
    texts.write_text('text,other\n"good, very good",x\nthe film was awful,y\n', encoding="utf-8")
    assert (
        main(["predict", "--model", str(saved_run / "model"), str(texts), "--out", str(tmp_path / "p.csv")])
        == 0
    )
    rows = read_csv((tmp_path / "p.csv").read_text(encoding="utf-8"))
    assert list(rows[0]) == ["row", "text", "label", "label_name", "prob_LABEL_0", "prob_LABEL_1"]
    assert [r["row"] for r in rows] == ["2", "3"] and rows[0]["text"] == "good, very good"
    model = load_model(saved_run / "model")
    probabilities = modfit.probabilities(model, ["good, very good", "the film was awful"])
    for row, p in zip(rows, probabilities.tolist(), strict=True):
        assert int(row["label"]) == max(range(2), key=p.__getitem__)
        assert row["label_name"] == f"LABEL_{row['label']}"
        assert [float(row["prob_LABEL_0"]), float(row["prob_LABEL_1"])] == pytest.approx(p, abs=1e-6)


def test_predict_reads_one_text_a_line_from_stdin(saved_run, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("good movie\n\nthe film was awful\n"))
    assert main(["predict", "--model", str(saved_run / "model"), "-"]) == 0
    rows = read_csv(capsys.readouterr().out)
    assert [(r["row"], r["text"]) for r in rows] == [("1", "good movie"), ("3", "the film was awful")]
    model = load_model(saved_run / "model")
    assert [int(r["label"]) for r in rows] == modfit.predict(model, ["good movie", "the film was awful"])


def test_export_writes_a_folder_pipeline_loads(saved_run, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(saved_run), "--out", str(out)]) == 0
    assert "trust_remote_code=True" in capsys.readouterr().out
    model = load_model(saved_run / "model")
    ours = modfit.probabilities(model, TEXTS)
    for folder in (saved_run / "model", out):  # what --save-model wrote, and its export
        torch.testing.assert_close(
            pipeline_probabilities(folder, True, model.labels), ours, rtol=0, atol=1e-5
        )
    assert main(["export", str(saved_run), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["export", str(saved_run / "model"), "--out", str(out), "--overwrite"]) == 0


def save_legacy(model, backbone: Path, folder: Path) -> None:
    """A tuned model in modfit's earlier saved format: untouched backbone, trained tensors, recipe."""
    from safetensors.torch import save_file

    shutil.copytree(backbone, folder)
    parameters = dict(model.named_parameters())
    save_file({n: parameters[n].detach().contiguous() for n in model.trained_names()},
              folder / "modfit_tuning.safetensors")  # fmt: skip
    meta = {"num_labels": 2, "pooling": model.pooling, "method": model.method, "options": model.options}
    (folder / "modfit_tuning.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("options", [{}, REPARAM], ids=["plain", "reparam"])
@pytest.mark.parametrize("method", ["lora", "prefix"])
def test_export_converts_a_run_saved_in_the_earlier_format(tiny_bert, tmp_path, capsys, method, options):
    from transformers import AutoTokenizer

    model = tuned(tiny_bert, method, options, "mean")
    run = tmp_path / "run"
    save_legacy(model, tiny_bert, run / "model")
    (run / "config.json").write_text(
        json.dumps({"dataset": "sst2", "tuning": {"method": method}, "model": {"max_length": 32}})
    )
    (run / "metrics.json").write_text("{}")
    assert main(["export", str(run), "--out", str(tmp_path / "out")]) == 0
    ours = modfit_probabilities(model, AutoTokenizer.from_pretrained(tiny_bert))
    theirs = pipeline_probabilities(tmp_path / "out", True, ["negative", "positive"])
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_export_and_predict_errors_are_one_line(saved_run, tmp_path, capsys):
    from conftest import write_split

    plain_run = tmp_path / "plain"
    plain_run.mkdir()
    (plain_run / "config.json").write_text("{}")
    (plain_run / "metrics.json").write_text("{}")
    cases = [
        (["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")], "no such folder"),
        (["export", str(plain_run), "--out", str(tmp_path / "o")], "no saved model (no model/ folder)"),
        (["predict", "--model", str(plain_run), str(write_split(tmp_path / "t.csv", [("a", 0)]))],
         "not a model saved by modfit"),
        (["predict", "--model", str(saved_run / "model"), str(tmp_path / "missing.csv")], "no such file"),
    ]  # fmt: skip
    no_text = tmp_path / "no_text.csv"
    no_text.write_text("sentence\nhello\n")
    cases.append((["predict", "--model", str(saved_run / "model"), str(no_text)], "no column 'text'"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists()
