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
    from artify.video import write_frames_h264

    frames = textured_video(24)
    for i, f in enumerate(frames):
        f[:8, :8] = i * 10
    path = tmp_path / "small video ü.mp4"  # a space and unicode: paths must survive every stage
    wav = tmp_path / "tone.wav"
    from artify.demo import _tone

    _tone(wav, 1.0)
    write_frames_h264(path, frames, Fraction(24), crf=0, audio=wav, audio_copy=False, duration=Fraction(1))
    return path
