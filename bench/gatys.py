"""Gatys for video against per-frame stylization: steadiness (warping error), style distance and speed.

    python -m bench.gatys [--frames 20] [--size 256] [--clip PATH] [--style PATH]

All variants run in this one process on the same frames, so the figures compare as ratios:
  per-frame            every frame optimised from its own content, no temporal terms (the seed's way)
  per-frame+deflicker  that output through ffmpeg's `deflicker` filter
  ours                 temporal loss + warped initialisation + adaptive stop (the default settings)
and the input's own warping error as the floor.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from artify.quality.evaluate import compute_flows, scaled_keyframe_grams, style_distance_per_frame, warping_error
from artify.features import mix_grams, vgg19
from artify.flow import backward_flows
from artify.methods.gatys import stylize_frames
from artify.settings import Settings
from artify.media.video import load_image
from artify.media.video import probe, processing_size, read_frames, run_ffmpeg, write_frames_lossless

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def deflicker(frames: np.ndarray, fps: Fraction, workdir: Path) -> np.ndarray:
    src, dst = workdir / "perframe.mkv", workdir / "deflickered.mkv"
    write_frames_lossless(src, frames, fps)
    run_ffmpeg(["-hide_banner", "-y", "-i", str(src), "-vf", "deflicker=size=5:mode=am", "-c:v", "ffv1",
                "-pix_fmt", "bgr0", str(dst)], src)
    return read_frames(dst)


def run(frames, style, settings, flows=None):
    stats = {}
    t = time.perf_counter()
    out = np.stack(list(stylize_frames(vgg19("cpu"), frames, np.ones((len(frames), 1)), [style], settings, "cpu",
                                       flows=flows, stats=stats)))
    return out, time.perf_counter() - t, stats["iterations"]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=str(SHARED / "videos" / "adain_cutBunny.mp4"))
    p.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench-out/gatys")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = probe(a.clip)
    size = processing_size(meta.width, meta.height, a.size)
    frames = read_frames(a.clip, 0, a.frames, size=size)
    base = Settings()
    style = load_image(a.style, base.style_size)

    t = time.perf_counter()
    flows = backward_flows(frames)
    flow_seconds = time.perf_counter() - t
    results = {}
    per_frame, sec_pf, it_pf = run(frames, style, replace(base, temporal=False, tolerance=0.0))
    results["per-frame"] = (per_frame, sec_pf, it_pf)
    t = time.perf_counter()
    results["per-frame+deflicker"] = (deflicker(per_frame, Fraction(meta.fps), out_dir),
                                      sec_pf + time.perf_counter() - t, it_pf)
    ours, sec, its = run(frames, style, base, flows)
    results["ours"] = (ours, sec + flow_seconds, its)

    metric_flows = {k: compute_flows(frames, k) for k in (1, 10)}
    model = vgg19("cpu", pool="max")
    target = mix_grams(scaled_keyframe_grams([style], size=size, model=model), [1.0])
    rows = {}
    floor = {k: warping_error(frames, flows=metric_flows[k])[0] for k in (1, 10)}
    for name, (video, seconds, iterations) in results.items():
        rows[name] = {
            "warp_short": warping_error(video, flows=metric_flows[1])[0],
            "warp_long": warping_error(video, flows=metric_flows[10])[0],
            "style_distance": float(np.mean(style_distance_per_frame(video, target, model=model))),
            "seconds_per_frame": seconds / len(frames),
            "mean_iterations": float(np.mean(iterations)),
        }
        write_frames_lossless(out_dir / f"{name}.mkv", video, Fraction(meta.fps))
    ref = rows["per-frame"]
    print(f"clip {a.clip} frames {len(frames)} at {size[0]}x{size[1]}, style {Path(a.style).name}, "
          f"torch threads {a.threads}")
    print(f"input floor: warping error short {floor[1]:.5f}, long {floor[10]:.5f}")
    print(f"{'variant':22s} {'warp short':>11s} {'(x pf)':>7s} {'warp long':>10s} {'(x pf)':>7s} "
          f"{'style dist':>11s} {'(x pf)':>7s} {'s/frame':>8s} {'(x pf)':>7s} {'iters':>6s}")
    for name, r in rows.items():
        print(f"{name:22s} {r['warp_short']:11.5f} {r['warp_short'] / ref['warp_short']:7.2f} "
              f"{r['warp_long']:10.5f} {r['warp_long'] / ref['warp_long']:7.2f} {r['style_distance']:11.3e} "
              f"{r['style_distance'] / ref['style_distance']:7.2f} {r['seconds_per_frame']:8.2f} "
              f"{r['seconds_per_frame'] / ref['seconds_per_frame']:7.2f} {r['mean_iterations']:6.1f}")
    (out_dir / "results.json").write_text(json.dumps({"floor": floor, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
