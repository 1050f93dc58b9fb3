"""PEFT methods and the reparameterization network on tiny BERT/RoBERTa/MPNet models built in the test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import error_of, save_tiny_model, separable_rows
from modfit import Classifier, Example, ModfitError, TrainConfig, fit, resolve
from modfit.encoding import encode
from modfit.evaluate import predict
from modfit.tuning import apply_tuning, count_generated, count_trainable
from modfit.tuning.prefix import PrefixSelfAttention
from modfit.tuning.reparam import Generator

METHODS = ("lora", "adapter", "prefix")
REPARAM = {"reparam": {"in_dim": 2, "mid_dim": 2}}
TEXTS = ["good movie the plot", "the film was awful", "a nice actor", "boring scene very dull is the story"]


def build(folder: Path, method: str, options: dict, pooling: str = "cls", seed: int = 0) -> torch.nn.Module:
    from transformers import AutoModel

    return apply_tuning(Classifier(AutoModel.from_pretrained(folder), 2, pooling), method, options, seed)


def batch(folder: Path, texts=TEXTS) -> dict[str, torch.Tensor]:
    from transformers import AutoTokenizer

    return dict(AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt"))


def encoded(folder: Path, count: int, seed: int):
    from transformers import AutoTokenizer

    rows = [Example(text, label) for text, label in separable_rows(count, seed)]
    return encode(rows, AutoTokenizer.from_pretrained(folder), 32)


@pytest.fixture(scope="session")
def trained_backbones(tmp_path_factory) -> dict[str, Path]:
    """Tiny encoders fine-tuned once on the word task, so that their features mean something.

    A frozen random 2-layer encoder represents the sentiment word too weakly for any frozen-backbone
    method to learn from in a few steps; a pre-trained encoder is what these methods adapt.
    """
    from transformers import AutoTokenizer

    folders = {}
    for architecture in ("bert", "roberta", "mpnet"):
        raw = save_tiny_model(tmp_path_factory.mktemp(f"raw-{architecture}"), architecture)
        model = build(raw, "full", {})
        fit(model, encoded(raw, 64, seed=5), TrainConfig(epochs=10, lr=3e-3, batch_size=8), seed=0)
        folder = tmp_path_factory.mktemp(f"trained-{architecture}")
        model.encoder.save_pretrained(folder)
        AutoTokenizer.from_pretrained(raw).save_pretrained(folder)
        folders[architecture] = folder
    return folders


def perturb_trained(model: torch.nn.Module, seed: int = 1) -> None:
    """Stand-in for training: moves every trainable tensor, so round trips test real values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=generator) * 0.1)


@pytest.mark.parametrize("method", METHODS)
def test_generated_tensors_have_the_placeholders_shapes(tiny_bert, method):
    model = build(tiny_bert, method, REPARAM)
    generated = model.generate()
    assert set(generated) == set(model.tuned)
    for name, tensor in generated.items():
        assert tensor.shape == model.classifier.get_parameter(name).shape
    assert generated["head.weight"].shape == (2, 32)
    if method == "prefix":
        assert generated["encoder.encoder.layer.1.attention.self.prefix_value"].shape == (24, 32)


@pytest.mark.parametrize(
    ("method", "options", "trainable", "generated"),
    [
        # A: 4 x (8 x 32), head 2 x 32 + 2 -> main 1,090; B: 4 x (32 x 8) = 1,024.
        # Each generator: e (2) + W1 (2 x 2) + W2 (total x 2).
        ("lora", REPARAM, (2 + 4 + 1090 * 2) + (2 + 4 + 1024 * 2), 1090 + 1024),
        ("lora", {}, 1090 + 1024, 0),
        # 4 adapters of down (32 x 24 + 24) and up (24 x 32 + 32), and the head.
        ("adapter", REPARAM, 2 + 4 + 6434 * 2, 4 * (792 + 800) + 66),
        # 24 tokens x in_dim 2; W2 makes 2 layers x key/value x 32 per token; the head's own generator.
        ("prefix", REPARAM, (24 * 2 + 4 + 128 * 2) + (2 + 4 + 66 * 2), 2 * 2 * 24 * 32 + 66),
        ("prefix", {}, 2 * 2 * 24 * 32 + 66, 0),
        ("lora", {"rank": 4, "target_modules": ["query"], "reparam": {"in_dim": 3, "mid_dim": 1}},
         (3 + 3 + (2 * 4 * 32 + 66) * 1) + (3 + 3 + 2 * 32 * 4 * 1), 2 * 4 * 32 + 66 + 2 * 32 * 4),
    ],
)  # fmt: skip
def test_trainable_and_generated_counts_match_a_hand_computation(
    tiny_bert, method, options, trainable, generated
):
    model = build(tiny_bert, method, options)
    assert (count_trainable(model), count_generated(model)) == (trainable, generated)


@pytest.mark.parametrize("method", METHODS)
def test_only_generators_train_and_the_backbone_stays_bit_identical(tiny_roberta, method):
    model = build(tiny_roberta, method, REPARAM)
    frozen = {name: t.clone() for name, t in model.classifier.state_dict().items()}
    generators = {name: p.clone() for name, p in model.generators.named_parameters()}

    model(**batch(tiny_roberta)).sum().backward()
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {f"generators.{name}" for name in generators}
    model.zero_grad()

    fit(model, encoded(tiny_roberta, 16, seed=0), TrainConfig(epochs=1, lr=1e-2, batch_size=8), seed=0)
    for name, tensor in model.classifier.state_dict().items():
        assert torch.equal(tensor, frozen[name]), name
    for name, p in model.generators.named_parameters():
        assert not torch.equal(p, generators[name]), name


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("architecture", ["bert", "roberta"])
def test_lora_reparam_starts_exactly_at_backbone_plus_generated_head(
    tiny_bert, tiny_roberta, architecture, pooling
):
    folder = tiny_bert if architecture == "bert" else tiny_roberta
    model = build(folder, "lora", REPARAM, pooling).eval()
    backbone = build(folder, "head", {}, pooling).eval()
    inputs = batch(folder)
    generated = model.generate()
    for name, tensor in generated.items():
        if ".lora_B." in name:
            assert not tensor.any()
    with torch.no_grad():
        expected = torch.nn.functional.linear(
            backbone.features(**inputs), generated["head.weight"], generated["head.bias"]
        )
        assert torch.equal(model(**inputs), expected)


