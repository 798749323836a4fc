"""Cuts of the content video: the frames where a new shot starts.

The same detection as the style source's scenes (`artify.style.scenes.video_cuts`, its defaults chosen on the
labelled set of `bench.scenes`) runs on the content video, in the pipeline's frame numbers, into
cuts.tsv (columns frame, time) beside meta.json. Two stages read it:
  - stylize_chunk splits a chunk into its shots (`shot_starts`) and stylizes each as if it were the start of
    the video: no temporal loss, warm start, flow blend or statistics smoothing reaches across a cut. A frame
    whose flow to the frame before is reliable on less than `min_reliable` of its pixels (a flash, a whip pan,
    a cut the detector missed) starts a shot too, so the warm start falls back to a cold start there;
  - plan_schedule moves style boundaries onto nearby cuts (`sync_cuts`), where the style switches hard.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from artify.atomic import atomic_write_text
from artify.media.video import MediaError, VideoMeta
from artify.style.scenes import video_cuts

CUT_COLUMNS = ["frame", "time"]


def detect_content_cuts(video, meta_json, out_tsv, *, detector: str, threshold: float, min_shot_frames: int,
                        min_change: float, max_frames: int) -> list[int]:
    """Write and return the cuts of a content video (frames where a shot starts, in the pipeline's frame numbers:
    those of meta.json, the first max_frames of them; 0 = all), with the detect_cuts stage's settings (checked
    there). detector `none`: no cuts (one shot)."""
    meta = VideoMeta.load(meta_json)
    cuts = [] if detector == "none" else video_cuts(video, detector, threshold or None, min_shot_frames,
                                                    min_change, meta, max_frames)
    write_cuts(cuts, meta.fps_fraction, out_tsv)
    return cuts


def write_cuts(cuts: list[int], fps: Fraction, out_tsv) -> None:
    table = pd.DataFrame({"frame": [int(c) for c in cuts],
                          "time": [round(float(c / Fraction(fps)), 6) for c in cuts]})[CUT_COLUMNS]
    atomic_write_text(out_tsv, table.to_csv(sep="\t", index=False))


def load_cuts(path) -> list[int]:
    """The cut frames of a cuts.tsv, checked: whole frame numbers above 0, increasing."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: cuts table not found")
    table = pd.read_csv(path, sep="\t")
    if list(table.columns) != CUT_COLUMNS:
        raise MediaError(f"{path}: a cuts table needs columns {CUT_COLUMNS}; found {list(table.columns)}")
    frames = table.frame.to_numpy()
    if len(frames) and (not np.issubdtype(frames.dtype, np.integer) or frames[0] < 1 or (np.diff(frames) <= 0).any()):
        raise MediaError(f"{path}: cut frames must be whole numbers above 0, increasing")
    return [int(f) for f in frames]


def reliable_fractions(flows: dict) -> np.ndarray:
    """Per frame, the fraction of its pixels where the flow to the frame before is reliable (mask_1)."""
    masks = flows["mask_1"]
    return masks.reshape(len(masks), -1).astype(np.float32).mean(1)


def shot_starts(cuts: list[int], start: int, stop: int, reliable: np.ndarray | None = None,
                min_reliable: float = 0.0) -> list[int]:
    """Where shots start among frames [start, stop) (a chunk), counted from `start`: 0, every cut inside, and
    every later frame whose reliable fraction (`reliable_fractions` of these frames) is below min_reliable."""
    starts = {0} | {c - start for c in cuts if start < c < stop}
    if reliable is not None and min_reliable > 0:
        if len(reliable) != stop - start:
            raise ValueError(f"{len(reliable)} reliable fractions for frames [{start}, {stop})")
        starts |= {t for t in range(1, stop - start) if reliable[t] < min_reliable}
    return sorted(starts)


def shots(starts: list[int], n: int) -> list[tuple[int, int]]:
    """[a, b) ranges of the shots beginning at `starts` among n frames."""
    bounds = [*starts, n]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
