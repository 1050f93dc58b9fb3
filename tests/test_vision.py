"""Images: triggers, poisoning, folder and tar loading, the image victim and its reduced-capacity tuning."""

from __future__ import annotations

import io
import random
import tarfile
from pathlib import Path

import pytest
import torch
from torch import nn

from modfit.attacks import make_trigger, poison, poison_test
from modfit.config import AttackConfig, TrainConfig
from modfit.errors import ModfitError
from modfit.train import fit
from modfit.tuning import apply_tuning, count_trainable
from modfit.vision import ImageClassifier, ImageExample, ImagePreprocess, encode_images, load_image_dataset

CLASSES = ("cat", "dog", "frog")


def gray(value: int, label: int, size: int = 8) -> ImageExample:
    return ImageExample(torch.full((3, size, size), value, dtype=torch.uint8), label)


def patch_trigger(**options):
    return make_trigger(AttackConfig(name="patch", options=options))


@pytest.mark.parametrize(
    ("corner", "rows", "cols"),
    [("bottom-right", (5, 8), (5, 8)), ("top-left", (0, 3), (0, 3)), ("top-right", (0, 3), (5, 8)),
     ("bottom-left", (5, 8), (0, 3))],
)  # fmt: skip
def test_patch_places_the_checkerboard_exactly_at_the_corner(corner, rows, cols) -> None:
    image = gray(100, 0).image
    out = patch_trigger(size=3, corner=corner).apply(image, random.Random(0))
    expected = torch.tensor([[255, 0, 255], [0, 255, 0], [255, 0, 255]], dtype=torch.uint8)
    for channel in range(3):
        assert torch.equal(out[channel, rows[0] : rows[1], cols[0] : cols[1]], expected)
    outside = torch.ones(8, 8, dtype=torch.bool)
    outside[rows[0] : rows[1], cols[0] : cols[1]] = False
    assert bool((out[:, outside] == 100).all())
    assert bool((image == 100).all())  # the clean image is not modified


def test_patch_white_pattern_and_option_errors() -> None:
    out = patch_trigger(size=2, pattern="white").apply(gray(7, 0).image, random.Random(0))
    assert int(out[:, 6:, 6:].min()) == 255 and int(out[:, :6, :].max()) == 7
    with pytest.raises(ModfitError, match="corner 'middle'"):
        patch_trigger(corner="middle")
    with pytest.raises(ModfitError, match="size 0"):
        patch_trigger(size=0)
    with pytest.raises(ModfitError, match="unknown key 'colour'"):
        patch_trigger(colour="red")


def test_blend_mixes_one_fixed_noise_image_with_weight_alpha() -> None:
    trigger = make_trigger(AttackConfig(name="blend", options={"alpha": 0.25}))
    image = gray(200, 0).image
    out = trigger.apply(image, random.Random(0))
    noise = trigger.noise(tuple(image.shape))
    expected = (0.75 * 200 + 0.25 * noise.float()).round().to(torch.uint8)
    assert torch.equal(out, expected)
    again = make_trigger(AttackConfig(name="blend", options={"alpha": 0.25})).apply(image, random.Random(9))
    assert torch.equal(out, again)  # the noise follows noise_seed, not the run's randomness
    other = make_trigger(AttackConfig(name="blend", options={"alpha": 0.25, "noise_seed": 1}))
    assert not torch.equal(out, other.apply(image, random.Random(0)))
    with pytest.raises(ModfitError, match="alpha 1.5"):
        make_trigger(AttackConfig(name="blend", options={"alpha": 1.5}))


@pytest.mark.parametrize(("mode", "expected"), [("dirty", 8), ("clean", 3), ("mix", 3)])
def test_poisoning_images_counts_labels_and_untouched_rows(mode, expected) -> None:
    train = [gray(5 * i, i % 3) for i in range(30)]
    rate = 8 / 30 if mode == "dirty" else 0.1
    config = AttackConfig(name="patch", mode=mode, rate=rate, target=0)
    out = poison(train, make_trigger(config), config, seed=3)
    marked = [i for i, e in enumerate(out) if e.poisoned]
    assert len(marked) == round(rate * 30) == expected
    for i, example in enumerate(out):
        if i in marked:
            assert int(example.image[0, 7, 7]) == 255  # the patch is there
            assert example.label == (train[i].label if mode == "clean" else 0)
            if mode == "dirty":
                assert train[i].label != 0
            if mode == "clean":
                assert train[i].label == 0
        else:
            assert example is train[i]
    again = poison(train, make_trigger(config), config, seed=3)
    assert [e.poisoned for e in again] == [e.poisoned for e in out]
    other = poison(train, make_trigger(config), config, seed=4)
    assert [e.poisoned for e in other] != [e.poisoned for e in out]


