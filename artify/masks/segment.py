"""Foreground masks for the segmented method: Segment Anything, an offline motion segmenter, and stable masks.

Masks are float32 arrays in [0, 1], shape (N, H, W), 1 = foreground (the subject), one per frame of a chunk.
Flows follow artify.flow's convention: `to_prev[t]` is the flow from frame t to frame t-1 on t's grid, so
`warp(mask[t-1], to_prev[t])` is the previous mask carried onto frame t.

- `SamSegmenter`: Segment Anything (checkpoint path or URL in the config, loaded with weights_only=True)
  runs on every `every`-th frame; the frames between get the previous mask carried by the flow, and the
  next SAM frame is prompted with the carried mask's box (of SAM's three answers, the one that overlaps the
  carried mask most is kept, so the subject keeps its identity). The first SAM frame is prompted with the
  job's point or box when it has one, else SAM's automatic mask generator proposes masks and the subject
  rule picks one (see `pick_subject`).
- `MotionSegmenter`: the offline default, no weights (see its docstring for the rule and its limits).
- `stabilise_masks`: motion-compensated exponential moving average, so a mask does not jitter.
"""
from __future__ import annotations


import numpy as np

from artify.atomic import atomic_path
from artify.flow import flow_method
from artify.media.pixels import round_to_uint8
from artify.settings import Settings
from artify.masks.carry import neighbour_flows, stabilise_masks
from artify.masks.motion import MotionSegmenter
from artify.masks.sam import SamSegmenter, load_sam, parse_prompt
from artify.style.cuts import shots


def make_segmenter(settings: Settings, device="cpu"):
    """The segmenter the settings ask for: SAM when a checkpoint is configured (segmenter auto or sam),
    else the motion segmenter."""
    kind = settings.segmenter
    checkpoint = settings.sam_checkpoint
    if kind not in ("auto", "sam", "motion"):
        raise ValueError(f"unknown segmenter {kind!r} (auto, sam, motion)")
    if kind == "sam" and not checkpoint:
        raise ValueError("segmenter: sam needs sam_checkpoint (a path or URL of a Segment Anything checkpoint)")
    if kind == "sam" or (kind == "auto" and checkpoint):
        sam = load_sam(settings.sam_model_type, checkpoint, device,
                       settings.sam_checkpoint_sha256 or None)
        return SamSegmenter(sam, every=settings.sam_every,
                            point=parse_prompt(settings.sam_point, 2),
                            box=parse_prompt(settings.sam_box, 4),
                            subject=settings.sam_subject,
                            generator={"points_per_side": settings.sam_points_per_side})
    return MotionSegmenter(every=settings.motion_every)


def segment_frames(frames: np.ndarray, settings: Settings, device="cpu", segmenter=None,
                   shot_starts: list[int] | None = None) -> np.ndarray:
    """Stable foreground masks (N, H, W) float32 for a chunk: segment, then `stabilise_masks`; shot by shot
    where `shot_starts` (frames, from 0) say the content cuts, so no mask is carried across a cut."""
    frames = np.asarray(frames)
    segmenter = segmenter or make_segmenter(settings, device)
    flow = flow_method(settings, device)  # masks are carried along the job's flow, as the stylization is
    out = []
    for a, b in shots(shot_starts or [0], len(frames)):
        flows = neighbour_flows(frames[a:b], flow)
        out.append(stabilise_masks(segmenter.segment(frames[a:b], flows), flows, settings.mask_momentum))
    return np.concatenate(out)


def save_masks(path, masks: np.ndarray) -> None:
    """Masks as 8-bit (0-255) in a compressed .npz, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file, not a name: numpy adds .npz to names
        np.savez_compressed(f, masks=round_to_uint8(np.clip(masks, 0, 1) * 255))


def load_masks(path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        return data["masks"].astype(np.float32) / 255.0


# A chunk whose masks cover less than this share of its pixels has no subject: segmented then styles the whole
# frame as background, which the log and metrics.json say rather than pass over in silence.
NO_SUBJECT = 0.001


def foreground_share(masks: np.ndarray) -> float:
    """The share of a chunk's pixels that are foreground (mask > 0.5), over all its frames."""
    return float((np.asarray(masks) > 0.5).mean())


def say_foreground(what: str, share: float) -> None:
    """Log the foreground share of `what` (e.g. "chunk 3"), with a warning when it found no subject."""
    print(f"{what}: foreground {100 * share:.1f} % of the pixels", flush=True)
    if share < NO_SUBJECT:
        print(f"warning: {what}: no subject found (foreground under {100 * NO_SUBJECT:g} % of the pixels): method "
              f"segmented styles its whole frame as background", flush=True)
