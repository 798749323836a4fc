"""Span sizing (`span_frames: 0`): how many frames one span job takes, from the estimated costs of its jobs
(`artify.quality.cost.job_cost`). Light on purpose (no torch): the plan_chunks stage imports it."""
from __future__ import annotations

import math

from artify.quality.cost import job_cost

FIXED_SHARE = 0.05  # a span's fixed cost is meant to be at most this share of its work: half the 10 % limit
SPREAD_SPANS = 16  # a short video is cut into this many spans (jobs that can run at once) where it can ...
LONG_SPAN = 960  # ... up to spans of this many frames (40 s at 24 fps: a few hundred jobs for a feature film)
SPAN_BYTES = 4 << 30  # most bytes of extracted frames one span holds on disk (spans of a fast method on a GPU)


def auto_span_frames(total: int, chunk_frames: int, method: str, device: str, width: int, height: int) -> int:
    """Frames per span for `span_frames: 0`: long enough that the stylization job's fixed cost stays under
    FIXED_SHARE of its work; otherwise SPREAD_SPANS spans of a short video (parallel jobs), spans of
    LONG_SPAN frames on a long one (jobs linear in the length, temporary frames flat); at most SPAN_BYTES of
    frames (a fast method on a GPU may not quite amortise its fixed cost on very large frames then)."""
    fixed, per_frame = job_cost(method, device, width * height)
    amortised = math.ceil(fixed / (FIXED_SHARE * per_frame))
    spread = min(math.ceil(total / SPREAD_SPANS), LONG_SPAN)
    return max(chunk_frames, min(max(amortised, spread), SPAN_BYTES // (width * height * 3)))
