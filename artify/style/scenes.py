"""Scenes of a style source: where its style may change.

A style source is a video, a single image, a folder of images or a text file listing images. Every kind
becomes the same scenes table (start_frame, end_frame exclusive, start_time, end_time in seconds), so
keyframe selection, merging and the schedule follow one rule for all: an image is a one-frame scene.

For videos PySceneDetect finds the cuts (`video_cuts`, for any video: a style source here, a content video
elsewhere), on frames the pipeline's own reader gives, so cuts are in the pipeline's frame numbers. Each
detector's default threshold was chosen on a labelled set of 21 clips made from real media
(`python -m bench.scenes`: 33 hard cuts, 3 dissolves, 17 negative events such as fades, flashes,
fast pans and camera shake), by recall first, then precision: a missed cut is a lost style, while a
spurious split costs little, because keyframe merging folds scenes of one style back together. The
adaptive detector at 2.0 finds every hard cut and 2 of 3 dissolves, with 3 spurious splits (two flashes, a
fade-in); the former 8.0, chosen on one clip, missed every cut in fast motion (adaptive ratios 2.4-8).
config/README.md has the whole table.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from artify.atomic import atomic_write_text
from artify.media.video import MediaError, VideoMeta, probe, processing_size, read_frames

SCENE_COLUMNS = ["start_frame", "end_frame", "start_time", "end_time"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
LIST_SUFFIXES = {".txt", ".lst"}
# Each detector's threshold means something else (ratio, score, histogram or hash distance, mean luma);
# defaults per detector, chosen on the labelled set of bench.scenes (config/README.md has the table).
DEFAULT_THRESHOLDS = {"adaptive": 2.0, "content": 35.0, "histogram": 0.2, "hash": 0.35, "threshold": 12.0}
DETECTION_SIZE = 256  # long side of the frames the detectors see
HASH_SIZE = 8  # perceptual hash of HASH_SIZE^2 bits (PySceneDetect's HashDetector default)
DETECTION_BATCH = 480  # frames read at a time


def source_kind(source) -> str:
    """'video', 'image', 'folder' or 'list' (a text file naming images), from what is on disk."""
    path = Path(source)
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise MediaError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in LIST_SUFFIXES:
        return "list"
    return "video"


def style_images(source) -> list[Path]:
    """The images of an image, folder or list source, in schedule order.

    A folder's images are sorted by name (so 01_, 02_ ... give the order); a list file names one image per
    line, relative to the list's folder, '#' starting a comment — for an order that names cannot give.
    """
    path = Path(source)
    kind = source_kind(path)
    if kind == "image":
        images = [path]
    elif kind == "folder":
        images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    elif kind == "list":
        lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
        images = [(path.parent / ln) for ln in lines if ln]
        missing = [str(p) for p in images if not p.is_file()]
        if missing:
            raise MediaError(f"{path}: lists images that do not exist: {', '.join(missing[:3])}")
    else:
        raise MediaError(f"{path}: a video, not an image source")
    if not images:
        raise MediaError(f"{path}: contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def detect_scenes(source, out_tsv, *, detector: str, threshold: float | None, min_scene_frames: int,
                  min_change: float) -> pd.DataFrame:
    """Write and return the scenes table of a style source (see the module docstring), with the detect_scenes
    stage's settings (scene_detector, scene_threshold, min_scene_frames, scene_min_change: checked there).

    threshold None (or 0) takes the detector's measured default (DEFAULT_THRESHOLDS); min_change: see
    `confirm_cuts`. A video without cuts is one scene covering all its frames.
    """
    if source_kind(source) == "video":
        scenes = _video_scenes(Path(source), detector, threshold, min_scene_frames, min_change)
    else:
        scenes = image_scenes(len(style_images(source)))
    write_scenes(scenes, out_tsv)
    return scenes


def image_scenes(n_images: int) -> pd.DataFrame:
    """One one-frame scene per image: images have no time, so all times are 0."""
    return pd.DataFrame({"start_frame": range(n_images), "end_frame": range(1, n_images + 1),
                         "start_time": 0.0, "end_time": 0.0})[SCENE_COLUMNS]


def _video_scenes(path: Path, detector: str, threshold: float, min_scene_frames: int,
                 min_change: float) -> pd.DataFrame:
    meta = probe(path)  # validates the file (MediaError names it) and gives the exact frame count and fps
    starts = [0, *video_cuts(path, detector, threshold, min_scene_frames, min_change, meta)]
    ends = [*starts[1:], meta.frames]
    return frames_to_scenes(starts, ends, meta.fps_fraction)


def frames_to_scenes(starts: list[int], ends: list[int], fps: Fraction) -> pd.DataFrame:
    """Scenes table from frame ranges, times computed from the exact frame rate."""
    return pd.DataFrame({"start_frame": starts, "end_frame": ends,
                         "start_time": [round(float(s / fps), 6) for s in starts],
                         "end_time": [round(float(e / fps), 6) for e in ends]})[SCENE_COLUMNS]


def video_cuts(path, detector: str, threshold: float | None, min_scene_frames: int, min_change: float,
               meta: VideoMeta | None = None, max_frames: int = 0) -> list[int]:
    """The frames of any video (a style source or a content video) where a new shot starts, in the
    pipeline's frame numbers (a variable-rate video's frames at its constant rate, as every stage reads them):
    `find_cuts` on its `detection_frames` (the first max_frames of them; 0 = all)."""
    meta = meta or probe(path)
    frames = min(meta.frames, max_frames) if max_frames else meta.frames
    cuts = find_cuts(detection_frames(path, meta, frames), meta.fps_fraction, detector, threshold,
                     min_scene_frames, min_change)
    return [c for c in cuts if 0 < c < frames]


def detection_frames(path, meta: VideoMeta | None = None, frames: int | None = None):
    """A video's frames (its first `frames`; None = all) as the detectors see them: read by ffmpeg at
    DETECTION_SIZE on the long side (PySceneDetect's own default is to shrink frames to about 256 px wide), in
    batches, so memory does not grow with the video."""
    meta = meta or probe(path)
    size = processing_size(meta.width, meta.height, DETECTION_SIZE)
    total = meta.frames if frames is None else min(frames, meta.frames)
    for start in range(0, total, DETECTION_BATCH):
        yield from read_frames(path, start, min(DETECTION_BATCH, total - start), size=size, meta=meta)


def find_cuts(frames, fps: Fraction, detector: str, threshold: float | None, min_scene_frames: int,
              min_change: float) -> list[int]:
    """Frame numbers where a new scene starts, from an iterable of uint8 RGB frames: the cuts one of
    PySceneDetect's detectors finds (`artify.settings.DETECTORS`; threshold None = its measured default,
    DEFAULT_THRESHOLDS) that `confirm_cuts` keeps."""
    cuts, hashes = detect_cuts(frames, fps, detector, threshold, min_scene_frames)
    return confirm_cuts(cuts, hashes, min_scene_frames, min_change)


def detect_cuts(frames, fps: Fraction, detector: str, threshold: float | None,
                min_scene_frames: int) -> tuple[list[int], np.ndarray]:
    """The cuts the detector finds, and every frame's perceptual hash (for `confirm_cuts`)."""
    from scenedetect import FrameTimecode, HashDetector

    scene_detector = make_detector(detector, threshold, min_scene_frames)
    cuts, hashes, position = [], [], None
    for i, frame in enumerate(frames):
        position = FrameTimecode(i, fps)
        bgr = np.ascontiguousarray(frame[:, :, ::-1])
        cuts += scene_detector.process_frame(position, bgr)
        hashes.append(HashDetector.hash_frame(bgr, HASH_SIZE, 2).ravel())
    if position is not None:
        cuts += scene_detector.post_process(position)
    return sorted({c.frame_num for c in cuts}), np.array(hashes, bool).reshape(-1, HASH_SIZE * HASH_SIZE)


