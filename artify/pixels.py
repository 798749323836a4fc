"""Floats to pixels, refusing what is not a picture. numpy only, so light stages can use it without torch."""
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
