"""Magenta's network (the default arbitrary method): speed, steadiness and quality against Gatys and AdaIN.

    python -m bench.magenta [--frames 16] [--size 192] [--threads 1] [--skip speed,precision,vectors,quality]

1. Speed (CPU): frames per second of Magenta's transformer (style vector given; batch --batch) at 256 and
   512 px (long side, the clip's aspect) and 1280x720, with 1 and 2 torch threads, in float32 and in
   bfloat16 (`precision: bfloat16`), against the forward pass of the VGG encoder to relu4_1 on the same batch
   (the floor the AdaIN method measured itself against); best of --reps, timed in interleaved rounds.
2. Precision (CPU): the arbitrary method itself (`stylize_frames`, batch_frames 8, with the default steadiers
   and without: `temporal: false`) on --precision-frames frames of the clip at 256 px and 1280x720 with
   --precision-threads torch threads, `precision: float32` against `bfloat16`: frames per second (best of
   --reps) and how far the bfloat16 output is from the float32 one (mean absolute difference of the uint8
   frames; tests/test_arbitrary.py holds it under 4 of 255). Whether `precision: auto` takes bfloat16 on a
   CPU (`arbitrary.auto_precision`) rests on this.
3. Style vectors: how much the vector moves between two views of one style, for one centre crop (the usual
   256x256 predictor input) and for the mean over crops and mirrors (ours): a painting with 10 % of it cut
   off one side, and two frames half a second apart in one shot of a style video.
4. Quality, per painting (--paintings): --frames frames of the clip at --size stylized by Magenta with the
   steadiers off (`temporal: false`) and on (the defaults), by per-frame Gatys (the seed's way: every frame
   optimised from its own content, default settings without the temporal terms) and by AdaIN with a decoder
   at its 500-iteration CPU training (bench_arbitrary's recipe: 500 it x batch 2 x 128 px, trained once into
   --adain-out and reused; steadiers on). Warping error (Lai et al.) at intervals 1 and 10 with the input's
   floor, Gram style distance to the painting and VGG content distance to the input, and the ratios the
   issue asks for. Per-frame Gatys outputs are cached in --out. side_by_side.png: 4 frames x (input |
   magenta | gatys | AdaIN) per painting.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.arbitrary import SHARED, bench_data, timed, train
from artify.quality.evaluate import (compute_flows, content_distance, scaled_keyframe_grams, style_distance_per_frame,
                             warping_error)
from artify.features import mix_grams, to_tensor, vgg19
from artify.flow import backward_flows
from artify.methods.arbitrary import (PasticheEncoder, load_network, network_for, style_vector,
                                      stylize_frames)
from artify.devices import cpu_has_native_bf16
from artify.settings import Settings
from artify.media.video import load_image, probe, processing_size, read_frames


def speed(net, clip: Path, sizes, batch: int, reps: int, threads) -> list[dict]:
    meta = probe(clip)
    encoder = PasticheEncoder()
    rows = []
    for size in sizes:
        dims = size if isinstance(size, tuple) else processing_size(meta.width, meta.height, size)
        x = to_tensor(read_frames(clip, 0, batch, dims))
        x_last = x.contiguous(memory_format=torch.channels_last)
        style = torch.randn(batch, 100)
        for n in threads:
            torch.set_num_threads(n)

            def bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    net(x_last, style)

            with torch.no_grad():
                t = timed({"magenta": lambda: net(x, style), "magenta bf16": bf16,
                           "vgg encoder": lambda: encoder(x)}, reps)
            rows.append({"size": f"{dims[0]}x{dims[1]}", "threads": n, "batch": batch,
                         **{f"{k} fps": batch / v for k, v in t.items()},
                         "magenta / encoder time": t["magenta"] / t["vgg encoder"]})
    return rows


def precision(net, clip: Path, painting: Path, sizes, frames: list[int], reps: int, threads: int) -> list[dict]:
    """The arbitrary method in float32 and bfloat16 on the same frames, with its steadiers on (the defaults) and
    off (`temporal: false`: the network alone, batched): fps and the outputs' difference."""
    meta = probe(clip)
    style = load_image(painting, Settings().style_size)
    torch.set_num_threads(threads)
    rows = []
    for size, n in zip(sizes, frames):
        dims = size if isinstance(size, tuple) else processing_size(meta.width, meta.height, size)
        video = read_frames(clip, 0, n, dims)
        flows = backward_flows(video, [1])
        weights = np.ones((len(video), 1))
        outputs = {}

        def run(p, temporal):
            settings = Settings(method="arbitrary", precision=p, temporal=temporal)
            outputs[p, temporal] = np.stack(list(stylize_frames(net, video, weights, [style], settings, "cpu",
                                                                flows=flows)))

        runs = {(p, temporal): lambda p=p, temporal=temporal: run(p, temporal)
                for temporal in (True, False) for p in ("float32", "bfloat16")}
        t = timed(runs, reps)
        for temporal in (True, False):
            difference = np.abs(outputs["bfloat16", temporal].astype(int) - outputs["float32", temporal]).mean()
            rows.append({"size": f"{dims[0]}x{dims[1]}", "steadiers": temporal, "threads": threads, "frames": n,
                         **{f"{p} fps": n / t[p, temporal] for p in ("float32", "bfloat16")},
                         "bfloat16 / float32 speed": t["float32", temporal] / t["bfloat16", temporal],
                         "mean abs difference (of 255)": float(difference)})
    return rows


