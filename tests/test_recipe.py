"""The reparameterized presets are the paper's authors' recipe (issue 26), pinned as facts.

The reference is the authors' code, thunlp/Moderate-fitting (an OpenDelta fork):
`opendelta/delta_models/{lora,adapter,prefix}.py`, `opendelta/basemodel.py` and
`examples/examples_text-classification/configs/{lora,adapter,prefix}_roberta-base-sst2-badnet-5/sst2_mid2.json`
run by `run_glue_poison.py` with the Hugging Face Trainer's defaults. The counts below are worked out by
hand from that code for roberta-base and checked on a model of roberta-base's size built from
`RobertaConfig()`'s defaults (12 layers, H 768, 12 heads; random weights, nothing downloaded).
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from modfit import ModfitError, resolve
from modfit.config import ModelConfig, TrainConfig
from modfit.model import Classifier
from modfit.train import plan_steps
from modfit.tuning import apply_tuning, count_generated, count_trainable
from modfit.tuning.adapter import AdaptedBlock, Bottleneck

H, LAYERS, LABELS = 768, 12, 2
# RoBERTa's classification head: dense H×H + bias, out_proj 2×H + bias.
HEAD = H * H + H + LABELS * H + LABELS  # 592,130
PRESETS = ("lora-reparam", "adapter-reparam", "prefix-reparam")


@pytest.fixture(scope="module", params=PRESETS)
def roberta_base(request) -> tuple[str, torch.nn.Module]:
    """(preset, a roberta-base-sized classifier with the preset's head and tuning), seed 0."""
    from transformers import RobertaConfig, RobertaModel

    experiment = resolve({"defence": request.param, "model": {"name": "roberta-base"}})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = RobertaModel(RobertaConfig())
    classifier = Classifier(encoder, LABELS, "cls", head=experiment.model.head)
    return request.param, apply_tuning(
        classifier, experiment.tuning.method, experiment.tuning.options, seed=0
    )


# Per preset: (trainable, generated), from the authors' code.
COUNTS = {
    # lora.py: generator 1 makes the head and 24 lora_A (query and value of 12 layers, r 8 × 768):
    # total1 = 592,130 + 24·8·768 = 739,586; generator 2 makes the 24 lora_B (768 × 8): total2 = 147,456.
    # Trainable: in_embed1 (2) + W1 (2·2) + W2 (total1·2) + in_embed2 (2) + W1' (2·2) + W2' (total2·2)
    #   = 6 + 1,479,172 + 6 + 294,912 = 1,774,096; generated: 739,586 + 147,456 = 887,042.
    "lora-reparam": (6 + 739_586 * 2 + 6 + 147_456 * 2, HEAD + 24 * 8 * H + 24 * H * 8),
    # adapter.py: one generator for the head and 24 adapters (attn and ff of 12 layers), each
    # down 768·24 + 24 and up 24·768 + 768 = 37,656: total = 592,130 + 24·37,656 = 1,495,874.
    # Trainable: in_embed1 (2) + W1 (2·2) + W2 (total·2) = 6 + 2,991,748 = 2,991,754.
    "adapter-reparam": (6 + 1_495_874 * 2, HEAD + 24 * (H * 24 + 24 + 24 * H + H)),
    # prefix.py: wte = Embedding(24, 512) (12,288), control_trans = Linear(512, 2) (1,024 + 2) → tanh →
    # Linear(2, 12·2·768 = 18,432) (36,864 + 18,432): 68,610; the head's generator: in_embed1 (512) +
    # Linear(512, 2, no bias) (1,024) + Linear(2, 592,130, no bias) (1,184,260): 1,185,796.
    # Trainable 68,610 + 1,185,796 = 1,254,406; generated 24 tokens · 18,432 = 442,368 prefix values
    # plus the head: 1,034,498.
    "prefix-reparam": (
        (24 * 512 + 512 * 2 + 2 + 2 * 18_432 + 18_432) + (512 + 512 * 2 + HEAD * 2),
        24 * LAYERS * 2 * H + HEAD,
    ),
}


def test_the_hand_counts_are_the_written_numbers():
    assert COUNTS == {
        "lora-reparam": (1_774_096, 887_042),
        "adapter-reparam": (2_991_754, 1_495_874),
        "prefix-reparam": (1_254_406, 1_034_498),
    }


def test_trainable_and_generated_counts_are_the_authors(roberta_base):
    preset, model = roberta_base
    assert (count_trainable(model), count_generated(model)) == COUNTS[preset]


def test_the_head_is_robertas_and_is_generated(roberta_base):
    _, model = roberta_base
    head = model.classifier.head
    shapes = {f"head.{name}": tuple(p.shape) for name, p in head.named_parameters()}
    assert shapes == {"head.dense.weight": (H, H), "head.dense.bias": (H,),
                      "head.out_proj.weight": (LABELS, H), "head.out_proj.bias": (LABELS,)}  # fmt: skip
    assert head.dropout.p == 0.1  # roberta-base's hidden_dropout_prob
    assert set(shapes) <= set(model.generate())
    assert not any(p.requires_grad for p in model.classifier.parameters())


def _bound(fan_in: int) -> float:
    """nn.Linear's init: U(±1/sqrt(fan_in)) for weight and bias."""
    return 1 / math.sqrt(fan_in)


def test_the_initial_distributions_are_the_authors(roberta_base):
    preset, model = roberta_base
    g = dict(model.generators.items())
    if preset == "lora-reparam":
        main, b = g["main"], g["lora_b"]
        assert main.e.shape == (1, 2) and bool(((main.e >= 0) & (main.e < 1)).all())  # U(0, 1)
        assert main.w1.abs().max() <= _bound(2) and main.w2.abs().max() <= _bound(2)  # nn.Linear's
        assert main.w2.std().item() == pytest.approx(_bound(2) / math.sqrt(3), rel=0.01)
        assert not b.e.any() and b.w2.abs().max() <= _bound(2) and b.w2.std() > 0.3  # e2 = 0, W2' drawn
        generated = model.generate()
        assert all(not t.any() for name, t in generated.items() if ".lora_B." in name)  # B exactly zero
        assert all(t.any() for name, t in generated.items() if ".lora_A." in name)
    elif preset == "adapter-reparam":
        (main,) = g.values()
        assert main.w2.std().item() == pytest.approx(0.01, rel=0.01)  # N(0, 0.01), 3 M draws
        assert abs(main.w2.mean().item()) < 1e-4
        assert main.e.abs().max() < 0.05 and main.w1.abs().max() < 0.05  # N(0, 0.01): 5 sigma
        # so the adapters and the head start near zero: |theta| <~ 0.01 · 2 · tanh(|W1 e|) ~ 1e-5
        assert max(t.abs().max().item() for t in model.generate().values()) < 1e-3
    else:
        prefix, head = g["prefix"], g["head"]
        assert prefix.e.shape == (24, 512) and prefix.e.std().item() == pytest.approx(
            1.0, rel=0.05
        )  # Embedding
        assert prefix.b1 is not None and prefix.b1.abs().max() <= _bound(512) and prefix.b1.any()
        assert prefix.w1.abs().max() <= _bound(512) and prefix.w1.std().item() == pytest.approx(
            _bound(512) / math.sqrt(3), rel=0.05
        )
        assert prefix.b2.shape == (LAYERS * 2 * H,) and prefix.b2.abs().max() <= _bound(2) and prefix.b2.any()
        assert head.b1 is None and head.b2 is None  # the head's generator has no biases
        assert head.e.shape == (1, 512) and bool(((head.e >= 0) & (head.e < 1)).all())
        assert head.e.mean().item() == pytest.approx(0.5, abs=0.05)
        assert head.w1.abs().max() <= _bound(512) and head.w2.abs().max() <= _bound(2)


def test_the_adapter_sits_after_the_attention_block_and_the_ffn_output_block(roberta_base):
    preset, model = roberta_base
    if preset != "adapter-reparam":
        pytest.skip("adapter placement")
    for layer in model.classifier.encoder.encoder.layer:
        for block in (layer.attention, layer.output):
            assert isinstance(block, AdaptedBlock) and isinstance(block.adapter, Bottleneck)
            assert block.adapter.act.approximate == "tanh"  # gelu_new
            assert (block.adapter.down.out_features, block.adapter.down.bias is not None) == (24, True)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("model", [None, "roberta-base"])
def test_each_preset_resolves_to_the_authors_schedule(preset, model):
    experiment = resolve({"defence": preset, "model": {"name": model}})
    assert experiment.train == TrainConfig(
        lr=3e-4, epochs=10.0, batch_size=32, warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0,
        select="last", precision="fp32", group_by_length=False, head_lr_scale=1.0,
        eval_every=0, eval_size=None, eval_share=TrainConfig.eval_share,
    )  # fmt: skip
    assert experiment.model == ModelConfig(name=model, head="roberta", max_length=128)
    # 6,920 SST-2 training rows in batches of 32: 217 steps an epoch, 2,170 steps (the paper's).
    assert plan_steps(6920, experiment.train) == (217, 2170)


def test_each_preset_resolves_to_the_authors_tuning():
    tuning = {p: resolve({"defence": p}).tuning for p in PRESETS}
    assert (tuning["lora-reparam"].method, tuning["lora-reparam"].options) == ("lora", {
        "rank": 8, "alpha": 16, "target_modules": ["query", "value"],
        "reparam": {"in_dim": 2, "mid_dim": 2, "init": "paper"}})  # fmt: skip
    assert (tuning["adapter-reparam"].method, tuning["adapter-reparam"].options) == ("adapter", {
        "bottleneck": 24, "placement": "after-norm", "activation": "gelu_new",
        "reparam": {"in_dim": 2, "mid_dim": 2, "init": "paper"}})  # fmt: skip
    assert (tuning["prefix-reparam"].method, tuning["prefix-reparam"].options) == ("prefix", {
        "tokens": 24, "reparam": {"in_dim": 512, "mid_dim": 2, "init": "paper", "bias": True}})  # fmt: skip


def test_the_roberta_head_gives_robertas_logits(tiny_roberta):
    """The same encoder and head weights in transformers' RobertaForSequenceClassification give the
    same logits: the head reads the first token's hidden state, not the pooler."""
    from transformers import AutoModel, AutoTokenizer, RobertaForSequenceClassification

    encoder = AutoModel.from_pretrained(tiny_roberta)
    ours = Classifier(encoder, LABELS, "cls", head="roberta").eval()
    config = copy.deepcopy(encoder.config)
    config.num_labels = LABELS
    stock = RobertaForSequenceClassification(config)
    unused = stock.roberta.load_state_dict(encoder.state_dict(), strict=False)
    assert not unused.missing_keys and all(k.startswith("pooler.") for k in unused.unexpected_keys)
    stock.classifier.load_state_dict(ours.head.state_dict())
    inputs = dict(AutoTokenizer.from_pretrained(tiny_roberta)(["good movie", "the film was awful"],
                                                              padding=True, return_tensors="pt"))  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(ours(**inputs), stock.eval()(**inputs).logits)


def test_the_roberta_head_takes_no_mean_pooling():
    with pytest.raises(ModfitError, match="head roberta reads the first token"):
        ModelConfig(head="roberta", pooling="mean")
    assert resolve({"defence": "lora-reparam"}).model.pooling is None  # resolved to the first token


def _gelu_new(x: torch.Tensor) -> torch.Tensor:
    """OpenDelta's `gelu_new` (opendelta/delta_models/layers/activations.py), written out."""
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


def test_an_after_norm_adapter_is_opendeltas_sequential_adapter(tiny_bert):
    """OpenDelta's `insert_sequential_module` + `AdapterLayer.post_forward` on the common structure's
    `attn` (layer.attention, a tuple out) and `ff` (layer.output): h → h + up(gelu_new(down(h)))."""
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(tiny_bert).eval()
    reference = copy.deepcopy(encoder)
    options = {"placement": "after-norm", "activation": "gelu_new"}
    tuned = apply_tuning(Classifier(encoder, 2, "cls"), "adapter", options, seed=0).eval()
    generator = torch.Generator().manual_seed(1)
    blocks = {n: m for n, m in tuned.classifier.encoder.named_modules() if isinstance(m, AdaptedBlock)}
    assert sorted(blocks) == [f"encoder.layer.{i}.{b}" for i in range(2) for b in ("attention", "output")]

    def post_forward(adapter):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            new = hidden + adapter.up(_gelu_new(adapter.down(hidden)))
            return (new, *output[1:]) if isinstance(output, tuple) else new

        return hook

    with torch.no_grad():
        for name, block in blocks.items():
            block.adapter.up.weight.copy_(torch.randn(block.adapter.up.weight.shape, generator=generator))
            reference.get_submodule(name).register_forward_hook(post_forward(block.adapter))
        ids = torch.tensor([[2, 12, 15, 20, 3], [2, 14, 3, 0, 0]])
        mask = (ids != 0).long()
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        mine = tuned.classifier.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(mine, expected)
    assert not torch.allclose(
        mine, encoder.__class__.from_pretrained(tiny_bert).eval()(ids, mask).last_hidden_state
    )


@pytest.mark.parametrize("preset", PRESETS)
def test_a_preset_model_saves_and_loads_with_its_head(tiny_roberta, tmp_path, preset):
    from transformers import AutoModel, AutoTokenizer

    from modfit.tuning import load_model, ship

    tuning = resolve({"defence": preset}).tuning
    classifier = Classifier(AutoModel.from_pretrained(tiny_roberta), 2, "cls", head="roberta")
    model = apply_tuning(classifier, tuning.method, tuning.options, seed=3).eval()
    with torch.no_grad():
        for p in model.generators.parameters():
            p.add_(0.01)
    tokenizer = AutoTokenizer.from_pretrained(tiny_roberta)
    ship(model, tokenizer, method=tuning.method, max_length=32).save(tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    inputs = dict(tokenizer(["good movie", "a dull film"], padding=True, return_tensors="pt"))
    assert loaded.about["pooling"] == "cls"
    assert json.loads((tmp_path / "model" / "config.json").read_text())["architectures"] in (
        ["RobertaForSequenceClassification"], ["ModfitForSequenceClassification"])  # fmt: skip
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs), model(**inputs), atol=1e-5)


@pytest.mark.parametrize("preset", ["lora-reparam", "adapter-reparam"])
def test_on_mpnet_base_the_recipe_has_roberta_bases_counts(preset):
    """all-mpnet-base-v2 has roberta-base's sizes (12 layers, H 768), so the authors' counts hold there
    too once LoRA and the adapters find MPNet's own attention modules (`attn.q`, `attn.v`)."""
    from transformers import MPNetConfig, MPNetModel

    experiment = resolve({"defence": preset, "model": {"name": "all-mpnet-base-v2"}})
    assert experiment.model.head == "roberta" and experiment.train.lr == 3e-4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        encoder = MPNetModel(MPNetConfig())
    classifier = Classifier(encoder, LABELS, "cls", head=experiment.model.head)
    model = apply_tuning(classifier, experiment.tuning.method, experiment.tuning.options, seed=0)
    assert (count_trainable(model), count_generated(model)) == COUNTS[preset]