def confirm_cuts(cuts: list[int], hashes: np.ndarray, min_scene_frames: int, min_change: float) -> list[int]:
    """The cuts across which the picture's structure really changes: the frames half a shortest scene
    before and after the cut differ in at least `min_change` of their perceptual hash bits (0 keeps all).

    The hash is PySceneDetect's HashDetector's (signs of the low DCT frequencies of the luma against their
    median): it ignores brightness and contrast, so a fade, a dip to black or a flash inside one shot (the
    same picture, darker or lighter) and a shake (the same picture, shifted a little) change few bits, while
    a cut to another shot, or to the far side of a dissolve, changes many. Measured on the labelled set
    (python -m bench.scenes): across true cuts and dissolves at least 0.375 of the bits, across the
    adaptive detector's spurious cuts at most 0.22.
    """
    gap = max(1, min_scene_frames // 2)
    kept = []
    for k in cuts:
        before, after = hashes[max(0, k - 1 - gap)], hashes[min(len(hashes) - 1, k + gap)]
        if min_change <= 0 or np.count_nonzero(before != after) >= min_change * hashes.shape[1]:
            kept.append(k)
    return kept


def make_detector(detector: str, threshold: float | None, min_scene_frames: int):
    """A PySceneDetect detector by name (`artify.settings.DETECTORS`) with its threshold (None or 0 =
    DEFAULT_THRESHOLDS) and shortest scene; the settings that give them are checked when they are built."""
    from scenedetect import AdaptiveDetector, ContentDetector, HashDetector, HistogramDetector, ThresholdDetector

    if threshold is None or threshold == 0:
        threshold = DEFAULT_THRESHOLDS[detector]
    if detector == "adaptive":
        return AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_scene_frames)
    if detector == "content":
        return ContentDetector(threshold=threshold, min_scene_len=min_scene_frames)
    if detector == "histogram":
        return HistogramDetector(threshold=threshold, min_scene_len=min_scene_frames)
    if detector == "hash":
        return HashDetector(threshold=threshold, min_scene_len=min_scene_frames)
    return ThresholdDetector(threshold=threshold, min_scene_len=min_scene_frames)


def write_scenes(scenes: pd.DataFrame, out_tsv) -> None:
    atomic_write_text(out_tsv, scenes.to_csv(sep="\t", index=False))


def load_scenes(path) -> pd.DataFrame:
    """Read a scenes table, checking it has the columns and sane frame ranges."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: scenes table not found")
    scenes = pd.read_csv(path, sep="\t")
    missing = [c for c in SCENE_COLUMNS if c not in scenes.columns]
    if missing:
        raise ValueError(f"{path}: scenes table lacks columns {missing}")
    if scenes.empty or (scenes.end_frame <= scenes.start_frame).any():
        raise ValueError(f"{path}: scenes table is empty or has a scene with end_frame <= start_frame")
    return scenes
