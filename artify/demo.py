"""The built-in demo: a content clip and a style video made offline, procedurally.

Content: a landscape seen by a panning camera (three parallax layers: mountains, hills, trees) with a ball
bouncing across it, and a tone with a rhythm as audio — real camera and object motion, real sound.
Style: a video of three clearly different "paintings" (warm brush strokes, cool swirls, a dark mosaic),
each a scene that drifts slowly, separated by hard cuts, so scene detection finds three styles.
"""
from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from artify.atomic import temporary_sibling
from artify.media.video import write_frames_h264

FPS = Fraction(24)


def _ridge(rng, width, base, amplitude, roughness):
    """A 1-D mountain profile: sum of random sines, periodic in x so the pan can run far."""
    x = np.arange(width)
    y = np.full(width, float(base))
    for k in range(1, 7):
        y += amplitude / k**roughness * np.sin(2 * np.pi * k * x / width + rng.uniform(0, 2 * np.pi))
    return y


def content_frames(n_frames: int = 72, width: int = 320, height: int = 180, seed: int = 1):
    rng = np.random.default_rng(seed)
    world = width * 4  # the periodic world the camera pans over
    far = _ridge(rng, world, height * 0.45, height * 0.12, 1.0)
    near = _ridge(rng, world, height * 0.65, height * 0.08, 1.5)
    trees = rng.integers(0, world, 40)
    texture = rng.normal(0, 10, (height, world, 3))  # grain so flow has something to follow
    yy = np.arange(height)[:, None]
    for t in range(n_frames):
        frame = np.zeros((height, width, 3), np.float32)
        sky = np.linspace(0, 1, height)[:, None, None]
        frame[:] = (1 - sky) * np.array([110, 160, 235]) + sky * np.array([235, 215, 190])
        cv2.circle(frame, (int(width * 0.8), int(height * 0.2)), height // 10, (255, 230, 120), -1, cv2.LINE_AA)
        for profile, speed, colour in ((far, 1.0, (90, 100, 140)), (near, 2.5, (70, 130, 70))):
            offset = int(t * speed)
            cols = (np.arange(width) + offset) % world
            mask = yy > profile[cols][None, :]
            shade = np.array(colour, np.float32) + texture[:, cols] * (0.5 + speed / 5)
            frame[mask] = shade[mask]
        offset = int(t * 4.0)  # trees are nearest: fastest parallax
        for x in trees:
            sx = (x - offset) % world
            if sx < width + 10:
                base = int(height * 0.9)
                cv2.rectangle(frame, (sx - 2, base - 20), (sx + 2, base), (80, 55, 35), -1)
                cv2.circle(frame, (sx, base - 26), 10, (40, 95, 45), -1, cv2.LINE_AA)
        # the subject: a ball crossing the frame on a bouncing path against the pan
        bx = int(width * (0.1 + 0.8 * t / max(1, n_frames - 1)))
        by = int(height * 0.75 - abs(np.sin(t / 5.0)) * height * 0.4)
        cv2.circle(frame, (bx, by), height // 12, (210, 40, 40), -1, cv2.LINE_AA)
        cv2.circle(frame, (bx - 4, by - 4), height // 40, (255, 200, 200), -1, cv2.LINE_AA)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def _strokes(rng, height, width, palette, n):
    img = np.full((height, width, 3), palette[0], np.uint8)
    for _ in range(n):
        x, y = rng.integers(0, width), rng.integers(0, height)
        angle, length = rng.uniform(0, np.pi), rng.integers(8, 30)
        colour = tuple(int(c) for c in palette[rng.integers(1, len(palette))])
        dx, dy = int(np.cos(angle) * length), int(np.sin(angle) * length)
        cv2.line(img, (x, y), (x + dx, y + dy), colour, int(rng.integers(2, 6)), cv2.LINE_AA)
    return img


def _swirls(rng, height, width):
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for _ in range(6):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = np.hypot(xx - cx, yy - cy)
        a = np.arctan2(yy - cy, xx - cx)
        img[..., 2] += 60 * (1 + np.sin(r / 4 + 3 * a))
        img[..., 1] += 25 * (1 + np.cos(r / 7 - 2 * a))
    img[..., 0] += 30
    return np.clip(img / 2.2, 0, 255).astype(np.uint8)


def _mosaic(rng, height, width):
    img = np.zeros((height, width, 3), np.uint8)
    for _ in range(160):
        pts = rng.integers(0, [width, height], (3, 2)).astype(np.int32)
        c = rng.integers(0, 4)
        colour = [(20, 20, 20), (230, 200, 40), (200, 60, 30), (240, 240, 230)][c]
        cv2.fillPoly(img, [pts], colour)
    for _ in range(30):
        p, q = rng.integers(0, [width, height], (2, 2))
        cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), (0, 0, 0), 2)
    return img


def style_frames(scene_frames: int = 24, width: int = 320, height: int = 180, seed: int = 2):
    rng = np.random.default_rng(seed)
    big = (height + 40, width + 40)
    paintings = [
        _strokes(rng, *big, [(230, 190, 120), (200, 60, 20), (250, 150, 30), (120, 40, 10), (250, 230, 90)], 2500),
        _swirls(rng, *big),
        _mosaic(rng, *big),
    ]
    for painting in paintings:
        for t in range(scene_frames):  # a slow camera drift inside each painting
            yield painting[t: t + height, t: t + width].copy()


def _tone(path: Path, seconds: float, rate: int = 44100) -> None:
    t = np.arange(int(seconds * rate)) / rate
    beat = 0.5 * (1 + np.sign(np.sin(2 * np.pi * 2 * t)))
    signal = 0.3 * np.sin(2 * np.pi * 440 * t) * beat + 0.1 * np.sin(2 * np.pi * 220 * t)
    pcm = (signal * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def make_demo(content_out, style_out, seconds: float = 3.0, width: int = 320, height: int = 180) -> None:
    """Write the demo content clip (with audio) and the three-scene style video."""
    content_out, style_out = Path(content_out), Path(style_out)
    content_out.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * FPS))
    wav = temporary_sibling(content_out.with_suffix(".wav"))
    _tone(wav, n / FPS)
    try:
        write_frames_h264(content_out, content_frames(n, width, height), FPS, crf=16, audio=wav,
                          audio_copy=False, duration=n / FPS)
    finally:
        wav.unlink(missing_ok=True)
    write_frames_h264(style_out, style_frames(24, width, height), FPS, crf=16)
