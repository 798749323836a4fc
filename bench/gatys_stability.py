"""Does the Gatys optimiser stay finite, and at what loss? The sweep behind issue 14's choice.

Runs the gatys method with the pipeline's defaults over a fixed set of cases — the demo (its own keyframes
and schedule, cross-fades included) chunked as the pipeline chunks it, and two real clips from ../shared/data
with each of the 8 paintings alone and 4 pairs cross-faded over the frames — at 96 / 192 / 256 px, per-frame
(temporal: false) and temporal (flows, warm starts), and writes one row per frame: whether the optimiser's
output was finite, and the frame's style and content loss as the optimiser defines them
(`gatys.style_loss` against the frame's scheduled Gram mix, `gatys.content_loss` on relu4_2), measured on
the uint8 frame that would be written.

The code under test is whatever `artify` imports, so one script measures before and after:
    PYTHONPATH=/path/to/old/checkout python -m bench.gatys_stability --out before.tsv
    python -m bench.gatys_stability --out after.tsv
    python -m bench.gatys_stability --compare before.tsv after.tsv
`--quick` runs a few frames of each case group (minutes, for a smoke test).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PAINTINGS = ["starry_night", "the_scream", "shipwreck", "woman-with-hat-matisse", "composition_vii", "wave",
             "udnie", "mondrian"]
PAIRS = [("starry_night", "the_scream"), ("wave", "udnie"), ("mondrian", "composition_vii"),
         ("shipwreck", "woman-with-hat-matisse")]
CLIPS = {"bunny": ("adain_cutBunny.mp4", 100), "chaplin": ("moviepy_chaplin.mp4", 100)}


def cases(quick: bool) -> list[dict]:
    """The sweep: each case is frames of one source x styles x size x mode, with the frames it keeps.

    The demo is stylized temporally, chunked as the pipeline chunks it (24 frames after an overlap of 4: cold
    starts at frames 0, 20 and 44, the rest warm); per-frame cases sample frames (each is independent of the
    others, so a sample is a fair draw). CPU time on a shared 2-core machine decided the sampling.
    """
    out = []
    # temporal, chunked as the pipeline chunks it: all 72 frames at 96 and 192 px (make run's size), and the
    # first 30 at 256 px (two chunks: cold starts at 0 and, inside the first cross-fade, at 20)
    for size, n in ((96, 72), (192, 72), (256, 30)):
        out.append(dict(source="demo", styles="demo keyframes", size=size, mode="temporal", frames=n))
    for size, step in ((192, 6), (96, 8), (256, 12)):
        out.append(dict(source="demo", styles="demo keyframes", size=size, mode="per-frame", frames=72,
                        keep=list(range(2, 72, step))))
    styles = ["+".join(st) for st in [(p,) for p in PAINTINGS] + PAIRS]  # 8 alone, 4 pairs cross-faded
    for clip in CLIPS:
        for name in styles:
            out.append(dict(source=clip, styles=name, size=192, mode="per-frame", frames=24, keep=[11]))
            out.append(dict(source=clip, styles=name, size=96, mode="temporal", frames=8))
        out.append(dict(source=clip, styles=styles[8 if clip == "bunny" else 9], size=192, mode="temporal",
                        frames=12))
    for name in styles[::2]:
        out.append(dict(source="bunny", styles=name, size=256, mode="per-frame", frames=24, keep=[11]))
    for name in styles:
        out.append(dict(source="chaplin", styles=name, size=96, mode="per-frame", frames=24, keep=[11]))
    if quick:
        out = [dict(c, frames=min(c["frames"], 6), keep=[k for k in c.get("keep", range(6)) if k < 6][:2] or [0])
               for c in out[::6]]
    return out


def frames_of(case: dict, demo_dir: Path) -> np.ndarray:
    from artify.media.video import processing_size, probe, read_frames

    if case["source"] == "demo":
        path, start = demo_dir.parent.parent / "resources/demo/content.mp4", 0
    else:
        name, start = CLIPS[case["source"]]
        path = DATA / "videos" / name
    meta = probe(path)
    return read_frames(path, start, case["frames"], size=processing_size(meta.width, meta.height, case["size"]),
                       fps=__import__("fractions").Fraction(meta.fps))


def styles_of(case: dict, demo_dir: Path, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Keyframe images (long side style_size, as stylize_chunk loads them) and (n, K) schedule rows."""
    from artify.style.schedule import StyleSchedule
    from artify.media.video import load_image

    if case["styles"] == "demo keyframes":
        table = pd.read_csv(demo_dir / "keyframes.tsv", sep="\t")
        images = [load_image(demo_dir / "keyframes" / f, 256) for f in table["file"]]
        return images, StyleSchedule.load(demo_dir / "schedule.tsv").weights_range(0, n)
    names = case["styles"].split("+")
    images = [load_image(DATA / "styles" / f"{name}.jpg", 256) for name in names]
    if len(names) == 1:
        return images, np.ones((n, 1))
    a = np.linspace(0, 1, n)[:, None]  # a cross-fade from the first to the second over the frames
    return images, np.hstack([1 - a, a])


def settings_object(values: dict):
    """What the methods take: an artify.settings.Settings since issue 20, the plain dict before (the script
    measures old code too)."""
    try:
        from artify.settings import Settings
    except ImportError:
        return values
    return Settings(**values)