def test_poisoned_image_test_set_covers_every_non_target_row() -> None:
    test = [gray(50, i % 3) for i in range(9)]
    poisoned = poison_test(test, patch_trigger(), target=1, seed=0)
    assert poisoned.sources == [i for i in range(9) if i % 3 != 1]
    assert all(e.label == 1 and e.poisoned and int(e.image[0, 7, 7]) == 255 for e in poisoned.examples)


def _png(color: tuple[int, int, int], size: int = 8) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def write_image_folder(root: Path, per_class: dict[str, int], size: int = 8) -> Path:
    """split/class/file PNGs whose colour encodes the class (red, green, blue)."""
    for split, count in per_class.items():
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                color = [30, 30, 30]
                color[label] = 120 + 10 * i
                (folder / f"{i:03d}.png").write_bytes(_png(tuple(color), size))
    return root


def test_folder_loading_sorts_classes_and_holds_out_dev(tmp_path) -> None:
    root = write_image_folder(tmp_path / "images", {"train": 10, "test": 2})
    splits = load_image_dataset(str(root))
    assert splits.kind == "image" and splits.num_labels == 3
    assert len(splits.dev) == 3 and len(splits.train) == 27 and len(splits.test) == 6
    first = splits.test[0]
    assert first.label == 0 and first.image.shape == (3, 8, 8) and int(first.image[0, 0, 0]) == 120
    assert [e.label for e in splits.test] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_tar_loading_gives_the_folder_contents(tmp_path, mode) -> None:
    root = write_image_folder(tmp_path / "images", {"train": 4, "dev": 1, "test": 2})
    archive = tmp_path / ("images.tar.gz" if mode == "w:gz" else "images.tar")
    with tarfile.open(archive, mode) as tar:
        tar.add(root, arcname="images")
    from_tar, from_folder = load_image_dataset(str(archive)), load_image_dataset(str(root))
    assert len(from_tar.dev) == 3  # the dev/ split is used as it is
    for a, b in zip(from_tar.train + from_tar.test, from_folder.train + from_folder.test, strict=True):
        assert a.label == b.label and torch.equal(a.image, b.image)


def test_image_loading_errors_name_the_fix(tmp_path) -> None:
    root = write_image_folder(tmp_path / "no_test", {"train": 2})
    with pytest.raises(ModfitError, match="split 'test' is missing"):
        load_image_dataset(str(root))
    root = write_image_folder(tmp_path / "broken", {"train": 2, "test": 1})
    (root / "train" / "cat" / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ModfitError, match="bad.jpg: not a readable image"):
        load_image_dataset(str(root))
    with pytest.raises(ModfitError, match="does not exist"):
        load_image_dataset(str(tmp_path / "missing.tar"))


def test_encoding_resizes_and_normalises() -> None:
    examples = [gray(255, 0, size=8), gray(0, 1, size=8)]
    encoded = encode_images(examples, ImagePreprocess(16, (0.5,) * 3, (0.5,) * 3))
    inputs, labels = encoded.batch([1, 0], torch.device("cpu"))
    assert inputs["pixel_values"].shape == (2, 3, 16, 16) and labels.tolist() == [1, 0]
    assert torch.allclose(inputs["pixel_values"][0], torch.tensor(-1.0))
    assert torch.allclose(inputs["pixel_values"][1], torch.tensor(1.0))
    with pytest.raises(ModfitError, match="set model.image_size"):
        encode_images([gray(0, 0, size=8), gray(0, 0, size=6)], ImagePreprocess(None, (0.5,) * 3, (0.5,) * 3))


