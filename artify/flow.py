"""Optical flow, warping and occlusion masks.

Used by the temporal Gatys loss (warp the previous stylized frame, mask unreliable pixels), the segmenter
(carry masks along the motion) and the metrics (warping error as Lai et al. 2018 compute it).

Convention everywhere: `flow` is an (H, W, 2) float32 array (x, y displacement in pixels) giving, for each
pixel x of frame a, where that point is in frame b:  a(x) ≈ b(x + flow(x)). Warping is *backward*:
`warp(b, flow)(x) = b(x + flow(x))`, which brings b into a's pixel grid. Two flows: OpenCV DIS (no
weights, milliseconds) and RAFT with its pretrained networks (`artify.raft`); `FlowMethod` says which and how,
`flow_method` picks the stylization's from the settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from artify.methods.registry import method_for  # declarations only: no method is imported
from artify.settings import Settings

if TYPE_CHECKING:  # torch is imported where it is used: the flow stage (DIS) runs without it
    import torch


def _gray(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise TypeError(f"optical flow needs uint8 RGB frames, got {frame.dtype}")
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"optical flow needs (H, W, 3) RGB frames, got shape {frame.shape}")
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Flow from frame a to frame b (a(x) ≈ b(x + flow(x))), OpenCV DIS, preset MEDIUM.

    DIS needs no weights, runs in milliseconds on a CPU at our processing sizes, and is accurate enough for
    consistency masks and metrics; it works on luminance, so RGB uint8 frames are converted to gray here.
    A fresh DIS object per call keeps this safe to call from several threads. DIS picks its pyramid depth
    from the frame size: at 128 px wide it tracks motions up to about 16 px, at 512 px about 64 px; larger
    motions come out wrong and are then flagged by `occlusion_mask`'s consistency check.
    """
    ga, gb = _gray(a), _gray(b)
    if ga.shape != gb.shape:
        raise ValueError(f"frames differ in size: {ga.shape} vs {gb.shape}")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(ga, gb, None)
    return np.ascontiguousarray(flow, dtype=np.float32)


def _sample_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs + flow[..., 0].astype(np.float32), ys + flow[..., 1].astype(np.float32)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: out(x) = image(x + flow(x)), bilinear, border replicated (cv2.remap).

    With `flow` = dis_flow(a, b), `warp(b, flow)` is b brought into a's pixel grid, so it can be compared to
    a pixel by pixel. Works for (H, W), (H, W, C) arrays of any dtype cv2 handles (uint8 stays uint8).
    Replicating the border (as Lai et al.'s Resample2d clamps coordinates) avoids black bands where the
    flow points just outside the frame; those pixels are usually masked anyway.
    """
    image = np.asarray(image)
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    map_x, map_y = _sample_maps(flow)
    if image.dtype == np.float64:
        image = image.astype(np.float32)
    if image.ndim == 3 and image.shape[2] > 4:  # cv2.remap takes at most 4 channels at once
        return np.stack([warp(image[..., c], flow) for c in range(image.shape[2])], axis=-1)
    out = cv2.remap(np.ascontiguousarray(image), map_x, map_y, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    if image.ndim == 3 and out.ndim == 2:  # cv2 drops a trailing channel axis of size 1
        out = out[..., None]
    return out


def warp_torch(tensor: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp in torch, differentiable, on any device: out(x) = tensor(x + flow(x)).

    tensor (N, C, H, W), flow (N, 2, H, W) in pixels (x then y). grid_sample with align_corners=True and
    border padding samples exactly like `warp` (cv2.remap, bilinear, replicated border), up to cv2's
    1/32-pixel fixed-point interpolation weights.
    """
    import torch
    import torch.nn.functional as F

    if tensor.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"need tensor (N,C,H,W) and flow (N,2,H,W), got {tuple(tensor.shape)}, {tuple(flow.shape)}")
    n, _, h, w = tensor.shape
    if flow.shape[0] != n or flow.shape[2:] != tensor.shape[2:]:
        raise ValueError(f"tensor {tuple(tensor.shape)} and flow {tuple(flow.shape)} do not match")
    flow = flow.to(dtype=tensor.dtype, device=tensor.device)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=tensor.dtype, device=tensor.device),
                            torch.arange(w, dtype=tensor.dtype, device=tensor.device), indexing="ij")
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(tensor, grid, mode="bilinear", padding_mode="border", align_corners=True)


