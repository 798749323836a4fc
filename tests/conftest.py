"""Shared fixtures: the real media in ../shared/data, and small synthetic videos."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ARTIFY_SHARED_DATA", REPO.parent / "shared" / "data"))


def require_shared(*parts) -> Path:
    """A file from ../shared/data: missing data fails the test under CI=true and skips it elsewhere."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"real test media missing: {path}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def bunny_clip() -> Path:
    """640x360, 24 fps, 240 frames, AAC audio, one cut at frame 235."""
    return require_shared("videos", "adain_cutBunny.mp4")


@pytest.fixture
def painting() -> Path:
    return require_shared("styles", sorted(p.name for p in require_shared("styles").iterdir())[0])


def textured_video(n: int = 12, width: int = 96, height: int = 64, seed: int = 0, speed: int = 2) -> np.ndarray:
    """A random texture panning right by `speed` px per frame: known motion for flow and chunk tests."""
    rng = np.random.default_rng(seed)
    world = rng.integers(0, 256, (height, width + n * speed, 3), dtype=np.uint8)
    world = np.repeat(np.repeat(world[::4, ::4], 4, 0), 4, 1)[:height, : width + n * speed]
    return np.stack([world[:, t * speed: t * speed + width] for t in range(n)])


@pytest.fixture
def small_video(tmp_path) -> Path:
    """A 24-frame 96x64 H.264 clip at 24 fps, with audio, whose frame i carries i in its top-left block."""
    from artify.media.video import write_frames_h264

    frames = textured_video(24)
    for i, f in enumerate(frames):
        f[:8, :8] = i * 10
    path = tmp_path / "small video ü.mp4"  # a space and unicode: paths must survive every stage
    wav = tmp_path / "tone.wav"
    from artify.demo import _tone

    _tone(wav, 1.0)
    write_frames_h264(path, frames, Fraction(24), crf=0, audio=wav, audio_copy=False, duration=Fraction(1))
    return path


# Screenshots and other files a person may want to look at after a run (kept, unlike tmp_path).
ARTEFACTS = Path(os.environ.get("ARTIFY_TEST_ARTEFACTS", REPO / "test-artefacts"))


@pytest.fixture
def artefacts() -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS


TINTS = {"alpha": 0, "beta": 1, "gamma": 2}  # job -> the colour channel its "stylized" video turns up


@pytest.fixture
def tinted_jobs(tmp_path):
    """Three finished jobs on one content video, each its own colour so a picture tells which job it shows:
    content (48 frames 160x96 at 24 fps, a panning texture), meta.json, and per job results/{job}/ with
    stylized.mp4 (the content with one channel raised to 230), side_by_side.mp4, per-frame.tsv (job beta has
    the worst warping error, at frame 30), per-frame.png and metrics.json. Returns (root, entries for
    artify.quality.compare.compare)."""
    import json

    import cv2
    import pandas as pd

    from artify.media.video import probe, write_frames_h264

    root = tmp_path / "run dir"
    frames = textured_video(48, 160, 96)
    content = root / "content clip.mp4"
    write_frames_h264(content, frames, Fraction(24), crf=12)
    probe(content).save(root / "meta.json")
    entries = []
    for i, (job, channel) in enumerate(TINTS.items()):
        d = root / "results" / job
        out = frames.copy()
        out[..., channel] = 230
        write_frames_h264(d / "stylized.mp4", out, Fraction(24), crf=12)
        write_frames_h264(d / "side_by_side.mp4", np.concatenate([frames, out], 2), Fraction(24), crf=23)
        errors = np.r_[np.nan, np.linspace(0.01, 0.02, 47) * (i + 1)]
        errors[30] = 0.5 if job == "beta" else 0.1
        pd.DataFrame({"frame": np.arange(48), "warp_error_short": errors}).to_csv(d / "per-frame.tsv", sep="\t",
                                                                                index=False)
        plot = np.full((70, 90, 3), 255, np.uint8)
        plot[:, :, channel] = 120
        cv2.imwrite(str(d / "per-frame.png"), plot)
        metrics = {"warp_error": {"short": 0.01 * (i + 1), "long": 0.03}, "warp_error_input": {"short": 0.005, "long": 0.01},
                   "flicker": 0.002, "flicker_input": 0.001, "style_distance": 9478902880.0 / (i + 1),
                   "style_distance_input": 37715968896.0, "content_distance": 0.5, "ssim": 0.4,
                   "seconds_per_frame": 3.0, "peak_memory_mb": 1234.5}
        (d / "metrics.json").write_text(json.dumps(metrics))
        entries.append({"job": job, "kind": "result", "metrics": str(d / "metrics.json"), "settings": "gatys",
                        "video": str(d / "stylized.mp4"), "per_frame": str(d / "per-frame.tsv"),
                        "plot": str(d / "per-frame.png"), "side_by_side": str(d / "side_by_side.mp4")})
    return root, entries
