"""Material for judging a result by eye: a side-by-side video, a contact sheet and per-frame plots.

- side_by_side: input | output | the current style (the scheduled keyframes blended by their weights), with
  the schedule's weights drawn as a coloured bar under the three panels (the colours of schedule.png).
- video_contact_sheet: evenly spaced frames, each input above its output, captioned with frame and time.
- plot_per_frame: warping error and style distance per frame (the job and any baselines, the input as the
  floor; a sampled style distance as points) above the schedule's weights, on one time axis.

Videos are read in blocks of frames, so memory stays flat in the clip length. Modules that load torch are
imported only where needed, so the light stages start fast.
"""
from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pandas as pd

from artify.media.pixels import resize_scaled, round_to_uint8
from artify.progress import progress
from artify.atomic import atomic_path
from artify.media.video import VideoMeta, probe, read_frames, write_frames_h264
from artify.style.keyframes import load_keyframe_images
from artify.style.schedule import StyleSchedule

# matplotlib's default colour cycle (tab10), so the bar matches the stacked areas of schedule.png
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
_BLOCK = 32


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def fit_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` scaled to fit inside width x height, keeping its aspect, centred on black."""
    h, w = image.shape[:2]
    s = min(width / w, height / h)
    resized = resize_scaled(image, s)
    nh, nw = resized.shape[:2]
    canvas = np.zeros((height, width, 3), np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    canvas[y:y + nh, x:x + nw] = resized
    return canvas


def _label(img: np.ndarray, text: str) -> None:
    scale = max(0.3, img.shape[0] / 400)
    org = (4, 4 + int(12 * scale))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def weight_bar(weights: np.ndarray, width: int, height: int) -> np.ndarray:
    """A horizontal bar split into one coloured segment per style, as long as its weight (weights sum to 1)."""
    bar = np.full((height, width, 3), 32, np.uint8)
    total = float(np.sum(weights))
    x = 0.0
    for k, wk in enumerate(weights):
        if wk <= 0:
            continue
        x2 = x + width * float(wk) / total
        bar[:, int(round(x)):int(round(x2))] = _rgb(PALETTE[k % len(PALETTE)])
        x = x2
    return bar


def bar_height(frame_height: int) -> int:
    return max(6, int(round(frame_height / 16 / 2)) * 2)


def compose(inp: np.ndarray, out: np.ndarray, style: np.ndarray, weights: np.ndarray, frame: int) -> np.ndarray:
    """One side-by-side frame: input | output | style, and the weight bar under them."""
    h, w = out.shape[:2]
    panels = [inp.copy(), out.copy(), style.copy()]
    k = int(np.argmax(weights))
    for img, text in zip(panels, (f"input {frame}", "output", f"style {k} ({weights[k]:.2f})")):
        _label(img, text)
    return np.vstack([np.hstack(panels), weight_bar(weights, 3 * w, bar_height(h))])


def side_by_side(content, stylized, meta_json, schedule_tsv, keyframes_tsv, keyframe_dir, out, crf: int = 20) -> int:
    """results/{job}/side_by_side.mp4: input | output | current style over the weight bar, with the output's
    audio. Size (3 W, H + bar) for an output of W x H. Returns the number of frames."""
    meta = VideoMeta.load(meta_json)
    fps = Fraction(meta.fps)
    result = probe(stylized)
    w, h, n = result.width, result.height, result.frames
    weights = StyleSchedule.load(schedule_tsv).weights_range(0, n)
    keyframes = [fit_image(k, w, h).astype(np.float32)
                 for k in load_keyframe_images(keyframes_tsv, keyframe_dir, 2 * max(w, h))]
    if weights.shape[1] != len(keyframes):
        raise ValueError(f"{schedule_tsv}: {weights.shape[1]} styles scheduled but {len(keyframes)} keyframes")

    def frames():
        for start in range(0, n, _BLOCK):
            count = min(_BLOCK, n - start)
            outs = read_frames(stylized, start, count, fps=fps)
            ins = read_frames(content, start, count, size=(w, h), meta=meta)
            if len(outs) != count or len(ins) != count:
                raise ValueError(f"{stylized} / {content}: could not read frames {start}..{start + count}")
            for i in range(count):
                wt = weights[start + i]
                style = sum(float(wk) * keyframes[k] for k, wk in enumerate(wt) if wk > 0)
                yield compose(ins[i], outs[i], round_to_uint8(style), wt, start + i)

    write_frames_h264(out, progress(frames(), "side by side", n), fps, crf=crf,
                      audio=stylized if result.audio else None, audio_copy=True,
                      duration=n / fps if result.audio else None)
    return n


def video_contact_sheet(content, stylized, meta_json, out_png, frames: int = 8, columns: int = 4,
                        thumb_width: int = 240) -> tuple[int, int]:
    """A PNG grid of `frames` evenly spaced frames (first and last included), each cell the input above
    the output, captioned with frame number and time. Returns the sheet's (width, height)."""
    from PIL import Image, ImageDraw, ImageFont

    meta = VideoMeta.load(meta_json)
    fps = Fraction(meta.fps)
    result = probe(stylized)
    w, h, n = result.width, result.height, result.frames
    picks = sorted(set(np.linspace(0, n - 1, min(frames, n)).round().astype(int).tolist()))
    tw = min(thumb_width, w)
    th = max(1, round(h * tw / w))
    caption_h, pad = 16, 4
    cols = min(columns, len(picks))
    rows = -(-len(picks) // cols)
    cell_w, cell_h = tw, 2 * th + caption_h
    sheet = Image.new("RGB", (cols * (cell_w + pad) + pad, rows * (cell_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, f in enumerate(picks):
        out = read_frames(stylized, f, 1, fps=fps)
        inp = read_frames(content, f, 1, size=(w, h), meta=meta)
        if not len(out) or not len(inp):
            raise ValueError(f"{stylized} / {content}: could not read frame {f}")
        x = pad + (i % cols) * (cell_w + pad)
        y = pad + (i // cols) * (cell_h + pad)
        draw.text((x + 2, y + 2), f"frame {f}  {float(f / fps):.2f} s", fill="black", font=font)
        for j, img in enumerate((inp[0], out[0])):
            sheet.paste(Image.fromarray(img).resize((tw, th), Image.Resampling.LANCZOS), (x, y + caption_h + j * th))
    with atomic_path(out_png) as tmp:
        sheet.save(tmp, format="PNG")
    return sheet.size


def _per_frame_values(ax, seconds: pd.Series, values: pd.Series, label: str, **line) -> None:
    """A per-frame column as a line when it has a value at every frame; a sampled one (style distance on
    `eval_frames` of them, empty elsewhere) as points at the frames it was measured on, labelled with how
    many: a line through them would draw values that were never measured."""
    measured = values.notna()
    if measured.all():
        ax.plot(seconds, values, label=label, **line)
        return
    ax.plot(seconds[measured], values[measured], ls="none", marker="o", ms=3.5, color=line.get("color"),
            label=f"{label} ({int(measured.sum())} of {len(values)} frames)")


def plot_per_frame(per_frame_tsvs: dict, schedule_tsv, fps, out_png) -> None:
    """Three panels over time: warping error (short range, every frame) and style distance (on the frames
    it was measured on: points when sampled) per frame of each labelled per-frame.tsv (the first is the job;
    the rest e.g. its baselines), the input's as a dashed floor; and the schedule's style weights, stacked."""
    from artify.figures import pyplot, save_figure  # here: matplotlib only for the plot

    plt = pyplot()

    fps = float(Fraction(fps))
    tables = {label: pd.read_csv(path, sep="\t") for label, path in per_frame_tsvs.items()}
    if not tables:
        raise ValueError("plot_per_frame needs at least one per-frame table")
    first = next(iter(tables.values()))
    fig, (ax_w, ax_s, ax_k) = plt.subplots(3, 1, figsize=(9, 7), dpi=100, sharex=True,
                                           gridspec_kw={"height_ratios": [3, 3, 1.5]})
    for label, t in tables.items():
        ax_w.plot(t["frame"] / fps, t["warp_error_short"], label=label, lw=1.2)
        _per_frame_values(ax_s, t["frame"] / fps, t["style_distance"], label, lw=1.2)
    ax_w.plot(first["frame"] / fps, first["warp_error_input_short"], "k--", lw=1, label="input (floor)")
    _per_frame_values(ax_s, first["frame"] / fps, first["style_distance_input"], "input", color="k", ls="--", lw=1)
    values = pd.concat([t["warp_error_short"] for t in tables.values()] + [first["warp_error_input_short"]]).dropna()
    if len(values) and (values > 0).all():
        ax_w.set_yscale("log")
    ax_w.set(ylabel="warping error\n(t-1 -> t)", title="per frame")
    ax_s.set(ylabel="style distance\n(to schedule)")
    schedule = StyleSchedule.load(schedule_tsv)
    seconds = np.arange(schedule.num_frames) / fps
    ax_k.stackplot(seconds, schedule.table.T, labels=[f"style {k}" for k in range(schedule.num_styles)],
                   colors=[PALETTE[k % len(PALETTE)] for k in range(schedule.num_styles)], step="post")
    ax_k.set(xlabel="time (s)", ylabel="weight", ylim=(0, 1))
    for ax in (ax_w, ax_s, ax_k):
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
        ax.grid(alpha=0.3)
    ax_k.set_xlim(0, max(float(first["frame"].max()) / fps, 1e-9))
    fig.tight_layout()
    save_figure(fig, out_png)
