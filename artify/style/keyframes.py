"""Keyframes of a style source: one sharp, representative frame per distinct style.

The rule, per scene of scenes.tsv (artify.style.scenes):
1. sample `samples_per_scene` frames evenly inside the scene (at the centres of equal parts, so the frames
   right at a cut, often mid-transition, are not taken);
2. drop near-uniform samples (near-black, near-white or flat: fades and title cards carry no style) and
   blurred ones: Laplacian variance under `blur_threshold` times that of the scene's sharpest sample.
   Relative, because the absolute variance depends on the content (sky against foliage), the resolution and
   the compression, so no single number fits every scene, while within one scene a low ratio means motion
   blur, defocus or a fade (the variance scales with contrast squared: 0.2 drops frames with less than ~45%
   of the sharpest one's edge contrast). The sharpest sample always survives;
3. keep the sample whose VGG19 Gram signature (the style loss's own statistics) is closest to the mean Gram
   of the kept samples: the mean Gram is the Gram of the whole scene's features, so this is the frame most
   representative of the scene's style.
Then neighbouring keyframes whose Gram distance is under `merge_threshold` are merged (closest pair first),
and merging goes on, closest first, until at most `max_keyframes` remain; a merged group keeps the keyframe
of its longer part. A video without cuts (one scene) is cut into `max_keyframes` equal parts that are
treated as scenes, so the same merge decides how many styles it really has. Images (an image, a folder, a
list) are each a keyframe candidate as they are (chosen by hand, so never filtered); the merge still applies.

The default merge_threshold (see its comment in artify/settings.py) was measured on Big Buck Bunny's first 30 s
and synthetic scenes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from artify.media.pixels import resize_long_side
from artify.style.scenes import load_scenes, source_kind, style_images
from artify.atomic import atomic_path, atomic_write_text, check_replaceable, claim_folder
from artify.media.video import MediaError, load_image, probe, processing_size, read_frames

if TYPE_CHECKING:  # the Gram measurements import torch where they run: reading a keyframe table needs none
    import torch

KEYFRAME_COLUMNS = ["keyframe", "file", "source_frame", "time", "scene", "scenes", "duration_frames",
                    "distance_to_next"]
MAX_KEYFRAME_SIDE = 1024  # keyframes keep their resolution up to this long side; stylize resizes them again
# Near-uniform frames, on 8-bit luma: too dark, too bright or too flat to carry a style.
NEAR_BLACK_MEAN = 20.0
NEAR_WHITE_MEAN = 235.0
FLAT_STD = 10.0
_KEYFRAME_FILE = re.compile(r"keyframe_\d{3,}\.png")


@dataclass
class Candidate:
    """A keyframe candidate: the chosen frame of one scene (or image) and its style signature."""
    scene: int  # row of scenes.tsv
    source_frame: int
    time: float
    image: np.ndarray = field(repr=False)  # uint8 RGB, long side <= MAX_KEYFRAME_SIDE
    grams: dict[str, torch.Tensor] = field(repr=False)  # (1, C, C) per layer, on the CPU


@dataclass
class StyleGroup:
    """Consecutive scenes sharing one style: its keyframe, its scenes and how many frames they span."""
    keyframe: Candidate
    scenes: list[int]
    duration_frames: int
    keyframe_duration: int  # frames of the part the keyframe came from: decides which keyframe a merge keeps


def select_keyframes(source, scenes_tsv, out_dir, out_tsv, *, samples_per_scene: int, blur_threshold: float,
                     merge_threshold: float, max_keyframes: int, size: int = 256,
                     device: str = "cpu") -> pd.DataFrame:
    """Choose, write (out_dir/keyframe_000.png ...) and tabulate (out_tsv) the keyframes of a style source,
    with the select_keyframes stage's settings (keyframe_samples, blur_threshold, merge_threshold,
    max_keyframes: checked there).

    `size` is the long side at which sharpness and Gram signatures are measured: the style size stylize
    uses, so merge distances mean what the style loss will see.
    """
    if size < 32:
        raise ValueError(f"need size >= 32, got {size}")
    kind = source_kind(source)  # a missing source fails before the model loads
    check_replaceable(out_dir, "select-keyframes")  # its stale keyframes are removed: only in a folder it made
    scenes = load_scenes(scenes_tsv)
    from artify.features import vgg19  # here, as below: the keyframe table's readers (schedule, report) need no torch

    model = vgg19(device)
    if kind == "video":
        groups = _video_groups(Path(source), scenes, samples_per_scene, blur_threshold, max_keyframes, size,
                               model, device)
    else:
        groups = _image_groups(Path(source), Path(scenes_tsv), scenes, size, model, device)
    groups = merge_groups(groups, merge_threshold, max_keyframes)
    table = _write_keyframes(groups, Path(out_dir))
    atomic_write_text(out_tsv, table.to_csv(sep="\t", index=False))
    return table


# --- video sources --------------------------------------------------------------------------------------

def _video_groups(path: Path, scenes: pd.DataFrame, samples: int, blur_threshold: float, max_keyframes: int,
                  size: int, model, device) -> list[StyleGroup]:
    meta = probe(path)
    if int(scenes.end_frame.max()) > meta.frames:
        raise ValueError(f"{path}: scenes table reaches frame {int(scenes.end_frame.max())} but the video has "
                         f"{meta.frames} frames (scenes of another video?)")
    fps = meta.fps_fraction
    out_size = processing_size(meta.width, meta.height, min(MAX_KEYFRAME_SIDE, max(meta.width, meta.height)))
    parts = _parts(scenes, max_keyframes)
    candidates = []
    for scene, start, end in parts:
        frames = sample_frames(start, end, samples)
        images = np.concatenate([read_frames(path, f, 1, size=out_size, meta=meta) for f in frames])
        if len(images) != len(frames):
            raise MediaError(f"{path}: could not read frames {frames} of scene {scene}")
        candidates.append(_scene_candidate(scene, frames, images, float(fps), blur_threshold, size, model,
                                           device))
    return _group_parts(parts, candidates, path)


def _parts(scenes: pd.DataFrame, max_keyframes: int) -> list[tuple[int, int, int]]:
    """(scene, start, end) frame ranges to pick one keyframe from: the scenes, or for a video without cuts
    `max_keyframes` equal parts of it (evenly spaced candidates for the merge to thin out)."""
    rows = [(i, int(r.start_frame), int(r.end_frame)) for i, r in enumerate(scenes.itertuples())]
    if len(rows) > 1:
        return rows
    _, start, end = rows[0]
    n = min(max_keyframes, end - start)
    bounds = [start + round(k * (end - start) / n) for k in range(n + 1)]
    return [(0, a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def sample_frames(start: int, end: int, n: int) -> list[int]:
    """n frames evenly inside [start, end), at the centres of n equal parts (distinct, ascending)."""
    length = end - start
    n = min(n, length)
    return [start + int((k + 0.5) * length / n) for k in range(n)]


def usable_mask(analysis_images: np.ndarray, blur_threshold: float) -> np.ndarray:
    """Which frames may be keyframes: not near-uniform, and sharp relative to the sharpest usable one."""
    luma = luminance(analysis_images)
    mean, std = luma.mean(axis=(1, 2)), luma.std(axis=(1, 2))
    uniform = (mean < NEAR_BLACK_MEAN) | (mean > NEAR_WHITE_MEAN) | (std < FLAT_STD)
    sharpness = laplacian_variance(luma)
    if uniform.all():
        return ~uniform
    return ~uniform & (sharpness >= blur_threshold * sharpness[~uniform].max())


def luminance(images: np.ndarray) -> np.ndarray:
    """8-bit RGB (N, H, W, 3) -> float luma (N, H, W), BT.601 weights."""
    return images[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def laplacian_variance(luma: np.ndarray) -> np.ndarray:
    """Variance of the 4-neighbour Laplacian per image (N,): the standard focus measure (Pech-Pacheco 2000)."""
    lap = (luma[:, :-2, 1:-1] + luma[:, 2:, 1:-1] + luma[:, 1:-1, :-2] + luma[:, 1:-1, 2:]
           - 4 * luma[:, 1:-1, 1:-1])
    return lap.var(axis=(1, 2))


def _scene_candidate(scene: int, frames: list[int], images: np.ndarray, fps: float, blur_threshold: float,
                     size: int, model, device) -> Candidate | None:
    """The usable sample closest to the scene's mean Gram, or None when no sample is usable."""
    analysis = np.stack([resize_long_side(im, size) for im in images])
    keep = np.flatnonzero(usable_mask(analysis, blur_threshold))
    if keep.size == 0:
        return None
    from artify.features import gram_distance

    grams = _grams(analysis[keep], model, device)
    mean = {name: g.mean(0, keepdim=True).expand_as(g) for name, g in grams.items()}
    best = int(gram_distance(grams, mean).argmin())
    i = int(keep[best])
    return Candidate(scene, frames[i], round(frames[i] / fps, 6), images[i],
                     {name: g[best:best + 1] for name, g in grams.items()})


