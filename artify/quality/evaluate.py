"""Metrics of a stylized video against its input: temporal stability, style and content.

- Warping error (Lai et al. 2018), on flows of the *input* (the output's own flow would reward a video
  whose flow is garbage); reported for the input too, as the floor that a perfectly stable output reaches.
- Flicker: frame-to-frame change of the output where the input is static — what a viewer sees as flicker.
- Style distance: Gram distance of each output frame to its scheduled target (a mix of keyframe Grams).
- Content distance (VGG relu4_2) and SSIM (luminance) to the input.

Frames are uint8 RGB arrays (N, H, W, 3); metrics are plain floats (None where undefined) so that
metrics.json is plain JSON; per-frame values are a pandas DataFrame for per-frame.tsv and the plots.

What a job's evaluation costs (`evaluate_job`): every metric is measured at a capped size (`eval_size`, the
long side), and the two that need VGG19 passes (style and content distance) on at most `eval_frames` evenly
spaced frames; the pixel metrics (warping error, flicker, SSIM, blank frames) on every frame and pair.
metrics.json's `measured_on` states the size and the frames of each figure; bench/evaluate_cost.py measures
the cost and how far the cheaper figures lie from the full-size, every-frame ones.
"""
from __future__ import annotations

import json
from fractions import Fraction

import cv2
import numpy as np
import pandas as pd
import torch

from artify.atomic import atomic_write_text
from artify.devices import pick_device
from artify.masks.segment import NO_SUBJECT
from artify.quality.cost import cost_metrics, json_float
from artify.features import (DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, gram, gram_distance, keyframe_grams,
                       mix_grams, style_grams, to_tensor, vgg19)
from artify.flow import DIS, FlowMethod, dis_flow, occlusion_mask, warp
from artify.media.pixels import resize_long_side
from artify.progress import progress
from artify.media.video import MediaError, VideoMeta, probe, processing_size, read_frames
from artify.style.keyframes import load_keyframe_images
from artify.style.schedule import StyleSchedule

# Batch size for VGG passes: small, so evaluation memory stays flat in the clip length.
_BATCH = 8
# Evaluation uses VGG19 with max pooling (the network as trained), not the synthesis-time average pooling,
# so the metric is not simply the quantity the optimiser minimised.
EVAL_POOL = "max"