def _centre_crop_vector(net, image: np.ndarray) -> torch.Tensor:
    """The predictor on the largest centred square, resized to 256 (the usual single view of a painting)."""
    side = min(image.shape[:2])
    y, x = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    crop = cv2.resize(image[y:y + side, x:x + side], (256, 256), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        return net.predict(to_tensor(crop))


def vector_robustness(net, paintings: list[Path], style_video: Path, pairs) -> dict:
    """How far the style vector moves (|v - v'| / |v|) between two views of one style, for one centre crop and
    for ours (the mean over crops and mirrors): the painting and the painting with 10 % of its width cut off
    the right; and two frames half a second apart in one shot of a style video (what keyframe selection may
    pick either of)."""
    def moved(a, b) -> dict:
        return {name: float((f(a) - f(b)).norm() / f(a).norm()) for name, f in
                (("centre crop", lambda i: _centre_crop_vector(net, i)),
                 ("mean over crops", lambda i: style_vector(net, i, "cpu")))}

    rows = {}
    for path in paintings:
        image = load_image(path)
        rows[f"{path.name}, 10 % cut"] = moved(image, image[:, : int(image.shape[1] * 0.9)])
    meta = probe(style_video)
    dims = processing_size(meta.width, meta.height, 455)
    for a, b in pairs:
        fa, fb = (read_frames(style_video, t, 1, dims, Fraction(meta.fps))[0] for t in (a, b))
        rows[f"{style_video.name} frames {a}/{b}"] = moved(fa, fb)
    return rows


def gatys_per_frame(frames, style, cache: Path) -> tuple[np.ndarray, float]:
    if cache.is_file():
        data = np.load(cache)
        return data["frames"], float(data["seconds"])
    from artify.methods.gatys import stylize_frames as gatys_frames

    settings = Settings(temporal=False, tolerance=0.0)
    t = time.perf_counter()
    out = np.stack(list(gatys_frames(vgg19("cpu"), frames, np.ones((len(frames), 1)), [style], settings, "cpu")))
    seconds = time.perf_counter() - t
    np.savez(cache, frames=out, seconds=seconds)
    return out, seconds


def adain_decoder(a) -> tuple[Path, dict]:
    """bench_arbitrary's 500-iteration decoder, trained once into --adain-out (resumable) and reused."""
    from artify.methods.train_arbitrary import expected_time

    out_dir = Path(a.adain_out)
    decoder = out_dir / "decoder.pth"
    if decoder.is_file():
        return decoder, {"reused": str(decoder)}
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(train_iterations=500, train_size=128, train_batch=2, train_width=0.5)
    expected, sentence = expected_time(settings, "cpu", decoder)
    print(sentence, flush=True)
    data = bench_data(Path(a.clip), SHARED / "styles", 128)
    decoder, result = train(data, out_dir, 500, 128, 2, 5e-4, settings.train_temporal_weight, 0.5)
    return decoder, {"expected_s": expected, "took_s": result["seconds_this_run"]}


def side_by_side(rows: list[tuple[str, list[np.ndarray]]], out_png: Path, picks) -> None:
    blocks = []
    for _, videos in rows:
        blocks += [np.concatenate([v[t] for v in videos], axis=1) for t in picks]
    cv2.imwrite(str(out_png), cv2.cvtColor(np.concatenate(blocks, axis=0), cv2.COLOR_RGB2BGR))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=str(SHARED / "videos" / "adain_cutBunny.mp4"))
    p.add_argument("--paintings", default="starry_night.jpg,the_scream.jpg,composition_vii.jpg",
                   help="comma-separated names in ../shared/data/styles")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--start", type=int, default=20, help="first frame of the quality clip (20-35: the bunny moves)")
    p.add_argument("--size", type=int, default=192, help="long side of the quality clip (the demo's Gatys size: "
                   "per-frame Gatys costs about a minute a frame at 192 px on one core)")
    p.add_argument("--batch", type=int, default=4, help="frames per forward pass in the speed test")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads outside the speed test (on a shared "
                   "machine, more threads than free cores slow torch down many times over)")
    p.add_argument("--precision-threads", type=int, default=2, help="torch threads of the precision test")
    p.add_argument("--precision-frames", default="24,8", help="frames of the precision test at 256 px and at 720p "
                   "(24: a chunk of the default chunk_frames)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: speed,precision,vectors,quality")
    p.add_argument("--out", default="bench-out/magenta")
    p.add_argument("--adain-out", default="bench-out/arbitrary", help="the AdaIN decoder's folder (bench_arbitrary's)")
    a = p.parse_args(argv)
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    skip = set(a.skip.split(","))
    paintings = [SHARED / "styles" / name for name in a.paintings.split(",") if name]
    net = network_for(Settings(), "cpu")
    report: dict = {}

    if "speed" not in skip:
        report["speed"] = speed(net, Path(a.clip), [256, 512, (1280, 720)], a.batch, a.reps, (1, 2))
        print(f"\nspeed (CPU, batch {a.batch}, best of {a.reps}): Magenta's transformer in float32 and bfloat16 "
              "against the VGG encoder to relu4_1 (float32) on the same frames")
        print(f"{'size':>9s} {'threads':>7s} {'magenta fps':>12s} {'bf16 fps':>9s} {'encoder fps':>12s} "
              f"{'magenta/encoder time':>21s}")
        for r in report["speed"]:
            print(f"{r['size']:>9s} {r['threads']:7d} {r['magenta fps']:12.2f} {r['magenta bf16 fps']:9.2f} "
                  f"{r['vgg encoder fps']:12.2f} {r['magenta / encoder time']:21.3f}")
    if "precision" not in skip:
        report["precision"] = precision(net, Path(a.clip), paintings[0], [256, (1280, 720)],
                                        [int(n) for n in a.precision_frames.split(",")], a.reps, a.precision_threads)
        print(f"\nprecision (CPU, {a.precision_threads} threads, best of {a.reps}): the arbitrary method (Magenta; "
              f"the style vector in float32, once a run) in float32 and bfloat16; bfloat16 native on this CPU: "
              f"{cpu_has_native_bf16()}")
        print(f"{'size':>9s} {'frames':>6s} {'steadiers':>9s} {'float32 fps':>12s} {'bf16 fps':>9s} {'bf16 speed-up':>14s} "
              f"{'mean |bf16 - f32| (of 255)':>27s}")
        for r in report["precision"]:
            print(f"{r['size']:>9s} {r['frames']:6d} {'on' if r['steadiers'] else 'off':>9s} {r['float32 fps']:12.2f} "
                  f"{r['bfloat16 fps']:9.2f} {r['bfloat16 / float32 speed']:13.2f}x "
                  f"{r['mean abs difference (of 255)']:27.3f}")
    torch.set_num_threads(a.threads)

    if "vectors" not in skip:
        report["vectors"] = vector_robustness(net, paintings, SHARED / "videos" / "moviepy_big_buck_bunny_0_30.webm",
                                              [(100, 112), (200, 212), (300, 312), (400, 412), (450, 462),
                                               (600, 612), (650, 662)])
        print("\nstyle vector moved between two views of one style (|v - v'| / |v|):")
        print(f"{'views':52s} {'centre crop':>12s} {'mean over crops':>16s} {'ratio':>6s}")
        for name, r in report["vectors"].items():
            print(f"{name:52s} {r['centre crop']:12.3f} {r['mean over crops']:16.3f} "
                  f"{r['mean over crops'] / r['centre crop']:6.2f}")

    if "quality" not in skip:
        decoder, training = adain_decoder(a)
        report["adain_training"] = training
        if "expected_s" in training:
            print(f"AdaIN training: expected {training['expected_s']:.0f} s, took {training['took_s']:.0f} s")
        adain = load_network(decoder)
        meta = probe(a.clip)
        dims = processing_size(meta.width, meta.height, a.size)
        frames = read_frames(a.clip, a.start, a.frames, dims, Fraction(meta.fps))
        flows = backward_flows(frames, [1])
        metric_flows = {k: compute_flows(frames, k) for k in (1, 10)}
        floor = {k: warping_error(frames, flows=metric_flows[k])[0] for k in (1, 10)}
        model = vgg19("cpu", pool="max")
        weights = np.ones((len(frames), 1))
        base = Settings(method="arbitrary")
        report["quality"] = {"clip": a.clip, "frames": [a.start, a.start + a.frames], "size": list(dims),
                             "floor": floor, "paintings": {}}
        picture_rows = []
        print(f"\nquality: {Path(a.clip).name} frames {a.start}-{a.start + a.frames - 1} at {dims[0]}x{dims[1]}; "
              f"input floor warp_1 {floor[1]:.5f}, warp_10 {floor[10]:.5f}")
        for painting in paintings:
            style = load_image(painting, base.style_size)
            videos, seconds = {}, {}
            for name, model_, settings in (("magenta off", net, replace(base, temporal=False)),
                                           ("magenta on", net, base),
                                           ("adain-500 on", adain, replace(base, arbitrary_network="adain"))):
                t = time.perf_counter()
                videos[name] = np.stack(list(stylize_frames(model_, frames, weights, [style], settings, "cpu",
                                                            flows=flows)))
                seconds[name] = (time.perf_counter() - t) / len(frames)
            videos["gatys per-frame"], total = gatys_per_frame(
                frames, style, out_dir / f"gatys_{painting.stem}_{a.start}_{a.frames}_{dims[0]}x{dims[1]}.npz")
            seconds["gatys per-frame"] = total / len(frames)
            target = mix_grams(scaled_keyframe_grams([style], size=dims, model=model), [1.0])
            rows = {}
            for name, video in videos.items():
                rows[name] = {"warp_1": warping_error(video, flows=metric_flows[1])[0],
                              "warp_10": warping_error(video, flows=metric_flows[10])[0],
                              "style_distance": float(np.mean(style_distance_per_frame(video, target, model=model))),
                              "content_distance": float(np.mean(content_distance(video, frames, model=model))),
                              "seconds_per_frame": seconds[name]}
            report["quality"]["paintings"][painting.name] = rows
            g, on, off = rows["gatys per-frame"], rows["magenta on"], rows["magenta off"]
            print(f"\n{painting.name}: steadying on/off at interval 1 {on['warp_1'] / off['warp_1']:.3f}x "
                  f"(target <= 0.5), interval 10 {on['warp_10'] / off['warp_10']:.3f}x; magenta (on) style distance "
                  f"{on['style_distance'] / g['style_distance']:.2f}x Gatys's (target <= 1.5)")
            print(f"{'variant':16s} {'warp_1':>9s} {'warp_10':>9s} {'style dist':>11s} {'(x gatys)':>9s} "
                  f"{'content dist':>12s} {'(x gatys)':>9s} {'s/frame':>8s}")
            for name, r in rows.items():
                print(f"{name:16s} {r['warp_1']:9.5f} {r['warp_10']:9.5f} {r['style_distance']:11.3e} "
                      f"{r['style_distance'] / g['style_distance']:9.2f} {r['content_distance']:12.3f} "
                      f"{r['content_distance'] / g['content_distance']:9.2f} {r['seconds_per_frame']:8.3f}")
            picture_rows.append((painting.name, [frames, videos["magenta on"], videos["gatys per-frame"],
                                                 videos["adain-500 on"]]))
        picks = np.linspace(0, len(frames) - 1, 4).round().astype(int)
        side_by_side(picture_rows, out_dir / "side_by_side.png", picks)
    (out_dir / "results.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"\n-> {out_dir}/results.json, side_by_side.png (rows: paintings x 4 frames; columns: input | magenta | "
          "gatys per-frame | adain-500)")


if __name__ == "__main__":
    main()
