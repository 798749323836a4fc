"""The arbitrary (AdaIN) method: speed against its encoder, steadiness with and without the steadiers, training.

    python -m artify.bench_arbitrary [--iterations 300] [--train-size 128] [--frames 48] [--size 256]

1. Training (resumable; a rerun reuses or continues the decoder in --out): a decoder trained by
   `artify.train_arbitrary` on frame pairs of the clip and the paintings of ../shared/data/styles; the loss
   curve goes to loss.png. How trained it is is printed (iterations x batch x crop size).
2. Speed (CPU, float32, batch --batch): frames per second of the whole network (encoder + AdaIN + decoder) at
   256 and 512 px (long side, the clip's aspect) against the encoder's own forward time on the same batch.
3. Steadiness, on the same network and the same frames of the clip, one style: warping error (Lai et al.) at
   intervals 1 and 10 and Gram style distance, for the steadiers off (`temporal: false`), each alone, and on
   together (the defaults); ratios to "off". The input's own warping error is the floor.
   A side-by-side PNG (input | off | on, a few frames) goes to side_by_side.png.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from artify.evaluate import compute_flows, keyframe_grams, style_distance, warping_error
from artify.features import mix_grams, to_tensor, vgg19
from artify.flow import backward_flows
from artify.methods.arbitrary import load_network, mean_std, stylize_frames
from artify.settings import defaults
from artify.video import load_image
from artify.train_arbitrary import load_images, make_pairs, plot_history, train_decoder, TrainingData
from artify.video import probe, processing_size, read_frames

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def train(clip: Path, styles_dir: Path, out_dir: Path, iterations: int, size: int, batch: int, lr: float,
          temporal_weight: float, width: float, pair_frames: int = 230) -> tuple[Path, dict]:
    meta = probe(clip)
    w, h = processing_size(meta.width, meta.height, 0)
    scale = size / min(w, h)
    frames = read_frames(clip, 0, pair_frames, (round(w * scale / 2) * 2, round(h * scale / 2) * 2))
    pairs, flows, masks = make_pairs(frames[::1], size, step=1)
    data = TrainingData(pairs[::2], flows[::2], masks[::2], load_images([styles_dir], size))
    decoder = out_dir / "decoder.pth"
    t = time.perf_counter()
    result = train_decoder(data, decoder, iterations, size, batch, lr, 10.0, temporal_weight, 25, width, "cpu", 0)
    result["seconds_this_run"] = time.perf_counter() - t
    result["pairs"], result["styles"] = len(data.pairs), len(data.styles)
    plot_history(result["history"], out_dir / "loss.png",
                 f"decoder training: {result['step']} it x batch {batch} x {size} px crops, lr {lr}")
    return decoder, result


def timed(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def speed(net, clip: Path, size: int, batch: int, reps: int) -> dict:
    meta = probe(clip)
    dims = processing_size(meta.width, meta.height, size)
    x = to_tensor(read_frames(clip, 0, batch, dims))
    mean, std = torch.rand(1, 512, 1, 1), torch.rand(1, 512, 1, 1) + 0.5
    with torch.no_grad():
        enc = timed(lambda: net.encode(x), reps)
        full = timed(lambda: net(x, mean, std), reps)
    return {"size": f"{dims[0]}x{dims[1]}", "batch": batch, "encoder_s": enc, "network_s": full,
            "fps": batch / full, "encoder_fps": batch / enc, "ratio": full / enc}


def side_by_side(rows: list[np.ndarray], out_png: Path, picks) -> None:
    import cv2

    grid = np.concatenate([np.concatenate([r[t] for r in rows], axis=1) for t in picks], axis=0)
    cv2.imwrite(str(out_png), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=str(SHARED / "videos" / "adain_cutBunny.mp4"))
    p.add_argument("--styles", default=str(SHARED / "styles"), help="training style images")
    p.add_argument("--style", default=str(SHARED / "styles" / "udnie.jpg"), help="style of the steadiness test")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--train-size", type=int, default=128)
    p.add_argument("--train-batch", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--temporal-weight", type=float, default=defaults()["train_temporal_weight"])
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--start", type=int, default=100, help="first frame of the steadiness clip")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=4, help="frames per forward pass in the speed test")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip", default="", help="comma-separated parts to skip: speed,steady")
    p.add_argument("--out", default="bench-out/arbitrary")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    skip = set(a.skip.split(","))
    report: dict = {}

    decoder, tr = train(Path(a.clip), Path(a.styles), out_dir, a.iterations, a.train_size, a.train_batch, a.lr,
                        a.temporal_weight, a.width)
    hist = np.asarray(tr["history"]).reshape(-1, 5)
    first, last = hist[: max(1, len(hist) // 10), 1].mean(), hist[-max(1, len(hist) // 10):, 1].mean()
    report["training"] = {"iterations": tr["step"], "batch": a.train_batch, "crop": a.train_size, "lr": a.lr,
                          "temporal_weight": a.temporal_weight, "width": a.width, "pairs": tr["pairs"],
                          "styles": tr["styles"], "loss_first_10pct": float(first), "loss_last_10pct": float(last),
                          "seconds_this_run": tr["seconds_this_run"]}
    print(f"training: {tr['step']} iterations x batch {a.train_batch} x {a.train_size}px crops "
          f"({tr['step'] * a.train_batch} samples; pytorch-AdaIN trains 160000 x 8 x 256px), "
          f"{tr['pairs']} frame pairs, {tr['styles']} styles; loss {first:.3g} (first 10%) -> {last:.3g} (last 10%); "
          f"{tr['seconds_this_run']:.0f} s this run")
    net = load_network(decoder)

    if "speed" not in skip:
        report["speed"] = [speed(net, Path(a.clip), s, a.batch, a.reps) for s in (256, 512)]
        print(f"\nspeed (CPU float32, {a.threads} threads, batch {a.batch}):")
        print(f"{'size':>9s} {'network fps':>12s} {'encoder fps':>12s} {'network/encoder':>16s}")
        for r in report["speed"]:
            print(f"{r['size']:>9s} {r['fps']:12.2f} {r['encoder_fps']:12.2f} {r['ratio']:16.2f}")

    if "steady" not in skip:
        meta = probe(a.clip)
        dims = processing_size(meta.width, meta.height, a.size)
        from fractions import Fraction

        frames = read_frames(a.clip, a.start, a.frames, dims, Fraction(meta.fps))
        style = load_image(a.style, defaults()["style_size"])
        flows = backward_flows(frames, [1])
        weights = np.ones((len(frames), 1))
        base = defaults() | {"method": "arbitrary"}
        variants = {
            "off": base | {"temporal": False},
            "ema only": base | {"flow_blend": 0.0},
            "clip only": base | {"flow_blend": 0.0, "smooth_stats": "clip"},
            "blend only": base | {"smooth_stats": "none"},
            "on (defaults)": base,
        }
        metric_flows = {k: compute_flows(frames, k) for k in (1, 10)}
        model = vgg19("cpu", pool="max")
        target = mix_grams(keyframe_grams([style], size=dims, model=model), [1.0])
        floor = {k: warping_error(frames, flows=metric_flows[k])[0] for k in (1, 10)}
        rows, videos = {}, {}
        for name, settings in variants.items():
            t = time.perf_counter()
            video = np.stack(list(stylize_frames(net, frames, weights, [style], settings, "cpu", flows=flows)))
            seconds = time.perf_counter() - t
            videos[name] = video
            rows[name] = {"warp_1": warping_error(video, flows=metric_flows[1])[0],
                          "warp_10": warping_error(video, flows=metric_flows[10])[0],
                          "style_distance": float(np.mean(style_distance(video, target, model=model))),
                          "seconds_per_frame": seconds / len(frames)}
        report["steady"] = {"clip": a.clip, "frames": [a.start, a.start + a.frames], "size": list(dims),
                            "style": a.style, "floor": floor, "rows": rows}
        off = rows["off"]
        print(f"\nsteadiness: {Path(a.clip).name} frames {a.start}-{a.start + a.frames - 1} at {dims[0]}x{dims[1]}, "
              f"style {Path(a.style).name}; input floor warp_1 {floor[1]:.5f}, warp_10 {floor[10]:.5f}")
        print(f"{'variant':15s} {'warp_1':>9s} {'(x off)':>8s} {'warp_10':>9s} {'(x off)':>8s} "
              f"{'style dist':>11s} {'(x off)':>8s} {'s/frame':>8s}")
        for name, r in rows.items():
            print(f"{name:15s} {r['warp_1']:9.5f} {r['warp_1'] / off['warp_1']:8.2f} {r['warp_10']:9.5f} "
                  f"{r['warp_10'] / off['warp_10']:8.2f} {r['style_distance']:11.3e} "
                  f"{r['style_distance'] / off['style_distance']:8.2f} {r['seconds_per_frame']:8.3f}")
        picks = np.linspace(0, len(frames) - 1, 4).round().astype(int)
        side_by_side([frames, videos["off"], videos["on (defaults)"]], out_dir / "side_by_side.png", picks)
    (out_dir / "results.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"\n-> {out_dir}/results.json, loss.png, side_by_side.png")


if __name__ == "__main__":
    main()