def _frames(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[3] != 3 or x.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 RGB frames (N, H, W, 3), got {x.dtype} {x.shape}")
    return x


def _same(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{na} {a.shape} and {nb} {b.shape} differ in shape: evaluate needs the same frames "
                         "at the same size")


# ---------------------------------------------------------------------------------------------- temporal

# RAFT as the metrics run it (`eval_flow`): fixed, so that figures stay comparable across versions
EVAL_RAFT_ITERATIONS = 12
EVAL_RAFT_SCALE = 2.0  # at our processing sizes RAFT needs twice the frames' size (config/README.md's table)
_PAIRS = 16  # frame pairs per flow call (RAFT batches them)


def eval_flow_method(name: str, device="cpu") -> FlowMethod:
    """The flow of the metrics (the setting eval_flow, checked there): dis, raft_small or raft_large
    (EVAL_RAFT_ITERATIONS at EVAL_RAFT_SCALE), or auto: raft_large on CUDA, dis on the CPU (where RAFT would
    cost more than the stylization it measures)."""
    if name == "auto":
        name = "raft_large" if torch.device(device).type == "cuda" else "dis"
    if name == "dis":
        return DIS
    return FlowMethod("raft", name.removeprefix("raft_"), EVAL_RAFT_ITERATIONS, EVAL_RAFT_SCALE, "auto", str(device))


def compute_flows(input_frames, interval: int = 1, flow: FlowMethod = DIS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(forward flow t -> t+interval, reliable-pixel mask of t) for every t, on the INPUT frames.

    Computed once and shared by every video evaluated against this input (the input itself, the stylized
    output, the baselines), which is both faster and what makes their warping errors comparable.
    """
    frames = _frames(input_frames, "input frames")
    if interval < 1:
        raise ValueError(f"interval must be >= 1, got {interval}")
    flows = []
    for t0 in progress(range(0, len(frames) - interval, _PAIRS), f"flows (interval {interval})", unit="batch"):
        firsts = list(frames[t0:min(t0 + _PAIRS, len(frames) - interval)])
        seconds = list(frames[t0 + interval:t0 + interval + len(firsts)])
        both = flow.pairs(firsts + seconds, seconds + firsts)
        flows += [(fwd, occlusion_mask(fwd, bwd)) for fwd, bwd in zip(both[:len(firsts)], both[len(firsts):])]
    return flows


def warping_error(output_frames, input_frames=None, interval: int | None = None,
                  flows=None) -> tuple[float, np.ndarray]:
    """Warping error of Lai et al. 2018: (mean over pairs, per-pair errors (N - interval,)).

    For each t, with the input's forward flow F (t -> t+interval) and its reliable-pixel mask M
    (`occlusion_mask`), O the output in [0, 1]:
        E_t = Σ_{x, c} M(x) (O_{t+interval}(x + F(x))_c − O_t(x)_c)²  /  (3 Σ_x M(x))
    This replicates evaluate_WarpError.py of fast_blind_video_consistency exactly: there
    `diff = (warp_img2 - img1) * noc_mask; N = np.sum(noc_mask); err += np.sum(np.square(diff)) / N`, and
    noc_mask comes from the occlusion PNG read back with utils.read_img, i.e. cv2.imread in colour: an
    H×W×3 array, so N counts every reliable pixel three times (once per channel) and E_t is the mean squared
    error over reliable pixel-channels. When no pixel is reliable, N = H·W·3, as there.
    Pass `flows` from `compute_flows(input_frames, interval)` to reuse them across videos (the interval is
    then len(frames) − len(flows) unless given); otherwise they are computed from `input_frames`
    (interval 1 unless given).
    """
    out = _frames(output_frames, "output frames")
    if flows is None:
        if input_frames is None:
            raise ValueError("warping_error needs input_frames or precomputed flows")
        inp = _frames(input_frames, "input frames")
        _same(out, inp, "output frames", "input frames")
        interval = 1 if interval is None else interval
        flows = compute_flows(inp, interval)
    elif interval is None:
        interval = len(out) - len(flows)
    if interval < 1:
        raise ValueError(f"{len(flows)} flows for {len(out)} frames: need fewer flows than frames")
    if len(out) <= interval:
        raise ValueError(f"warping error at interval {interval} needs more than {interval} frames, got {len(out)}")
    if len(flows) != len(out) - interval:
        raise ValueError(f"{len(flows)} flows for {len(out)} frames at interval {interval}: they do not match")
    errors = np.empty(len(flows), np.float64)
    for t, (fwd, mask) in enumerate(flows):
        if fwd.shape[:2] != out.shape[1:3]:
            raise ValueError(f"flow size {fwd.shape[:2]} differs from frame size {out.shape[1:3]}")
        o_t = out[t].astype(np.float32) / 255.0
        o_next = warp(out[t + interval].astype(np.float32) / 255.0, fwd)
        diff = (o_next - o_t) * mask[..., None]
        n = 3.0 * float(mask.sum())
        if n == 0:
            n = float(diff.size)
        errors[t] = float(np.sum(np.square(diff, dtype=np.float64))) / n
    return float(errors.mean()), errors


def flicker(output_frames, input_frames, threshold: float = 0.02, flows=None,
            max_motion: float = 0.5) -> tuple[float, np.ndarray]:
    """Mean |O_{t+1} − O_t| (in [0, 1], averaged over channels) over pixels where the input is static.

    A pixel is static in the pair (t, t+1) when the input's flow there is under `max_motion` px and the
    input itself changes by less than `threshold` (mean over channels, [0, 1] units). Any change of the
    output there is flicker that the content does not explain; unlike the warping error it does not depend
    on the flow being right in moving regions. Returns (mean over pairs, per pair (N - 1,)); a pair with no
    static pixel is NaN and left out of the mean (NaN if none has any). `flows` from
    `compute_flows(input_frames, 1)` are reused when given.
    """
    out = _frames(output_frames, "output frames")
    inp = _frames(input_frames, "input frames")
    _same(out, inp, "output frames", "input frames")
    if len(out) < 2:
        raise ValueError(f"flicker needs at least 2 frames, got {len(out)}")
    if flows is None:
        flows = [(dis_flow(inp[t], inp[t + 1]), None) for t in range(len(inp) - 1)]
    if len(flows) != len(out) - 1:
        raise ValueError(f"{len(flows)} flows for {len(out)} frames at interval 1: they do not match")
    values = np.full(len(flows), np.nan)
    for t, (fwd, _) in enumerate(flows):
        motion = np.sqrt(fwd[..., 0] ** 2 + fwd[..., 1] ** 2)
        d_in = np.abs(inp[t + 1].astype(np.float32) - inp[t].astype(np.float32)).mean(-1) / 255.0
        static = (motion < max_motion) & (d_in < threshold)
        if static.any():
            d_out = np.abs(out[t + 1].astype(np.float32) - out[t].astype(np.float32)).mean(-1) / 255.0
            values[t] = float(d_out[static].mean())
    mean = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return mean, values


# ------------------------------------------------------------------------------------------ broken pictures

class BlankFramesError(MediaError):
    """A stylized video with blank frames: the job fails and says which frames."""

    def __init__(self, message: str, frames: list[int]):
        super().__init__(message)
        self.frames = frames


# A frame is blank when it is flat (luma standard deviation under FLAT_STD) or black (mean luma under BLACK),
# in [0, 1] units, while its input frame is not. 0.01 is 2.5 grey levels: no stylized picture is that
# flat, and a real frame that is (a fade to black, a title card) is flat in the input too.
FLAT_STD = 0.01
BLACK = 0.03


def blank_frames(output_frames, input_frames) -> np.ndarray:
    """(N,) bool: output frames that are flat or black where the input frame is not — what a NaN that became
    0, a failed decode or a diverged optimiser leaves behind, and what means and counts do not see."""
    out = _frames(output_frames, "output frames")
    inp = _frames(input_frames, "input frames")
    _same(out, inp, "output frames", "input frames")
    blank = np.zeros(len(out), bool)
    for t, (o, i) in enumerate(zip(out, inp)):
        lo, li = _luma(o), _luma(i)
        flat = lo.std() < FLAT_STD and li.std() >= FLAT_STD
        black = lo.mean() < BLACK and li.mean() >= BLACK
        blank[t] = flat or black
    return blank


def frame_ranges(frames) -> str:
    """[3, 4, 5, 9] -> '3-5, 9': frame lists as people read them."""
    frames, parts, i = sorted(int(f) for f in frames), [], 0
    while i < len(frames):
        j = i
        while j + 1 < len(frames) and frames[j + 1] == frames[j] + 1:
            j += 1
        parts.append(str(frames[i]) if i == j else f"{frames[i]}-{frames[j]}")
        i = j + 1
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------ style/content

def _model(model, device):
    return model if model is not None else vgg19(device, pool=EVAL_POOL)


def frame_grams(frames, device="cpu", model=None, layers=DEFAULT_STYLE_LAYERS) -> list[dict]:
    """Gram matrices (1, C, C) per layer of every frame, computed in small batches."""
    frames = _frames(frames, "frames")
    model = _model(model, device)
    out = []
    for i in progress(range(0, len(frames), _BATCH), "Gram matrices", unit="batch"):
        grams = style_grams(model, to_tensor(frames[i:i + _BATCH], device), layers)
        for j in range(len(frames[i:i + _BATCH])):
            out.append({k: v[j:j + 1].detach().cpu() for k, v in grams.items()})
    return out


def scaled_keyframe_grams(keyframe_images, size: tuple[int, int] | None = None, device="cpu", model=None,
                   layers=DEFAULT_STYLE_LAYERS) -> list[dict]:
    """Grams of each keyframe, resized so its long side is max(size) (keeping its aspect) when size is given.

    Style statistics depend on scale; measuring the keyframes at the frames' scale compares like with like.
    """
    images = []
    for img in keyframe_images:
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"keyframe: expected uint8 RGB (H, W, 3), got {img.dtype} {img.shape}")
        images.append(img if size is None else resize_long_side(img, max(size)))
    grams = keyframe_grams(_model(model, device), images, layers, device)
    return [{name: g.cpu() for name, g in k.items()} for k in grams]


def style_distance_per_frame(frames, targets, device="cpu", model=None) -> np.ndarray:
    """Gram distance (`features.gram_distance`) of each frame to its target, (N,).

    `targets` is one dict layer -> Gram (1, C, C) per frame (e.g. `mix_grams` of the keyframe Grams with
    that frame's schedule row), or a single dict used for every frame.
    """
    frames = _frames(frames, "frames")
    if isinstance(targets, dict):
        targets = [targets] * len(frames)
    if len(targets) != len(frames):
        raise ValueError(f"{len(targets)} style targets for {len(frames)} frames")
    layers = tuple(targets[0].keys())
    grams = frame_grams(frames, device, model, layers)
    return np.array([float(gram_distance(g, {k: v.to(g[k].device) for k, v in t.items()})[0])
                     for g, t in zip(grams, targets)], np.float64)


def content_distance(frames, input_frames, device="cpu", model=None,
                     layer: str = DEFAULT_CONTENT_LAYERS[0]) -> np.ndarray:
    """Per frame mean((φ(O) − φ(I))²) / mean(φ(I)²) with φ = VGG19 relu4_2, (N,).

    Dividing by the input features' mean square makes the number independent of the frame size and of the
    feature scale of the VGG source: 0 is the input itself, 1 is as far as all-zero features (a black frame
    scores about 0.9: the biases keep some response).
    """
    out = _frames(frames, "frames")
    inp = _frames(input_frames, "input frames")
    _same(out, inp, "frames", "input frames")
    values = [_content_ratio(fo[layer], fi[layer]) for _, fo, fi in _vgg_pairs(out, inp, (layer,), device, model)]
    return np.concatenate(values) if values else np.zeros(0)


def _content_ratio(fo: torch.Tensor, fi: torch.Tensor) -> np.ndarray:
    num = ((fo - fi) ** 2).flatten(1).mean(1)
    den = (fi ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return (num / den).cpu().numpy().astype(np.float64)


def _vgg_pairs(out: np.ndarray, inp: np.ndarray, layers, device, model):
    """(start, output features, input features) of each small batch of frames: one VGG pass per frame of
    each video for every layer asked, so memory stays flat in the number of frames."""
    model = _model(model, device)
    with torch.no_grad():
        for i in progress(range(0, len(out), _BATCH), "style and content (VGG19)", unit="batch"):
            yield (i, model(to_tensor(out[i:i + _BATCH], device), layers),
                   model(to_tensor(inp[i:i + _BATCH], device), layers))


def style_and_content(frames, input_frames, targets, device="cpu", model=None,
                      layer: str = DEFAULT_CONTENT_LAYERS[0]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(style distance of each frame, of each input frame, content distance of each frame to its input), (N,)
    each, as `style_distance_per_frame` and `content_distance` give them, from one VGG pass per frame of each
    video (those two functions make four: this is what `evaluate_video` uses). targets: one dict layer ->
    Gram (1, C, C) per frame."""
    out = _frames(frames, "frames")
    inp = _frames(input_frames, "input frames")
    _same(out, inp, "frames", "input frames")
    if len(targets) != len(out):
        raise ValueError(f"{len(targets)} style targets for {len(out)} frames")
    style_layers = tuple(targets[0]) if len(targets) else ()
    layers = tuple(dict.fromkeys(style_layers + (layer,)))
    sd_out, sd_in, cd = [], [], []
    for i, fo, fi in _vgg_pairs(out, inp, layers, device, model):
        batch = targets[i:i + len(fo[layer])]
        target = {k: torch.cat([t[k] for t in batch]).to(fo[k].device) for k in style_layers}
        for feats, distances in ((fo, sd_out), (fi, sd_in)):
            grams = {k: gram(feats[k]) for k in style_layers}
            distances.append(gram_distance(grams, target).cpu().numpy().astype(np.float64))
        cd.append(_content_ratio(fo[layer], fi[layer]))
    return tuple(np.concatenate(v) if v else np.zeros(0) for v in (sd_out, sd_in, cd))


_SSIM_SIGMA = 1.5
_SSIM_WIN = 11  # 2 * int(3.5 * 1.5 + 0.5) + 1, as skimage's gaussian_weights=True


def _luma(frame: np.ndarray) -> np.ndarray:
    """BT.601 luma in [0, 1] (what SSIM on video is conventionally computed on)."""
    f = frame.astype(np.float64) / 255.0
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def _ssim_luma(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2  # K1, K2 of Wang et al. 2004, data range 1

    def blur(z):
        return cv2.GaussianBlur(z, (_SSIM_WIN, _SSIM_WIN), _SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = (_SSIM_WIN - 1) // 2
    if s.shape[0] > 2 * pad and s.shape[1] > 2 * pad:
        s = s[pad:-pad, pad:-pad]  # like skimage: only windows that lie inside the image
    return float(s.mean())


def ssim(a, b):
    """SSIM (Wang et al. 2004) on luminance: Gaussian window σ = 1.5 (11×11), K1 = 0.01, K2 = 0.03.

    Population (co)variances under the window and the mean over windows inside the image, as
    skimage.metrics.structural_similarity(gaussian_weights=True, use_sample_covariance=False,
    data_range=1) on the luma. a, b: one frame (H, W, 3) -> float, or frames (N, H, W, 3) -> (N,) array.
    """
    single = np.asarray(a).ndim == 3
    fa, fb = _frames(a, "frames"), _frames(b, "frames")
    _same(fa, fb, "frames", "frames")
    values = np.array([_ssim_luma(_luma(x), _luma(y)) for x, y in zip(fa, fb)], np.float64)
    return float(values[0]) if single else values


# ------------------------------------------------------------------------------------------------- all

def evaluate_video(input_frames, output_frames, keyframe_images, schedule_weights, device="cpu",
                   intervals=(1, 10), flicker_threshold: float = 0.02, model=None,
                   sampled=None, flow: FlowMethod = DIS) -> tuple[dict, pd.DataFrame]:
    """Every metric of one stylized clip: (metrics for metrics.json, per-frame DataFrame for per-frame.tsv).

    schedule_weights: (N, K) style weights per frame over the K keyframe images (the schedule).
    sampled: (N,) bool, the frames whose style and content distances are measured (the VGG19 passes; NaN in
    the other rows); None = every frame. Everything else is measured on every frame and pair.
    metrics: as `metrics_from_frames`. per_frame: frame, warp_error_short / warp_error_input_short / flicker
    (pair (t−1, t), so NaN at frame 0: a jump shows at the frame where it appears), style_distance,
    style_distance_input, content_distance, ssim, and the long interval's and integrity columns.
    Flows (`flow`) are computed once on the input and shared by every temporal metric.
    """
    inp = _frames(input_frames, "input frames")
    out = _frames(output_frames, "output frames")
    _same(out, inp, "output frames", "input frames")
    n = len(inp)
    weights = np.asarray(schedule_weights, dtype=np.float64)
    if weights.ndim == 1:
        weights = weights[:, None]
    if weights.shape != (n, len(keyframe_images)):
        raise ValueError(f"schedule weights have shape {weights.shape}, expected ({n}, {len(keyframe_images)}) "
                         "(frames, keyframes)")
    sampled = np.ones(n, bool) if sampled is None else np.asarray(sampled, bool)
    if sampled.shape != (n,):
        raise ValueError(f"sampled frames: expected a mask of {n} frames, got shape {sampled.shape}")
    short, long = intervals

    def by_frame(pairs, interval):
        col = np.full(n, np.nan)
        if len(pairs):
            col[interval:interval + len(pairs)] = pairs
        return col

    columns = {}
    # one interval's flows at a time (the largest arrays here), each dropped once its metrics are taken
    for key, interval in (("short", short), ("long", long)):
        flows = compute_flows(inp, interval, flow) if n > interval else []
        for name, video in ((f"warp_error_{key}", out), (f"warp_error_input_{key}", inp)):
            columns[name] = by_frame(warping_error(video, interval=interval, flows=flows)[1] if flows else [],
                                     interval)
        columns[f"reliable_{key}"] = by_frame([float(mask.mean()) for _, mask in flows], interval)
        if interval == 1 and flows:
            columns.update(_flicker_columns(out, inp, flicker_threshold, flows, by_frame))
        del flows
    if "flicker" not in columns:  # no interval of 1 among them, or a single frame
        flows = compute_flows(inp, 1, flow) if n >= 2 else []
        columns.update(_flicker_columns(out, inp, flicker_threshold, flows, by_frame))

    sd_out, sd_in, cd = (np.full(n, np.nan) for _ in range(3))
    picked = np.flatnonzero(sampled)
    if len(picked):
        model = _model(model, device)
        kgrams = scaled_keyframe_grams(keyframe_images, size=inp.shape[1:3], device=device, model=model)
        targets = [mix_grams(kgrams, weights[t]) for t in picked]
        sd_out[picked], sd_in[picked], cd[picked] = style_and_content(out[picked], inp[picked], targets, device,
                                                                      model)

    per_frame = pd.DataFrame({
        "frame": np.arange(n),
        "warp_error_short": columns["warp_error_short"],
        "warp_error_input_short": columns["warp_error_input_short"],
        "style_distance": sd_out,
        "style_distance_input": sd_in,
        "content_distance": cd,
        "ssim": ssim(out, inp),
        "flicker": columns["flicker"],
        "warp_error_long": columns["warp_error_long"],
        "warp_error_input_long": columns["warp_error_input_long"],
        "flicker_input": columns["flicker_input"],
        "reliable_short": columns["reliable_short"],
        "reliable_long": columns["reliable_long"],
        "blank": blank_frames(out, inp).astype(int),
    })
    return metrics_from_frames(per_frame, size=(inp.shape[2], inp.shape[1])), per_frame


def _flicker_columns(out, inp, threshold, flows, by_frame) -> dict:
    """flicker and flicker_input per frame (pair (t−1, t)) from the input's interval-1 flows; NaN without any."""
    if not flows:
        return {"flicker": by_frame([], 1), "flicker_input": by_frame([], 1)}
    return {"flicker": by_frame(flicker(out, inp, threshold, flows=flows)[1], 1),
            "flicker_input": by_frame(flicker(inp, inp, threshold, flows=flows)[1], 1)}


def _integrity(per_frame: pd.DataFrame) -> dict:
    """blank_frames: the frames that are flat or black where the input is not (`blank_frames`);
    unreliable_pairs: frame pairs (short and long interval) with no reliable pixel at all, whose warping
    error therefore says nothing (a cut, or a flow that failed)."""
    def unreliable(column):
        values = per_frame[column].to_numpy(dtype=np.float64)
        return int((values[np.isfinite(values)] == 0).sum())

    return {
        "blank_frames": [int(f) for f in per_frame.loc[per_frame["blank"] != 0, "frame"]],
        "unreliable_pairs": {"short": unreliable("reliable_short"), "long": unreliable("reliable_long")},
    }


LONG = 10  # the long-range interval; a window must hold it


def evenly_spaced(n: int, count: int) -> np.ndarray:
    """`count` evenly spaced frame numbers of n, the first and the last included (deterministic); every
    frame when count is 0 or at least n."""
    if count <= 0 or count >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, count).round().astype(int))


def evaluate_frames(read_output, read_input, n: int, weights, keyframe_images, device="cpu",
                    window: int = 240, intervals=(1, LONG), sample: int = 0, flow: FlowMethod = DIS) -> pd.DataFrame:
    """Per-frame metrics of a whole video, `window` frames in memory at a time.

    Each window also reads the `max(intervals)` frames before it, so every pair (t - k, t) it reports lies
    inside it; its rows for those lead-in frames are dropped (the window before reported them). The table
    is therefore the same as evaluating the whole video at once, while memory follows `window`, not length.
    sample: style and content distances on this many evenly spaced frames (`evenly_spaced`; 0 = all).
    read_output(start, count) / read_input(start, count, (w, h)) return uint8 RGB frames.
    """
    lead = max(intervals)
    model = _model(None, device)
    picked = np.zeros(n, bool)
    picked[evenly_spaced(n, sample)] = True
    tables = []
    for begin in range(0, n, window):
        start = max(0, begin - lead)
        out = read_output(start, min(begin + window, n) - start)
        inp = read_input(start, len(out), (out.shape[2], out.shape[1]))
        if len(inp) != len(out):
            raise ValueError(f"the content gave {len(inp)} frames from frame {start}, the output {len(out)}")
        sampled = picked[start:start + len(out)] & (np.arange(start, start + len(out)) >= begin)
        _, table = evaluate_video(inp, out, keyframe_images, weights[start:start + len(out)], device=device,
                                  intervals=intervals, model=model, sampled=sampled, flow=flow)
        table["frame"] += start
        tables.append(table[table["frame"] >= begin])
    return pd.concat(tables, ignore_index=True)


# the figures measured on sampled frames only (the VGG19 passes); every other one is on every frame and pair
SAMPLED = ("style_distance", "style_distance_input", "content_distance")
EVERY_FRAME = ("warp_error", "warp_error_input", "flicker", "flicker_input", "ssim")


def measured_on(per_frame: pd.DataFrame, size: tuple[int, int] | None) -> dict:
    """metrics.json's `measured_on`: for each figure, the frame size (w, h) it was measured at and the frames
    it was measured on, of how many ({"size": [w, h], "frames": k, "of": n}): figures of two jobs compare only
    when these agree."""
    n = len(per_frame)
    sampled = int(per_frame["style_distance"].notna().sum())
    dims = None if size is None else [int(size[0]), int(size[1])]
    return {**{key: {"size": dims, "frames": n, "of": n} for key in EVERY_FRAME},
            **{key: {"size": dims, "frames": sampled, "of": n} for key in SAMPLED}}


def metrics_from_frames(per_frame: pd.DataFrame, size: tuple[int, int] | None = None) -> dict:
    """metrics.json's quality keys: means over the per-frame table (pairs, sampled frames: NaN where not
    measured), and where they were measured (`measured_on`; size: the frames' (w, h))."""
    def mean(column):
        values = per_frame[column].to_numpy(dtype=np.float64)
        return json_float(np.nanmean(values)) if np.isfinite(values).any() else None

    return {
        "warp_error": {"short": mean("warp_error_short"), "long": mean("warp_error_long")},
        "warp_error_input": {"short": mean("warp_error_input_short"), "long": mean("warp_error_input_long")},
        "style_distance": mean("style_distance"),
        "style_distance_input": mean("style_distance_input"),
        "content_distance": mean("content_distance"),
        "ssim": mean("ssim"),
        "flicker": mean("flicker"),
        "flicker_input": mean("flicker_input"),
        "frames": int(len(per_frame)),
        "measured_on": measured_on(per_frame, size),
        **_integrity(per_frame),
    }


def foreground_metrics(tables) -> dict:
    """metrics.json's `foreground` of a segmented job, from its spans' foreground tables (segment stage:
    `artify.masks.segment.report_foreground`): the share of foreground pixels over the video and per chunk,
    and the chunks where no subject was found (styled all as background), with a warning for them."""
    rows = pd.concat([pd.read_csv(t, sep="\t") for t in tables]).sort_values("chunk")
    missing = rows.loc[rows["foreground"] < NO_SUBJECT, "chunk"].astype(int).tolist()
    if missing:
        print(f"warning: no subject found in chunks {missing}: method segmented styled them all as background",
              flush=True)
    return {"foreground": {"share": json_float(np.average(rows["foreground"], weights=rows["frames"])),
                           "per_chunk": [json_float(v) for v in rows["foreground"]],
                           "chunks_without_subject": missing}}


def measurement_size(width: int, height: int, eval_size: int) -> tuple[int, int]:
    """The (w, h) a video of width x height is measured at: its long side capped at eval_size (even sides,
    as `processing_size`); a smaller video, or eval_size 0, keeps its own size."""
    return (width, height) if eval_size <= 0 or max(width, height) <= eval_size else \
        processing_size(width, height, eval_size)


def evaluate_job(content, stylized, meta_json, schedule_tsv, keyframes_tsv, keyframe_dir, out_json, per_frame_tsv,
                 *, size: int, device: str, settings, stage_times_tsv=None, window: int = 240,
                 foreground_tsvs=()) -> dict:
    """Evaluate a job's stylized video against its content -> metrics.json + per-frame TSV.

    Measured at the output's size with the long side capped at settings.eval_size, style and content distance
    on settings.eval_frames evenly spaced frames (`artify.settings.EvaluateSettings`);
    metrics.json says so in `measured_on`; the warping error's and flicker's flow is settings.eval_flow
    (`eval_flow_method`), named in metrics.json's `flow` so that figures measured with different flows are
    not compared unawares. size: the job's processing size (the keyframes are read at it); device: the
    job's device setting (auto, cpu, cuda).
    stage_times_tsv (from `stage_times`) adds the cost: seconds_per_frame (all stages), peak_memory_mb and
    stages (each stage's seconds per frame, seconds, jobs and peak memory). foreground_tsvs (method
    segmented: the spans' foreground tables) add `foreground_metrics`.
    """
    device = pick_device(device)  # device: cuda where there is none fails first
    flow = eval_flow_method(settings.eval_flow, device)
    meta = VideoMeta.load(meta_json)
    fps = Fraction(meta.fps)
    result = probe(stylized)
    n = result.frames
    dims = measurement_size(result.width, result.height, settings.eval_size)
    scaled = None if dims == (result.width, result.height) else dims  # the output as it is when not capped
    per_frame = evaluate_frames(
        lambda start, count: read_frames(stylized, start, count, size=scaled, fps=fps),
        lambda start, count, size: read_frames(content, start, count, size=size, meta=meta),
        n, StyleSchedule.load(schedule_tsv).weights_range(0, n),
        load_keyframe_images(keyframes_tsv, keyframe_dir, size), device=device, window=window,
        sample=settings.eval_frames, flow=flow)
    metrics = {**metrics_from_frames(per_frame, dims), "flow": flow.describe()}
    if metrics["blank_frames"]:
        blank = metrics["blank_frames"]
        raise BlankFramesError(f"{stylized}: {len(blank)} of {n} frames are blank (flat or black where the input "
                               f"frame is not): frames {frame_ranges(blank)}; the stylization of those frames "
                               "failed (see logs/stylize_chunk/)", blank)
    if stage_times_tsv is not None:
        metrics.update(cost_metrics(pd.read_csv(stage_times_tsv, sep="\t")))
    if foreground_tsvs:
        metrics.update(foreground_metrics(foreground_tsvs))
    atomic_write_text(per_frame_tsv, per_frame.to_csv(sep="\t", index=False))
    atomic_write_text(out_json, json.dumps(metrics, indent=2) + "\n")
    return metrics