def test_prefix_attention_equals_attending_to_extra_tokens(tiny_bert):
    """Prefix keys/values made from extra tokens give those tokens' rows of plain self-attention."""
    from transformers import AutoModel

    attention = AutoModel.from_pretrained(tiny_bert).eval().encoder.layer[0].attention.self
    hidden = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(0))
    extra, states = hidden[:, :3], hidden[:, 3:]
    wrapped = PrefixSelfAttention(attention, tokens=3, init_std=0.0).eval()
    with torch.no_grad():
        full, _ = attention(hidden[:1])
        wrapped.prefix_key.copy_(attention.key(extra[0]))
        wrapped.prefix_value.copy_(attention.value(extra[0]))
        mine, _ = wrapped(states[:1])
    torch.testing.assert_close(mine, full[:, 3:], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("method", "options", "places"),
    [
        ("lora", {}, {"attention.attn.q", "attention.attn.v"}),  # BERT's query and value
        ("adapter", {}, {"attention.attn.o", "output.dense"}),  # BERT's attention.output.dense, output.dense
        ("adapter", {"placement": "after-norm"}, {"attention", "output"}),
    ],
)
def test_mpnet_gets_each_method_where_bert_has_it_with_the_same_counts(
    tiny_bert, tiny_mpnet, method, options, places
):
    mpnet = build(tiny_mpnet, method, {**options, **REPARAM})
    bert = build(tiny_bert, method, {**options, **REPARAM})
    assert (count_trainable(mpnet), count_generated(mpnet)) == (count_trainable(bert), count_generated(bert))
    layer = "encoder.encoder.layer.1."
    placed = {
        name.removeprefix(layer).split(".lora_")[0].split(".adapter.")[0]
        for name in mpnet.tuned
        if name.startswith(layer)
    }
    assert placed == places


def test_prefix_on_mpnet_is_a_one_line_error_at_build_time(tiny_mpnet):
    message = error_of(build, tiny_mpnet, "prefix", REPARAM)
    assert message.startswith("prefix: MPNet's attention") and message.endswith("use lora or adapter")


@pytest.mark.parametrize("method", METHODS)
def test_an_encoder_without_bert_style_layers_is_a_one_line_error(method):
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(
        vocab_size=50, dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=16
    )
    classifier = Classifier(DistilBertModel(config), 2, "mean")
    with pytest.raises(ModfitError) as error:
        apply_tuning(classifier, method, {})
    assert "cannot place" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rnak": 8}, "lora options: unknown key 'rnak'"),
        ({"reparam": {"mid_dim": 0}}, "mid_dim 0"),
        ({"reparam": {"init": "xavier"}}, "use matched or paper"),
        ({"reparam": {"bias": True}}, "only prefix's generator has biases"),
    ],
)
def test_bad_options_are_one_line_errors(tiny_bert, options, message):
    with pytest.raises(ModfitError, match=message):
        build(tiny_bert, "lora", options)


def test_generator_cuts_theta_in_order():
    generator = Generator([("a", torch.Size([2, 3])), ("b", torch.Size([4]))], in_dim=2, mid_dim=1)
    with torch.no_grad():
        generator.e.fill_(1.0)
        generator.w1.fill_(0.5)
        generator.w2.copy_(torch.arange(10.0).unsqueeze(1))
    t = torch.tanh(torch.tensor(1.0))
    out = generator()
    assert torch.allclose(out["a"], (torch.arange(6.0) * t).view(2, 3))
    assert torch.allclose(out["b"], torch.arange(6.0, 10.0) * t)


@pytest.mark.parametrize("defence", ["lora-reparam", "adapter-reparam", "prefix-reparam"])
def test_presets_select_a_reparameterized_method_and_user_settings_win(defence):
    experiment = resolve({"defence": defence, "tuning": {"options": {"reparam": {"mid_dim": 1}}}})
    assert experiment.tuning.method == defence.removesuffix("-reparam")
    assert experiment.tuning.options["reparam"]["mid_dim"] == 1
    assert experiment.tuning.options["reparam"]["in_dim"] == (512 if defence == "prefix-reparam" else 2)


@pytest.mark.parametrize("options", [{}, REPARAM], ids=["plain", "reparam"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("architecture", "pooling"), [("bert", "mean"), ("roberta", "cls"), ("mpnet", "mean")])
def test_each_method_learns_the_separable_task(trained_backbones, architecture, pooling, method, options):
    if (architecture, method) == ("mpnet", "prefix"):
        pytest.skip("prefix refuses MPNet (test_prefix_on_mpnet_is_a_one_line_error_at_build_time)")
    folder = trained_backbones[architecture]
    model = build(folder, method, options, pooling)
    fit(model, encoded(folder, 64, seed=0), TrainConfig(epochs=4, lr=1e-2, batch_size=8), seed=0)
    test = encoded(folder, 48, seed=2)
    accuracy = sum(p == y for p, y in zip(predict(model, test), test.labels, strict=True)) / len(test)
    assert accuracy >= 0.9
