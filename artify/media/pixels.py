"""Floats to pixels, refusing what is not a picture, and the one resize of pictures. numpy only at import (OpenCV
when resizing), so light stages can use it without torch."""
from __future__ import annotations

import numpy as np


class NonFiniteError(FloatingPointError):
    """A NaN or infinity where a picture (or a loss that makes one) should be. Never turned into pixels:
    clamping NaN gives NaN and casting it gives 0, i.e. a black frame that looks like a result.

    frame: the index of the offending frame within what the caller passed (None when unknown); the chunk
    driver adds the job and chunk to the message.
    """

    def __init__(self, message: str, frame: int | None = None):
        super().__init__(message)
        self.frame = frame


def round_to_uint8(values: np.ndarray) -> np.ndarray:
    """float array of 0-255 values -> uint8, rounded and clipped; refuses NaN and infinities (see to_uint8)."""
    values = np.asarray(values)
    if not np.isfinite(values).all():
        raise NonFiniteError(f"non-finite values in a {values.shape} picture: refusing to write it as pixels")
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def resize_scaled(image: np.ndarray, scale: float, min_side: int = 1) -> np.ndarray:
    """`image` (H, W, C) scaled by `scale`, aspect kept, each side rounded and at least `min_side`: the one
    resize of pictures that are measured or stylized, so every stage sees a keyframe the same way.

    OpenCV INTER_AREA to shrink (each output pixel averages the input pixels it covers: no aliasing, no
    ringing) and INTER_CUBIC to enlarge (INTER_AREA would fall back to nearest-neighbour-like blocks there).
    """
    h, w = image.shape[:2]
    size = (max(min_side, round(w * scale)), max(min_side, round(h * scale)))
    if size == (w, h):
        return image
    import cv2  # here, not at the top: light stages import this module for round_to_uint8

    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """`image` resized so its long side is `long_side` (aspect kept; see `resize_scaled`)."""
    return resize_scaled(image, long_side / max(image.shape[:2]))


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """`image` resized so its short side is `short_side`, both sides at least that (see `resize_scaled`)."""
    return resize_scaled(image, short_side / min(image.shape[:2]), min_side=short_side)