def _group_parts(parts, candidates, path) -> list[StyleGroup]:
    """One group per part with a keyframe; a part without one (all black, say) joins its neighbour's."""
    if all(c is None for c in candidates):
        raise ValueError(f"{path}: no usable keyframe: every sampled frame is near-black, near-white or flat")
    groups: list[StyleGroup] = []
    pending_scenes, pending_frames = [], 0  # parts before the first keyframe join the first group
    for (scene, start, end), cand in zip(parts, candidates):
        if cand is None and groups:
            groups[-1].scenes = _union(groups[-1].scenes, [scene])
            groups[-1].duration_frames += end - start
        elif cand is None:
            pending_scenes, pending_frames = _union(pending_scenes, [scene]), pending_frames + end - start
        else:
            groups.append(StyleGroup(cand, _union(pending_scenes, [scene]), pending_frames + end - start,
                                     end - start))
            pending_scenes, pending_frames = [], 0
    return groups


# --- image sources --------------------------------------------------------------------------------------

def _image_groups(source: Path, scenes_tsv: Path, scenes: pd.DataFrame, size: int, model,
                  device) -> list[StyleGroup]:
    paths = style_images(source)
    if len(scenes) != len(paths):
        raise ValueError(f"{scenes_tsv}: has {len(scenes)} scenes but {source} has {len(paths)} images "
                         f"(scenes of another source?)")
    groups = []
    for i, p in enumerate(paths):
        image = load_image(p, MAX_KEYFRAME_SIDE, enlarge=False)
        grams = _grams(resize_long_side(image, size)[None], model, device)
        groups.append(StyleGroup(Candidate(i, i, 0.0, image, grams), [i], 1, 1))
    return groups