class TinyCNN(nn.Module):
    """Two convolutions and global average pooling: pooled 8-d features, like a real backbone's. The
    1 × 1 convolutions carry EfficientNet's names, so the image `lora-reparam` preset finds them."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self._expand_conv = nn.Conv2d(8, 8, 1)
        self._project_conv = nn.Conv2d(8, 8, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self._expand_conv(torch.relu(self.stem(pixel_values))))
        return self.pool(self._project_conv(x)).flatten(1)


def tiny_image_classifier(num_labels: int = 3) -> ImageClassifier:
    torch.manual_seed(0)
    return ImageClassifier(TinyCNN(), 8, num_labels, dropout=0.0)


def colour_task(count: int, seed: int) -> list[ImageExample]:
    """Each image is one noisy colour; its class is the brightest channel."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(count):
        label = i % 3
        image = torch.randint(0, 60, (3, 8, 8), generator=generator, dtype=torch.uint8)
        image[label] += 150
        rows.append(ImageExample(image, label))
    return rows


REPARAM_LORA = {
    "rank": 2,
    "alpha": 4,
    "target_modules": ["stem", "_expand_conv"],
    "reparam": {"in_dim": 2, "mid_dim": 2},
}


def test_lora_reparam_on_a_cnn_trains_only_the_generators() -> None:
    model = tiny_image_classifier()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    with torch.no_grad():
        x = torch.randn(4, 3, 8, 8)
        plain_logits = model.eval()(x)
    tuned = apply_tuning(model, "lora", REPARAM_LORA, seed=0)
    names = [n for n, p in tuned.named_parameters() if p.requires_grad]
    assert names and all(n.startswith("generators.") for n in names)
    with torch.no_grad():  # LoRA's B starts at zero: the backbone's features, the generated head
        generated = tuned.eval()(x)
        head = tuned.generate()
        expected = model.encoder(x) @ head["head.weight"].T + head["head.bias"]
    assert torch.allclose(generated, expected, atol=1e-6) and generated.shape == plain_logits.shape
    train = encode_images(colour_task(48, 0), ImagePreprocess(None, (0.5,) * 3, (0.5,) * 3))
    fit(tuned, train, TrainConfig(epochs=2, lr=1e-2, batch_size=8), seed=0)
    after = tuned.classifier.encoder.state_dict()
    for key, value in before.items():
        base_key = key.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        assert torch.equal(after[base_key if base_key in after else key], value)
    assert count_trainable(tuned) == sum(p.numel() for p in tuned.generators.parameters())


@pytest.mark.parametrize("method", ["full", "lora"])
def test_image_classifier_learns_a_separable_colour_task(method) -> None:
    from modfit.evaluate import predict

    options = {} if method == "full" else REPARAM_LORA
    model = apply_tuning(tiny_image_classifier(), method, options, seed=0)
    preprocess = ImagePreprocess(None, (0.5,) * 3, (0.5,) * 3)
    train, test = encode_images(colour_task(96, 0), preprocess), encode_images(colour_task(30, 1), preprocess)
    fit(model, train, TrainConfig(epochs=6, lr=3e-2, batch_size=8), seed=0)
    accuracy = sum(p == y for p, y in zip(predict(model, test), test.labels, strict=True)) / len(test)
    assert accuracy >= 0.9


# --- the image pipeline through the commands, on the tiny CNN in place of EfficientNet-Lite0 -------


@pytest.fixture
def tiny_backbone(monkeypatch):
    import modfit.vision.model as vision_model

    def tiny():
        torch.manual_seed(0)
        return TinyCNN(), 8, ImagePreprocess(None, (0.5,) * 3, (0.5,) * 3)

    monkeypatch.setattr(vision_model, "_efficientnet_lite0", tiny)