def run_case(case: dict, demo_dir: Path, model, settings: dict) -> list[dict]:
    from artify.features import mix_grams, to_tensor
    from artify.flow import backward_flows
    from artify.methods import gatys

    try:
        from artify.features import keyframe_grams
    except ImportError:  # an artify from before issue 20 (the script measures old code too) had it in gatys
        keyframe_grams = gatys.keyframe_grams

    frames = frames_of(case, demo_dir)
    keyframes, weights = styles_of(case, demo_dir, len(frames))
    s = dict(settings, temporal=case["mode"] == "temporal")
    method_settings = settings_object(s)
    finite: dict[int, bool] = {}
    outputs: dict[int, np.ndarray] = {}
    original = gatys.to_uint8

    def recording(rgb):  # the method's float output, before it becomes pixels
        # an overlap frame is made by two chunks and blended: it is broken if either made it non-finite
        finite[current[0]] = finite.get(current[0], True) and bool(torch.isfinite(rgb).all())
        return original(rgb)

    gatys.to_uint8 = recording
    current = [0]
    try:
        if case["mode"] == "temporal":  # chunks as plan_chunks makes them: 24 frames after an overlap of 4
            starts = list(range(0, len(frames), 24))
            for start in starts:
                read_start = max(0, start - 4)
                stop = min(len(frames), start + 24)
                chunk = frames[read_start:stop]
                flows = backward_flows(chunk, [1])
                current[0] = read_start
                for t, out in enumerate(gatys.stylize_frames(model, chunk, weights[read_start:stop], keyframes,
                                                             method_settings, "cpu", flows=flows)):
                    if read_start + t >= start:
                        outputs[read_start + t] = out
                    current[0] = read_start + t + 1
        else:
            for t in case["keep"]:
                current[0] = t
                outputs[t] = next(iter(gatys.stylize_frames(model, frames[t:t + 1], weights[t:t + 1], keyframes,
                                                            method_settings, "cpu")))
    except FloatingPointError as e:  # the new code refuses to write a non-finite frame; count it
        print(f"  refused: {e}", flush=True)
        finite.setdefault(current[0], False)
    finally:
        gatys.to_uint8 = original
    layers_c = s["content_layers"].split(",")
    layers_s = s["style_layers"].split(",")
    grams = keyframe_grams(model, keyframes, layers_s, "cpu")
    rows = []
    keep = sorted(outputs) if case["mode"] == "temporal" else case["keep"]
    for t in keep:
        row = dict(source=case["source"], styles=case["styles"], size=case["size"], mode=case["mode"], frame=t,
                   finite=finite.get(t, False), style_loss=np.nan, content_loss=np.nan)
        if t in outputs and row["finite"]:
            with torch.no_grad():
                feats = model(to_tensor(outputs[t]), layers_c + layers_s)
                targets = model(to_tensor(frames[t]), layers_c)
                row["style_loss"] = float(gatys.style_loss(feats, mix_grams(grams, weights[t])))
                row["content_loss"] = float(gatys.content_loss(feats, targets))
        rows.append(row)
    return rows


def compare(before: Path, after: Path) -> pd.DataFrame:
    """Per group (source, size, mode): frames, non-finite before/after, median losses before/after."""
    b, a = pd.read_csv(before, sep="\t"), pd.read_csv(after, sep="\t")
    keys = ["source", "styles", "size", "mode", "frame"]
    m = b.merge(a, on=keys, suffixes=("_before", "_after"))
    m["group"] = np.where(m["source"] == "demo", "demo", "clips " + m["mode"])
    rows = []
    for (group, size, mode), g in m.groupby(["group", "size", "mode"]):
        both = g[g["finite_before"] & g["finite_after"]]
        rows.append({
            "cases": f"{group} {size}px {mode}", "frames": len(g), "styles": g["styles"].nunique(),
            "non-finite before": int((~g["finite_before"]).sum()), "non-finite after": int((~g["finite_after"]).sum()),
            "style loss before": both["style_loss_before"].median(),
            "style loss after": both["style_loss_after"].median(),
            "content loss before": both["content_loss_before"].median(),
            "content loss after": both["content_loss_after"].median(),
            "frames style worse >10%": int((both["style_loss_after"] > 1.1 * both["style_loss_before"]).sum()),
        })
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="per-frame results (TSV); rows are appended per case, so a rerun resumes")
    p.add_argument("--demo-dir", default=str(REPO / "results/demo"),
                   help="a pipeline run's results/demo (keyframes.tsv, keyframes/, schedule.tsv)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sources", default="demo,bunny,chaplin", help="the sources to run, in this order")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    a = p.parse_args(argv)
    if a.compare:
        print(compare(Path(a.compare[0]), Path(a.compare[1])).to_markdown(index=False, floatfmt=".4g"))
        return 0
    import artify
    from artify.features import vgg19
    from artify.settings import defaults

    torch.set_num_threads(a.threads)
    print(f"artify from {Path(artify.__file__).parent}", flush=True)
    out = Path(a.out)
    done = set()
    if out.exists():
        prev = pd.read_csv(out, sep="\t")
        done = {(r.source, r.styles, int(r.size), r.mode) for r in prev.itertuples()}
    model = vgg19("cpu")
    settings = defaults()
    order = a.sources.split(",")
    for case in sorted((c for c in cases(a.quick) if c["source"] in order), key=lambda c: order.index(c["source"])):
        key = (case["source"], case["styles"], case["size"], case["mode"])
        if key in done:
            continue
        t0 = time.time()
        torch.manual_seed(settings["seed"])
        rows = run_case(case, Path(a.demo_dir), model, settings)
        table = pd.DataFrame(rows)
        table.to_csv(out, sep="\t", index=False, mode="a", header=not out.exists())
        print(f"{key}: {len(rows)} frames, {int((~table['finite']).sum())} non-finite, median style "
              f"{table['style_loss'].median():.4g} content {table['content_loss'].median():.4g} "
              f"({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
