"""The arbitrary (AdaIN) method: speed against its encoder, steadiness with and without the steadiers, training.

    python -m bench.arbitrary [--iterations 500] [--train-size 128] [--threads 1] [--frames 48] [--size 256]

1. Decoder widths (--compare-widths, --compare-iterations): the same training (same data, batches, seed and
   learning-rate schedule) for each width; mean training losses over the last half of the steps and losses
   on fixed batches drawn with seeds no step uses, so a lighter decoder's cost in quality is visible.
2. Training (resumable; a rerun reuses or continues the decoder in --out, and starts from the comparison run
   of the same width, whose steps are its first ones): a decoder of width --width (the default train_width)
   trained by `artify.methods.train_arbitrary` on frame pairs of the clip and the paintings of ../shared/data/styles;
   the loss curve goes to loss.png. How trained it is is printed (iterations x batch x crop size).
3. Speed (CPU, float32, batch --batch): frames per second of the whole network (encoder + AdaIN + decoder) at
   256 and 512 px (long side, the clip's aspect) against the encoder's own forward time on the same batch,
   for the trained decoder and for (untrained) decoders of --speed-widths.
4. Steadiness, on the same network and the same frames of the clip, one style, with the pipeline's default
   flows (offset 1 only): warping error (Lai et al.) at intervals 1 and 10 and Gram style distance, for the
   steadiers off (`temporal: false`), each alone, a sweep of flow_blend and flow_blend_long, and on together
   (the defaults); ratios to "off". The input's own warping error is the floor.
   A side-by-side PNG (input | off | on, a few frames) goes to side_by_side.png.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from artify.quality.evaluate import compute_flows, scaled_keyframe_grams, style_distance_per_frame, warping_error
from artify.features import mix_grams, to_tensor, vgg19
from artify.flow import backward_flows
from artify.methods.arbitrary import load_network, mean_std, stylize_frames
from artify.settings import Settings, defaults
from artify.media.video import load_image
from artify.methods.train_arbitrary import (TrainingData, load_images, make_pairs, plot_history, state_path,
                                    train_decoder)
from artify.media.video import probe, processing_size, read_frames

SHARED = Path(os.environ.get("ARTIFY_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def bench_data(clip: Path, styles_dir: Path, size: int, pair_frames: int = 230) -> TrainingData:
    """Every other pair of consecutive frames among the clip's first `pair_frames`, and the style paintings."""
    meta = probe(clip)
    w, h = processing_size(meta.width, meta.height, 0)
    scale = size / min(w, h)
    frames = read_frames(clip, 0, pair_frames, (round(w * scale / 2) * 2, round(h * scale / 2) * 2))
    pairs, flows, masks = make_pairs(frames, size, step=1)
    return TrainingData(pairs[::2], flows[::2], masks[::2], load_images([styles_dir], size))


def train(data: TrainingData, out_dir: Path, iterations: int, size: int, batch: int, lr: float,
          temporal_weight: float, width: float) -> tuple[Path, dict]:
    decoder = out_dir / "decoder.pth"
    t = time.perf_counter()
    result = train_decoder(data, decoder, iterations, size, batch, lr, 10.0, temporal_weight, 25, width, "cpu", 0)
    result["seconds_this_run"] = time.perf_counter() - t
    result["pairs"], result["styles"] = len(data.pairs), len(data.styles)
    plot_history(result["history"], out_dir / "loss.png",
                 f"decoder training: {result['step']} it x batch {batch} x {size} px crops, lr {lr}, width {width}")
    return decoder, result


def fixed_batch_losses(decoder: Path, data: TrainingData, size: int, batch: int, temporal_weight: float,
                    batches: int = 12) -> dict:
    """Mean losses of a trained decoder on fixed batches: crops of the same frames and paintings, drawn with
    generator seeds no training step uses, the same for every decoder compared."""
    from artify.methods.arbitrary import ArbitraryNet, PasticheEncoder, load_decoder
    from artify.methods.train_arbitrary import losses, sample_batch

    net = ArbitraryNet(PasticheEncoder(), load_decoder(decoder)).eval()
    sums: dict = {}
    with torch.no_grad():
        for i in range(batches):
            b = sample_batch(data, batch, size, torch.Generator().manual_seed(10**9 + i), "cpu")
            for k, v in losses(net, b, 10.0, temporal_weight).items():
                sums[k] = sums.get(k, 0.0) + float(v) / batches
    return sums