@pytest.fixture
def image_tar(tmp_path) -> Path:
    """A gzip tar of the colour task: train 16, dev 4, test 6 images per class, 8 × 8 px."""
    for split, count, seed in (("train", 16, 0), ("dev", 4, 1), ("test", 6, 2)):
        for i, example in enumerate(colour_task(3 * count, seed)):
            from PIL import Image

            folder = tmp_path / "colours" / split / CLASSES[example.label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(example.image.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    archive = tmp_path / "colours.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "colours", arcname="colours")
    return archive


def image_train_args(dataset: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--dataset", str(dataset), "--attack", "patch", "--target", "0", "--poison-rate", "0.2",
        "--epochs", "1", "--batch-size", "8", "--eval-every", "3", "--image-size", "8", "--quiet",
        "--out", str(out), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("defence", ["none", "fewer-epochs", "lower-lr", "lora-reparam"])
def test_train_command_runs_every_image_defence(tiny_backbone, image_tar, tmp_path, defence) -> None:
    import json

    from modfit.cli import main

    out = tmp_path / "run"
    assert main(image_train_args(image_tar, out, "--defence", defence)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["cacc"] <= 1 and 0 <= metrics["asr"] <= 1
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["lr"] == {"lower-lr": 1e-4, "lora-reparam": 5e-3}.get(defence, 1e-3)
    if defence == "lora-reparam":
        # two generators (A and head; B), each e (1 × 2) + W1 (2 × 2) + W2 (its generated tensors × 2)
        assert metrics["trainable_params"] == 2 * (2 + 4) + 2 * metrics["generated_params"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--attack", "badnet"], "attack 'badnet' poisons texts but"),
     (["--defence", "onion"], "defence 'onion' is for text models"),
     (["--save-model"], "--save-model takes text datasets only")],
)  # fmt: skip
def test_text_only_choices_on_images_are_one_line_errors(
    tiny_backbone, image_tar, tmp_path, capsys, extra, message
):
    from modfit.cli import main

    out = tmp_path / "run"
    assert main(image_train_args(image_tar, out, *extra)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (out / "metrics.json").exists()


def test_image_defaults_sit_under_presets_and_user_settings(image_tar) -> None:
    from modfit.experiment import resolve

    plain = resolve({"dataset": str(image_tar), "attack": {"name": "patch"}})
    assert (plain.model.image_size, plain.train.lr, plain.train.epochs) == (64, 1e-3, 3.0)
    lower = resolve({"dataset": str(image_tar), "attack": {"name": "patch"}, "defence": "lower-lr"})
    assert lower.train.lr == 1e-4 and lower.model.image_size == 64
    mine = resolve(
        {"dataset": str(image_tar), "defence": "lower-lr", "train": {"lr": 5e-5}, "model": {"image_size": 32}}
    )
    assert (mine.train.lr, mine.model.image_size) == (5e-5, 32)
    text = resolve({"dataset": "sst2", "defence": "lower-lr"})
    assert text.train.lr == 3.7e-5 and text.model.image_size is None


def test_poison_and_scan_say_they_take_text(image_tar, tmp_path, capsys) -> None:
    from modfit.cli import main

    for command in ("poison", "scan"):
        argv = [command, "--dataset", str(image_tar), "--attack", "patch", "--out", str(tmp_path / command)]
        assert main(argv) == 2
        assert f"modfit {command} takes text datasets only" in capsys.readouterr().err
        assert not (tmp_path / command).exists()


def test_grid_and_report_take_an_image_study(tiny_backbone, image_tar, tmp_path) -> None:
    import yaml

    from modfit.cli import main
    from modfit.store import open_store

    spec = {"name": "colours", "datasets": [str(image_tar)], "attacks": ["patch", "blend"],
            "defences": ["none", "lora-reparam"], "target": 0, "model": {"image_size": 8},
            "train": {"epochs": 1, "batch_size": 16}}  # fmt: skip
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    store_file = tmp_path / "study.sqlite"
    assert main(["grid", str(spec_file), "--store", str(store_file), "--quiet"]) == 0
    with open_store(store_file) as store:
        cells = store.cells()
    assert len(cells) == 4 and {c.status for c in cells} == {"done"}
    # the study's shared settings win over the image defaults; lora-reparam's preset over the study's
    assert {c.defence: c.metrics["epoch"] for c in cells} == {"none": 1.0, "lora-reparam": 2.0}
    assert main(["report", str(store_file), "--out", str(tmp_path / "report"), "--projection", "pca"]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "blend" in report and "lora-reparam" in report


def test_the_packaged_efficientnet_lite0_gives_pooled_features_and_lora_places() -> None:
    from modfit.config import ModelConfig
    from modfit.vision import load_image_classifier

    model, preprocess = load_image_classifier(ModelConfig(image_size=32), num_labels=10, seed=0)
    with torch.no_grad():
        logits = model.eval()(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 10) and model.head.in_features == 1280
    assert preprocess.size == 32 and preprocess.mean == (0.5, 0.5, 0.5)
    tuned = apply_tuning(model, "lora", {"target_modules": ["_expand_conv", "_project_conv", "_conv_head"],
                                          "reparam": {"in_dim": 2, "mid_dim": 2}})  # fmt: skip
    placed = [n for n, _ in tuned.named_parameters() if ".lora_A." in n]
    assert (
        len(placed) == 15 + 16 + 1
    )  # 15 expansions (the first block has none), 16 projections, the head conv
