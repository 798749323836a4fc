"""A cut in the content: ghosting of the shot before in the first frames after the cut, and steadiness elsewhere,
before and after each shot starts afresh (issue 17).

    python -m bench.cuts [--clip PATH] [--first 220] [--frames 20] [--size 128] [--methods gatys,arbitrary]

The clip's cuts come from the content detection (`artify.style.scenes.video_cuts`, defaults); its frames
[first, first + frames) are one chunk, stylized through the chunk driver (`artify.stages.stylize.stylize_chunk`) three
ways, per method, in this one process:
  before   cuts unknown and no reliable-fraction fallback (cut_detector none, min_reliable 0): the code before
  after    the detected cuts and the default min_reliable
  cold     the frames from the cut on as a chunk of their own: what the first frames of the new shot should be
Figures: ghosting = mean absolute distance (grey levels, 0-255) of the first `--ghost` frames after the cut to
the cold run; warping error (Lai et al., `artify.quality.evaluate.warping_error`) over the pairs that do not cross the
cut, and the input's as the floor. A picture (rows input / before / after / cold start, columns the frames around
the cut) goes to OUT/cuts_<method>.png, the figures to OUT/results.json.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from artify.media.chunks import plan_chunks, write_chunks
from artify.style.cuts import write_cuts
from artify.quality.evaluate import compute_flows, warping_error
from artify.flow import backward_flows, flow_method, save_flows
from artify.style.scenes import video_cuts
from artify.settings import Settings
from artify.stages.stylize import stylize_chunk
from artify.media.video import load_image, probe, processing_size, read_frames, save_frames

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METHODS = {  # small but real: the gatys defaults' warm/cold ratio, fewer iterations
    "gatys": {"method": "gatys", "iterations": 30, "warm_iterations": 10},
    "arbitrary": {"method": "arbitrary"},
}


def write_chunk(d: Path, frames: np.ndarray, style: np.ndarray, settings: Settings) -> Path:
    """One chunk of `frames` with its flows, a one-style schedule and the keyframe, as the pipeline lays them out."""
    d.mkdir(parents=True, exist_ok=True)
    save_frames(d / "frames.npy", frames, len(frames))
    offsets = sorted({1, *(int(k) for k in settings.long_term.split(",") if k)})
    save_flows(d / "flows.npz", backward_flows(frames, offsets, flow_method(settings)))
    write_chunks(plan_chunks(len(frames), len(frames), 0), d / "chunks.tsv")
    pd.DataFrame({"frame": range(len(frames)), "w0": 1.0}).to_csv(d / "schedule.tsv", sep="\t", index=False)
    (d / "kf").mkdir(exist_ok=True)
    cv2.imwrite(str(d / "kf" / "style.png"), cv2.cvtColor(style, cv2.COLOR_RGB2BGR))
    pd.DataFrame({"keyframe": [0], "file": ["style.png"]}).to_csv(d / "keyframes.tsv", sep="\t", index=False)
    return d


def stylize(d: Path, settings: Settings, cuts=None) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    stylize_chunk(d / "frames.npy", d / "chunks.tsv", 0, d / "schedule.tsv", d / "keyframes.tsv", d / "kf",
                  d / "out.npy", settings, threads=torch.get_num_threads(), flows=d / "flows.npz", cuts=cuts)
    return read_frames(d / "out.npy"), time.perf_counter() - t


def picture(rows: dict[str, np.ndarray | None], columns: list[int], cut: int, first: int, out: Path) -> None:
    """Rows of frames (None where a row has no frame: the cold run before the cut), labelled, columns numbered."""
    h, w = next(iter(rows.values())).shape[1:3]
    label_w, pad = 110, 2
    sheet = np.full((len(rows) * (h + pad) + 18, label_w + len(columns) * (w + pad), 3), 255, np.uint8)
    for c, t in enumerate(columns):
        x = label_w + c * (w + pad)
        text = f"{first + t}" + (" cut" if t == cut else "")
        cv2.putText(sheet, text, (x + 2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for r, (name, frames) in enumerate(rows.items()):
        y = 18 + r * (h + pad)
        cv2.putText(sheet, name, (4, y + h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for c, t in enumerate(columns):
            x = label_w + c * (w + pad)
            if name.startswith("cold") and t < cut:
                sheet[y:y + h, x:x + w] = 200
            else:
                sheet[y:y + h, x:x + w] = frames[t - cut if name.startswith("cold") else t]
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=str(SHARED / "videos" / "adain_cutBunny.mp4"))
    p.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    p.add_argument("--first", type=int, default=220)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--ghost", type=int, default=5, help="frames after the cut the ghosting figure averages over")
    p.add_argument("--methods", default="gatys,arbitrary")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench-out/cuts")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    meta = probe(a.clip)
    base = Settings(device="cpu", style_size=a.size)
    cuts = video_cuts(a.clip, base.cut_detector, base.cut_threshold or None, base.min_shot_frames,
                      base.cut_min_change, meta=meta)
    inside = [c - a.first for c in cuts if a.first < c < a.first + a.frames]
    if len(inside) != 1:
        raise SystemExit(f"{a.clip}: cuts {cuts}; frames [{a.first}, {a.first + a.frames}) must hold exactly one")
    cut = inside[0]
    size = processing_size(meta.width, meta.height, a.size)
    frames = read_frames(a.clip, a.first, a.frames, size=size, meta=meta)
    style = load_image(a.style, a.size)
    flows = compute_flows(frames, 1)
    steady = [t for t in range(len(frames) - 1) if t != cut - 1]  # pairs (t, t+1) that do not cross the cut
    shots = {"shot before": [t for t in steady if t < cut], "shot after": [t for t in steady if t >= cut]}
    input_errors = warping_error(frames, flows=flows)[1]
    floor = float(input_errors[steady].mean())
    print(f"clip {a.clip}: cuts {cuts} (content detection, defaults); frames {a.first}-{a.first + a.frames - 1} at "
          f"{size[0]}x{size[1]}, the cut before frame {a.first + cut}; style {Path(a.style).name}; "
          f"torch threads {a.threads}, CPU")
    print(f"input's warping error over the {len(steady)} pairs not crossing the cut: {floor:.3e} ("
          + ", ".join(f"{shot} {input_errors[pairs].mean():.3e}" for shot, pairs in shots.items()) + ")")
    results = {"cuts": cuts, "cut": a.first + cut, "first": a.first, "frames": a.frames, "size": list(size),
               "input_warp": floor, "methods": {}}
    for method in a.methods.split(","):
        settings = replace(base, **METHODS[method])
        whole = write_chunk(out / method / "whole", frames, style, settings)
        write_cuts([cut], meta.fps_fraction, whole / "cuts.tsv")
        cold_dir = write_chunk(out / method / "cold", frames[cut:], style, settings)
        videos, seconds = {}, {}
        videos["before"], seconds["before"] = stylize(whole, replace(settings, min_reliable=0.0))
        videos["after"], seconds["after"] = stylize(whole, settings, cuts=whole / "cuts.tsv")
        videos["cold"], seconds["cold"] = stylize(cold_dir, settings)
        n = min(a.ghost, len(frames) - cut)
        row = {"ghost_frames": [a.first + cut + j for j in range(n)], "seconds": seconds}
        for name in ("before", "after"):
            per = np.abs(videos[name][cut:cut + n].astype(float) - videos["cold"][:n]).mean(axis=(1, 2, 3))
            errors = warping_error(videos[name], flows=flows)[1]
            row[name] = {"ghosting": float(per.mean()), "ghosting_per_frame": per.round(2).tolist(),
                         "warp": float(errors[steady].mean()),
                         **{f"warp, {shot}": float(errors[pairs].mean()) for shot, pairs in shots.items()}}
        results["methods"][method] = row
        print(f"{method}: ghosting (mean |ours - cold start|, 0-255) over frames {row['ghost_frames'][0]}-"
              f"{row['ghost_frames'][-1]}: before {row['before']['ghosting']:.2f} "
              f"(per frame {row['before']['ghosting_per_frame']}), after {row['after']['ghosting']:.2f} "
              f"(per frame {row['after']['ghosting_per_frame']})")
        print(f"{method}: warping error over pairs not crossing the cut: before {row['before']['warp']:.3e}, "
              f"after {row['after']['warp']:.3e} (x{row['after']['warp'] / row['before']['warp']:.3f}); "
              + "; ".join(f"{shot} ({len(pairs)} pairs): before {row['before'][f'warp, {shot}']:.3e}, after "
                          f"{row['after'][f'warp, {shot}']:.3e}" for shot, pairs in shots.items()))
        print(f"{method}: the shot before the cut unchanged: "
              f"{np.array_equal(videos['before'][:cut], videos['after'][:cut])}; seconds (noisy: a shared machine): "
              f"before {seconds['before']:.1f}, after {seconds['after']:.1f}, cold {seconds['cold']:.1f}")
        columns = list(range(max(0, cut - 2), min(len(frames), cut + 5)))
        picture({"input": frames, "ours, before": videos["before"], "ours, after": videos["after"],
                 "cold start": videos["cold"]}, columns, cut, a.first, out / f"cuts_{method}.png")
        print(f"picture: {out / f'cuts_{method}.png'}", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