def compare_widths(data: TrainingData, out_dir: Path, widths, iterations: int, size: int, batch: int, lr: float,
                   temporal_weight: float) -> dict:
    """The same training (same batches, seed, lr schedule, iterations) for each decoder width: the training
    losses over the last half of the steps, and the losses on the same fixed batches (`fixed_batch_losses`)."""
    rows = {}
    for width in widths:
        run_dir = out_dir / f"compare_width_{width:g}"
        run_dir.mkdir(parents=True, exist_ok=True)
        decoder, result = train(data, run_dir, iterations, size, batch, lr, temporal_weight, width)
        h = np.asarray(result["history"]).reshape(-1, 5)
        late = h[len(h) // 2:, 1:].mean(0)
        rows[f"{width:g}"] = {"iterations": result["step"], "seconds_this_run": result["seconds_this_run"],
                              "parameters": int(sum(v.numel() for v in torch.load(decoder, weights_only=True).values())),
                              "train_last_half": dict(zip(("loss", "content", "style", "temporal"), map(float, late))),
                              "fixed_batches": fixed_batch_losses(decoder, data, size, batch, temporal_weight)}
    return rows


def timed(fns: dict, reps: int) -> dict:
    """Best-of-reps seconds of each function, timed in interleaved rounds so a change of machine load
    affects them alike (each runs once untimed first)."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def speed(net, clip: Path, size: int, batch: int, reps: int, widths=()) -> dict:
    """Best-of-reps seconds of the encoder alone and of the whole network on one batch of the clip's frames;
    `widths`: also the whole network with an (untrained) decoder of each of these widths, same encoder."""
    from artify.methods.arbitrary import ArbitraryNet, adain_decoder

    meta = probe(clip)
    dims = processing_size(meta.width, meta.height, size)
    x = to_tensor(read_frames(clip, 0, batch, dims))
    mean, std = torch.rand(1, 512, 1, 1), torch.rand(1, 512, 1, 1) + 0.5
    width = net.decoder[1].out_channels / 256
    others = {f"{w:g}": ArbitraryNet(net.encoder, adain_decoder(w).eval()) for w in widths}
    with torch.no_grad():
        t = timed({"encoder": lambda: net.encode(x), "network": lambda: net(x, mean, std)}
                  | {w: (lambda o=o: o(x, mean, std)) for w, o in others.items()}, reps)
    enc, full = t["encoder"], t["network"]
    others = {w: {"network_s": t[w], "fps": batch / t[w], "ratio": t[w] / enc} for w in others}
    return {"size": f"{dims[0]}x{dims[1]}", "batch": batch, "width": width, "encoder_s": enc, "network_s": full,
            "fps": batch / full, "encoder_fps": batch / enc, "ratio": full / enc, "widths": others}


def side_by_side(rows: list[np.ndarray], out_png: Path, picks) -> None:
    import cv2

    grid = np.concatenate([np.concatenate([r[t] for r in rows], axis=1) for t in picks], axis=0)
    cv2.imwrite(str(out_png), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=str(SHARED / "videos" / "adain_cutBunny.mp4"))
    p.add_argument("--styles", default=str(SHARED / "styles"), help="training style images")
    p.add_argument("--style", default=str(SHARED / "styles" / "udnie.jpg"), help="style of the steadiness test")
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--train-size", type=int, default=128)
    p.add_argument("--train-batch", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--temporal-weight", type=float, default=defaults()["train_temporal_weight"])
    p.add_argument("--width", type=float, default=defaults()["train_width"], help="decoder width trained")
    p.add_argument("--compare-widths", default="1,0.5", help="decoder widths trained alike for comparison")
    p.add_argument("--compare-iterations", type=int, default=150)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--start", type=int, default=100, help="first frame of the steadiness clip")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--sweep-blend", default="0.5,0.7,0.8,0.9", help="flow_blend values tried (ema, no long blend)")
    p.add_argument("--sweep-long", default="0.5:0.5,0.7:0.3,0.7:0.5,0.8:0.3",
                   help="flow_blend:flow_blend_long pairs tried (ema, blend_offset as configured)")
    p.add_argument("--batch", type=int, default=4, help="frames per forward pass in the speed test")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--speed-widths", default="1,0.75,0.5", help="decoder widths timed besides the trained one")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip", default="", help="comma-separated parts to skip: compare,speed,steady")
    p.add_argument("--out", default="bench-out/arbitrary")
    p.add_argument("--decoder", default="", help="use this trained decoder.pth: no comparison, no training")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    skip = set(a.skip.split(","))
    report: dict = {}

    if a.decoder:
        decoder = Path(a.decoder)
    else:
        data = bench_data(Path(a.clip), Path(a.styles), a.train_size)
        if "compare" not in skip:
            widths = [float(w) for w in a.compare_widths.split(",") if w]
            report["compare_widths"] = compare_widths(data, out_dir, widths, a.compare_iterations, a.train_size,
                                                      a.train_batch, a.lr, a.temporal_weight)
            print(f"\ndecoder widths, same training ({a.compare_iterations} iterations x batch {a.train_batch} x "
                  f"{a.train_size}px, same batches): mean losses over the last half of training | on "
                  f"12 fixed batches (seeds no step uses, same images)")
            print(f"{'width':>6s} {'params':>9s} {'total':>8s} {'content':>8s} {'style':>8s} {'temporal':>9s} |"
                  f" {'total':>8s} {'content':>8s} {'style':>8s} {'temporal':>9s}")
            for w, r in report["compare_widths"].items():
                t, h = r["train_last_half"], r["fixed_batches"]
                print(f"{w:>6s} {r['parameters']:9d} {t['loss']:8.2f} {t['content']:8.3f} {t['style']:8.3f} "
                      f"{t['temporal']:9.5f} | {h['loss']:8.2f} {h['content']:8.3f} {h['style']:8.3f} {h['temporal']:9.5f}")
            # the main run's first steps are exactly the comparison run of its width: continue from that one
            same = out_dir / f"compare_width_{a.width:g}" / "decoder.pth.state.pt"
            if same.is_file() and not state_path(out_dir / "decoder.pth").is_file() and \
                    a.compare_iterations <= a.iterations:
                shutil.copyfile(same, state_path(out_dir / "decoder.pth"))
        decoder, tr = train(data, out_dir, a.iterations, a.train_size, a.train_batch, a.lr, a.temporal_weight, a.width)
        hist = np.asarray(tr["history"]).reshape(-1, 5)
        tenth = max(1, len(hist) // 10)
        first, last = hist[:tenth, 1:].mean(0), hist[-tenth:, 1:].mean(0)
        report["training"] = {"iterations": tr["step"], "batch": a.train_batch, "crop": a.train_size, "lr": a.lr,
                              "temporal_weight": a.temporal_weight, "width": a.width, "pairs": tr["pairs"],
                              "styles": tr["styles"], "seconds_this_run": tr["seconds_this_run"],
                              "first_10pct": dict(zip(("loss", "content", "style", "temporal"), map(float, first))),
                              "last_10pct": dict(zip(("loss", "content", "style", "temporal"), map(float, last))),
                              "fixed_batches": fixed_batch_losses(decoder, data, a.train_size, a.train_batch, a.temporal_weight)}
        print(f"\ntraining: {tr['step']} iterations x batch {a.train_batch} x {a.train_size}px crops, width {a.width:g} "
              f"({tr['step'] * a.train_batch} samples; pytorch-AdaIN trains 160000 x 8 x 256px), "
              f"{tr['pairs']} frame pairs, {tr['styles']} styles; {tr['seconds_this_run']:.0f} s this run")
        print(f"{'losses':14s} {'total':>8s} {'content':>8s} {'style':>8s} {'temporal':>9s}")
        for name, v in (("first 10%", first), ("last 10%", last)):
            print(f"{name:14s} {v[0]:8.2f} {v[1]:8.3f} {v[2]:8.3f} {v[3]:9.5f}")
        h = report["training"]["fixed_batches"]
        print(f"{'fixed batches':14s} {h['loss']:8.2f} {h['content']:8.3f} {h['style']:8.3f} {h['temporal']:9.5f}")
    net = load_network(decoder)

    if "speed" not in skip:
        widths = [float(w) for w in a.speed_widths.split(",") if w]
        report["speed"] = [speed(net, Path(a.clip), s, a.batch, a.reps, widths) for s in (256, 512)]
        print(f"\nspeed (CPU float32, {a.threads} threads, batch {a.batch}; best of {a.reps}), trained decoder "
              f"(width {report['speed'][0]['width']:g}), then untrained decoders of other widths:")
        print(f"{'size':>9s} {'decoder':>12s} {'network fps':>12s} {'encoder fps':>12s} {'network/encoder':>16s}")
        for r in report["speed"]:
            print(f"{r['size']:>9s} {'trained ' + format(r['width'], 'g'):>12s} {r['fps']:12.2f} "
                  f"{r['encoder_fps']:12.2f} {r['ratio']:16.2f}")
            for w, o in r["widths"].items():
                print(f"{r['size']:>9s} {'width ' + w:>12s} {o['fps']:12.2f} {r['encoder_fps']:12.2f} {o['ratio']:16.2f}")

    if "steady" not in skip:
        meta = probe(a.clip)
        dims = processing_size(meta.width, meta.height, a.size)
        from fractions import Fraction

        frames = read_frames(a.clip, a.start, a.frames, dims, Fraction(meta.fps))
        style = load_image(a.style, defaults()["style_size"])
        flows = backward_flows(frames, [1])
        weights = np.ones((len(frames), 1))
        base = defaults() | {"method": "arbitrary"}
        d = defaults()
        long_alone = d["flow_blend_long"] or 0.5  # the long-range blend alone (its default, or 0.5 when off)
        variants = {
            "off": base | {"temporal": False},
            "ema only": base | {"flow_blend": 0.0, "flow_blend_long": 0.0},
            "clip only": base | {"flow_blend": 0.0, "flow_blend_long": 0.0, "smooth_stats": "clip"},
            f"blend {d['flow_blend']:g} only": base | {"smooth_stats": "none", "flow_blend_long": 0.0},
            f"long {long_alone:g} only": base | {"smooth_stats": "none", "flow_blend": 0.0,
                                                "flow_blend_long": long_alone},
        }
        for b in (float(x) for x in a.sweep_blend.split(",") if x):
            variants[f"ema, blend {b:g}"] = base | {"flow_blend": b, "flow_blend_long": 0.0}
        for pair in (x for x in a.sweep_long.split(",") if x):
            b, long = (float(v) for v in pair.split(":"))
            variants[f"ema, blend {b:g}, long {long:g}"] = base | {"flow_blend": b, "flow_blend_long": long}
        variants["on (defaults)"] = base
        metric_flows = {k: compute_flows(frames, k) for k in (1, 10)}
        model = vgg19("cpu", pool="max")
        target = mix_grams(scaled_keyframe_grams([style], size=dims, model=model), [1.0])
        floor = {k: warping_error(frames, flows=metric_flows[k])[0] for k in (1, 10)}
        rows, videos = {}, {}
        for name, settings in variants.items():
            same = next((n for n in rows if variants[n] == settings), None)
            if same is not None:  # e.g. the defaults are one of the sweep's rows
                rows[name], videos[name] = rows[same], videos[same]
                continue
            t = time.perf_counter()
            video = np.stack(list(stylize_frames(net, frames, weights, [style], Settings(**settings), "cpu",
                                                 flows=flows)))
            seconds = time.perf_counter() - t
            videos[name] = video
            rows[name] = {"warp_1": warping_error(video, flows=metric_flows[1])[0],
                          "warp_10": warping_error(video, flows=metric_flows[10])[0],
                          "style_distance": float(np.mean(style_distance_per_frame(video, target, model=model))),
                          "seconds_per_frame": seconds / len(frames),
                          "settings": {k: settings[k] for k in ("temporal", "smooth_stats", "stats_momentum",
                                                                "flow_blend", "flow_blend_long", "blend_offset")}}
        report["steady"] = {"clip": a.clip, "frames": [a.start, a.start + a.frames], "size": list(dims),
                            "style": a.style, "floor": floor, "rows": rows}
        off = rows["off"]
        print(f"\nsteadiness: {Path(a.clip).name} frames {a.start}-{a.start + a.frames - 1} at {dims[0]}x{dims[1]}, "
              f"style {Path(a.style).name}; input floor warp_1 {floor[1]:.5f}, warp_10 {floor[10]:.5f}")
        print(f"{'variant':26s} {'warp_1':>9s} {'(x off)':>8s} {'warp_10':>9s} {'(x off)':>8s} "
              f"{'style dist':>11s} {'(x off)':>8s} {'s/frame':>8s}")
        for name, r in rows.items():
            print(f"{name:26s} {r['warp_1']:9.6f} {r['warp_1'] / off['warp_1']:8.3f} {r['warp_10']:9.6f} "
                  f"{r['warp_10'] / off['warp_10']:8.3f} {r['style_distance']:11.3e} "
                  f"{r['style_distance'] / off['style_distance']:8.3f} {r['seconds_per_frame']:8.3f}")
        picks = np.linspace(0, len(frames) - 1, 4).round().astype(int)
        side_by_side([frames, videos["off"], videos["on (defaults)"]], out_dir / "side_by_side.png", picks)
    (out_dir / "results.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"\n-> {out_dir}/results.json, loss.png, side_by_side.png")


if __name__ == "__main__":
    main()