# --- shared ---------------------------------------------------------------------------------------------

def _grams(analysis_images: np.ndarray, model, device) -> dict[str, torch.Tensor]:
    from artify.features import style_grams, to_tensor

    grams = style_grams(model, to_tensor(analysis_images, device))
    return {name: g.float().cpu() for name, g in grams.items()}


def candidate_style_distance(a: Candidate, b: Candidate) -> float:
    """Relative Gram distance in [0, 2]: per layer, gram_distance(a, b) over the mean of the two Grams' own
    squared norms, averaged over the layers.

    The raw distance scales with the VGG weights' input convention (0-255 Caffe features give ~1e8, [0, 1]
    ones ~1e-2) and is dominated by whichever layer has the largest Grams; the per-layer ratio does neither,
    so one merge_threshold means the same for any weights, layers and video (Gram entries are >= 0, which
    bounds each ratio by 2). Measured separation is better too: see merge_threshold's comment in
    artify/settings.py.
    """
    from artify.features import gram_distance

    ratios = []
    for name, ga in a.grams.items():
        gb = b.grams[name]
        energy = (ga.pow(2).sum() + gb.pow(2).sum()) / 2
        ratios.append(float(gram_distance({name: ga}, {name: gb})[0] / energy.clamp_min(1e-12)))
    return float(np.mean(ratios))


def merge_groups(groups: list[StyleGroup], merge_threshold: float, max_keyframes: int) -> list[StyleGroup]:
    """Merge neighbours, closest first, while they are under merge_threshold or too many remain.

    Closest-first (agglomerative clustering along the timeline) merges the pairs that differ least, so a
    cap to max_keyframes removes the least visible style changes. The merged group keeps the keyframe of the
    longer part, the one that stands for more of the video.
    """
    groups = list(groups)
    while len(groups) > 1:
        distances = [candidate_style_distance(a.keyframe, b.keyframe) for a, b in zip(groups, groups[1:])]
        i = int(np.argmin(distances))
        if distances[i] >= merge_threshold and len(groups) <= max_keyframes:
            break
        a, b = groups[i], groups[i + 1]
        keep = a if a.keyframe_duration >= b.keyframe_duration else b
        groups[i:i + 2] = [StyleGroup(keep.keyframe, _union(a.scenes, b.scenes),
                                      a.duration_frames + b.duration_frames, keep.keyframe_duration)]
    return groups