def flow_to_torch(flow: np.ndarray, device="cpu") -> torch.Tensor:
    """(H, W, 2) or (N, H, W, 2) numpy flow -> (N, 2, H, W) float tensor for `warp_torch`."""
    import torch

    t = torch.from_numpy(np.array(flow, dtype=np.float32, copy=True))
    if t.dim() == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).contiguous().to(device)


def occlusion_mask(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """Reliable pixels of frame t (1) versus occluded or motion-boundary pixels (0), float32 (H, W).

    flow_fwd = F (t -> t+1), flow_bwd = B (t+1 -> t). Follows Lai et al. 2018's reference code
    (fast_blind_video_consistency: compute_flow_occlusion.py calls utils.detect_occlusion(bw_flow, fw_flow),
    i.e. the check in frame t's grid), itself the check of Ruder et al. 2016:
      B̃(x) = B(x + F(x))                               (backward flow warped to t by F)
      occluded       if |B̃ + F|² > 0.01 (|B̃|² + |F|²) + 0.5
      motion boundary if |∂x F|² + |∂y F|² > 0.01 |F|² + 0.002
    where the gradients of both flow components are forward differences (0 on the last column/row) and
    their squares are summed, exactly as the reference's compute_flow_gradients.
    Where a point has a consistent round trip, F and B̃ cancel; where it is hidden in t+1 (or the flow is
    wrong), they do not, and the temporal loss or the metric must not compare those pixels.
    """
    fwd = np.asarray(flow_fwd, dtype=np.float32)
    bwd = np.asarray(flow_bwd, dtype=np.float32)
    if fwd.shape != bwd.shape or fwd.ndim != 3 or fwd.shape[2] != 2:
        raise ValueError(f"need two (H, W, 2) flows of one size, got {fwd.shape} and {bwd.shape}")
    bwd_w = warp(bwd, fwd)
    fb = bwd_w + fwd
    fb_mag = fb[..., 0] ** 2 + fb[..., 1] ** 2
    bwd_w_mag = bwd_w[..., 0] ** 2 + bwd_w[..., 1] ** 2
    fwd_mag = fwd[..., 0] ** 2 + fwd[..., 1] ** 2
    occluded = fb_mag > 0.01 * (bwd_w_mag + fwd_mag) + 0.5

    grad = np.zeros(fwd.shape[:2], np.float32)
    for c in range(2):
        comp = fwd[..., c]
        du = np.zeros_like(comp)
        dv = np.zeros_like(comp)
        du[:, :-1] = comp[:, :-1] - comp[:, 1:]
        dv[:-1, :] = comp[:-1, :] - comp[1:, :]
        grad += du ** 2 + dv ** 2
    boundary = grad > 0.01 * fwd_mag + 0.002
    return (~(occluded | boundary)).astype(np.float32)


def flow_pair(a: np.ndarray, b: np.ndarray, flow=dis_flow) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(forward flow a->b, backward flow b->a, reliable-pixel mask of a) with `flow` (DIS by default)."""
    fwd = flow(a, b)
    bwd = flow(b, a)
    return fwd, bwd, occlusion_mask(fwd, bwd)


@dataclass(frozen=True)
class FlowMethod:
    """Which optical flow, and how: OpenCV DIS, or RAFT (`artify.raft`) with its network, refinement
    iterations, the scale it runs at (of the frames' size), arithmetic and device; `weights`
    replaces the pinned checkpoint. `pairs` gives the flows of many frame pairs at once (RAFT batches them)."""
    method: str = "dis"
    raft_model: str = "large"
    raft_iterations: int = 12
    raft_scale: float = 1.0
    precision: str = "auto"
    device: str = "cpu"
    weights: str = ""

    def pairs(self, firsts, seconds) -> np.ndarray:
        """(N, H, W, 2) float32: the flow firsts[i] -> seconds[i] for every i."""
        if self.method == "dis":
            flows = [dis_flow(a, b) for a, b in zip(firsts, seconds, strict=True)]
            return np.stack(flows) if flows else np.zeros((0, 0, 0, 2), np.float32)
        if self.method != "raft":
            raise ValueError(f"unknown flow method {self.method!r} (dis, raft)")
        from artify.raft import raft_flows

        return raft_flows(firsts, seconds, self.raft_model, self.raft_iterations, self.raft_scale, self.device,
                          self.precision, self.weights)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The flow a -> b (H, W, 2)."""
        return self.pairs([a], [b])[0]

    def describe(self) -> dict:
        """What a figure was measured with (metrics.json's `flow`): enough to redo it."""
        if self.method == "dis":
            return {"method": "dis", "preset": "medium", "opencv": cv2.__version__}
        from artify.devices import autocast_dtype
        from artify.raft import CHECKPOINTS

        dtype = autocast_dtype(self.device, self.precision)
        return {"method": "raft", "model": f"raft_{self.raft_model}", "iterations": self.raft_iterations,
                "scale": self.raft_scale, "precision": str(dtype or "torch.float32").removeprefix("torch."),
                "checkpoint": self.weights or f"{CHECKPOINTS[self.raft_model][0].rsplit('/', 1)[1]} "
                                              f"sha256:{CHECKPOINTS[self.raft_model][1][:16]}"}


DIS = FlowMethod()


def flow_method(settings: Settings, device: str = "cpu") -> FlowMethod:
    """The stylization's flow from the settings. flow_method auto (chosen from bench/flow.py's table, see
    config/README.md): on CUDA the method's own choice (`Method.flow_on_cuda`: RAFT for the optimising methods,
    where its seconds are small beside theirs), DIS on the CPU, where RAFT costs about as much per frame as
    Gatys itself."""
    method = settings.flow_method
    if method == "auto":
        cuda = str(device).startswith("cuda")
        method = method_for(settings.method).flow_on_cuda if cuda else "dis"
    return FlowMethod(method, settings.raft_model, settings.raft_iterations, settings.raft_scale,
                      settings.raft_precision, str(device), settings.raft_weights)


def backward_flows(frames: np.ndarray, offsets=(1,), flow: FlowMethod = DIS) -> dict[str, np.ndarray]:
    """For every frame t and offset k: the flow t -> t-k and its reliable-pixel mask, on frame t's grid.

    This is what the temporal loss needs: the stylized frame t-k warped by `flow_k[t]` lands on frame t, and
    `mask_k[t]` (forward-backward consistency + motion boundaries) says where that warp can be trusted.
    Frames t < k have no predecessor: zero flow and an all-zero mask. Returns float16 flows (they are
    cached on disk per chunk) and uint8 masks.
    """
    n, h, w = frames.shape[:3]
    out = {}
    for k in offsets:
        flows = np.zeros((n, h, w, 2), np.float16)
        masks = np.zeros((n, h, w), np.uint8)
        later, earlier = list(frames[k:]), list(frames[:max(n - k, 0)])
        if later:  # both directions in one batch
            both = flow.pairs(later + earlier, earlier + later)
            to_prev, to_next = both[:len(later)], both[len(later):]
            flows[k:] = to_prev
            masks[k:] = np.stack([occlusion_mask(p, q) > 0.5 for p, q in zip(to_prev, to_next)])
        out[f"flow_{k}"], out[f"mask_{k}"] = flows, masks
    return out


def flow_chunk(frames_video, out, settings: Settings, threads: int | None = None) -> None:
    """The flow stage: backward flows and reliable-pixel masks of one chunk's frames (`backward_flows` at
    offset 1 and the `long_term` offsets), for the temporal terms, with the flow the settings choose
    (`flow_method`). DIS needs neither torch nor a GPU, so this stage imports neither when DIS is chosen."""
    from artify.devices import auto_device
    from artify.media.video import read_frames

    flow = flow_method(settings, auto_device(settings.device))
    if threads:
        cv2.setNumThreads(threads)
        if flow.method == "raft":
            import torch

            torch.set_num_threads(threads)
    offsets = [1] + [int(k) for k in settings.long_term.split(",") if k]
    frames = read_frames(frames_video)
    save_flows(out, backward_flows(frames, sorted(set(offsets)), flow))


def save_flows(path, flows: dict[str, np.ndarray]) -> None:
    """Write atomically."""
    from artify.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file, not a name: numpy would add .npz to a name without it
            np.savez_compressed(f, **flows)


def load_flows(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
