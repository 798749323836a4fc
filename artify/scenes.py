"""Scenes of a style source: where its style may change.

A style source is a video, a single image, a folder of images or a text file listing images. Every kind
becomes the same scenes table (start_frame, end_frame exclusive, start_time, end_time in seconds), so
keyframe selection, merging and the schedule follow one rule for all: an image is a one-frame scene.

For videos PySceneDetect finds the cuts. The adaptive detector's default ratio (8.0, not PySceneDetect's
3.0) was measured on Big Buck Bunny's first 30 s (moviepy_big_buck_bunny_0_30.webm): its three real cuts
(frames 283, 376, 551) score adaptive ratios of 50, 92 and 49, while a fade-in from black (frame 31, 3.9)
and a slow pan (frame 139, 4.1) score under 4.2 and were reported as cuts at 3.0. 8.0 sits about twice
above the false ones and six times below the weakest real cut.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pandas as pd

from .video import MediaError, atomic_write_text, probe

SCENE_COLUMNS = ["start_frame", "end_frame", "start_time", "end_time"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
LIST_SUFFIXES = {".txt", ".lst"}
DETECTORS = ("adaptive", "content", "threshold")
# Each detector's threshold means something else (ratio, score, mean luma); defaults per detector.
DEFAULT_THRESHOLDS = {"adaptive": 8.0, "content": 27.0, "threshold": 12.0}


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


def detect_scenes(source, out_tsv, detector: str = "adaptive", threshold: float | None = None,
                  min_scene_frames: int = 15) -> pd.DataFrame:
    """Write and return the scenes table of a style source (see the module docstring).

    threshold None takes the detector's measured default (DEFAULT_THRESHOLDS). A video without cuts is one
    scene covering all its frames.
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown scene detector {detector!r} ({', '.join(DETECTORS)})")
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS[detector]
    if threshold <= 0 or min_scene_frames < 1:
        raise ValueError(f"scene threshold must be > 0 and min_scene_frames >= 1, got {threshold}, "
                         f"{min_scene_frames}")
    if source_kind(source) == "video":
        scenes = _video_scenes(Path(source), detector, threshold, min_scene_frames)
    else:
        scenes = image_scenes(len(style_images(source)))
    write_scenes(scenes, out_tsv)
    return scenes


def image_scenes(n_images: int) -> pd.DataFrame:
    """One one-frame scene per image: images have no time, so all times are 0."""
    return pd.DataFrame({"start_frame": range(n_images), "end_frame": range(1, n_images + 1),
                         "start_time": 0.0, "end_time": 0.0})[SCENE_COLUMNS]


def _video_scenes(path: Path, detector: str, threshold: float, min_scene_frames: int) -> pd.DataFrame:
    meta = probe(path)  # validates the file (MediaError names it) and gives the exact frame count and fps
    cuts = [c for c in _detect_cuts(path, detector, threshold, min_scene_frames) if 0 < c < meta.frames]
    starts = [0, *sorted(set(cuts))]
    ends = [*starts[1:], meta.frames]
    return frames_to_scenes(starts, ends, meta.fps_fraction)


def frames_to_scenes(starts: list[int], ends: list[int], fps: Fraction) -> pd.DataFrame:
    """Scenes table from frame ranges, times computed from the exact frame rate."""
    return pd.DataFrame({"start_frame": starts, "end_frame": ends,
                         "start_time": [round(float(s / fps), 6) for s in starts],
                         "end_time": [round(float(e / fps), 6) for e in ends]})[SCENE_COLUMNS]


def _detect_cuts(path: Path, detector: str, threshold: float, min_scene_frames: int) -> list[int]:
    """Frame numbers where a new scene starts (the first scene's 0 included)."""
    from scenedetect import (AdaptiveDetector, ContentDetector, SceneManager, ThresholdDetector,
                             VideoOpenFailure, open_video)

    if detector == "adaptive":
        scene_detector = AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_scene_frames)
    elif detector == "content":
        scene_detector = ContentDetector(threshold=threshold, min_scene_len=min_scene_frames)
    else:
        scene_detector = ThresholdDetector(threshold=threshold, min_scene_len=min_scene_frames)
    try:
        video = open_video(str(path))
        manager = SceneManager()
        manager.add_detector(scene_detector)
        manager.detect_scenes(video)
        scene_list = manager.get_scene_list(start_in_scene=True)
    except VideoOpenFailure as e:
        raise MediaError(f"{path}: PySceneDetect could not open the video ({e})") from None
    return [start.frame_num for start, _ in scene_list]


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