def _union(a: list[int], b: list[int]) -> list[int]:
    return sorted(set(a) | set(b))


def _write_keyframes(groups: list[StyleGroup], out_dir: Path) -> pd.DataFrame:
    """Write the keyframe PNGs (atomically, stale ones from an earlier run removed) and build the table."""
    claim_folder(out_dir, "select-keyframes")
    rows = []
    for k, group in enumerate(groups):
        name = f"keyframe_{k:03d}.png"
        with atomic_path(out_dir / name) as tmp:
            Image.fromarray(group.keyframe.image).save(tmp, format="PNG", compress_level=3)  # 3x faster than 6, +6%
        following = groups[k + 1].keyframe if k + 1 < len(groups) else None
        rows.append({"keyframe": k, "file": name, "source_frame": group.keyframe.source_frame,
                     "time": group.keyframe.time, "scene": group.scenes[0],
                     "scenes": ",".join(str(s) for s in group.scenes), "duration_frames": group.duration_frames,
                     "distance_to_next": (round(candidate_style_distance(group.keyframe, following), 6)
                                          if following is not None else np.nan)})
    written = {r["file"] for r in rows}
    for stale in out_dir.iterdir():
        if _KEYFRAME_FILE.fullmatch(stale.name) and stale.name not in written:
            stale.unlink()
    return pd.DataFrame(rows, columns=KEYFRAME_COLUMNS)


def read_keyframe_table(path) -> pd.DataFrame:
    """Read a keyframes table, checking its columns; `scenes` stays text ("0,1")."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: keyframes table not found")
    table = pd.read_csv(path, sep="\t", dtype={"scenes": str, "file": str})
    missing = [c for c in KEYFRAME_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: keyframes table lacks columns {missing}")
    if table.empty:
        raise ValueError(f"{path}: keyframes table has no keyframes")
    if (table.duration_frames <= 0).any():
        raise ValueError(f"{path}: every keyframe needs duration_frames > 0")
    return table


# --- contact sheet --------------------------------------------------------------------------------------

def load_keyframe_images(keyframes_tsv, keyframe_dir, long_side: int) -> list[np.ndarray]:
    """The keyframes' images in the table's order, each resized to `long_side` (the stylization's, the
    metrics' and the report's style images)."""
    table = pd.read_csv(keyframes_tsv, sep="\t")
    return [load_image(Path(keyframe_dir) / name, long_side) for name in table["file"]]


def contact_sheet(keyframes_tsv, keyframe_dir, out_png, thumb_width: int = 256, columns: int = 4) -> None:
    """A PNG grid of the keyframes, each captioned with its number, time and scenes: to check at a glance
    that the keyframes are the styles one expects."""
    table = read_keyframe_table(keyframes_tsv)
    font = ImageFont.load_default()
    caption_h = 18
    thumbs = []
    for row in table.itertuples():
        path = Path(keyframe_dir) / row.file
        image = Image.fromarray(load_image(path, MAX_KEYFRAME_SIDE, enlarge=False))
        thumb_h = max(1, round(image.height * thumb_width / image.width))
        thumbs.append((image.resize((thumb_width, thumb_h), Image.Resampling.LANCZOS),
                       f"#{row.keyframe}  {row.time:.2f} s  scenes {row.scenes}"))
    cell_h = max(t.height for t, _ in thumbs) + caption_h
    n_cols = min(columns, len(thumbs))
    n_rows = -(-len(thumbs) // n_cols)
    pad = 4
    sheet = Image.new("RGB", (n_cols * (thumb_width + pad) + pad, n_rows * (cell_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (thumb, caption) in enumerate(thumbs):
        x = pad + (i % n_cols) * (thumb_width + pad)
        y = pad + (i // n_cols) * (cell_h + pad)
        sheet.paste(thumb, (x, y))
        draw.text((x + 2, y + thumb.height + 3), caption, fill="black", font=font)
    with atomic_path(out_png) as tmp:
        sheet.save(tmp, format="PNG")
