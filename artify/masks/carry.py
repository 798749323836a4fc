"""Masks along the motion: carry a mask by the flow, follow a subject, measure and steady mask flicker.

Masks are float32 arrays in [0, 1], shape (N, H, W), 1 = foreground, one per frame of a chunk. Flows follow
artify.flow's convention: `to_prev[t]` is the flow from frame t to frame t-1 on t's grid, so
`warp(mask[t-1], to_prev[t])` is the previous mask carried onto frame t.
"""
from __future__ import annotations


import cv2
import numpy as np

from artify.flow import DIS, FlowMethod, occlusion_mask, warp


def iou(a: np.ndarray, b: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of two masks (binarised at `threshold`); 1.0 when both are empty."""
    a, b = np.asarray(a) > threshold, np.asarray(b) > threshold
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def box_of(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray | None:
    """XYXY pixel box around the mask's pixels (x1, y1 exclusive), or None for an empty mask."""
    ys, xs = np.nonzero(np.asarray(mask) > threshold)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def neighbour_flows(frames: np.ndarray, flow: FlowMethod = DIS) -> dict[str, np.ndarray]:
    """Flows (`flow`: the job's flow_method, DIS by default) of every frame to its neighbours: to_prev[t]
    (t -> t-1), to_next[t] (t -> t+1), both on t's grid (zero where there is no neighbour), and reliable[t],
    the forward-backward consistency mask of to_prev (1 = trustworthy; 0 for t = 0). 2(N-1) flows."""
    n, h, w = frames.shape[:3]
    to_prev = np.zeros((n, h, w, 2), np.float32)
    to_next = np.zeros((n, h, w, 2), np.float32)
    reliable = np.zeros((n, h, w), np.float32)
    if n > 1:
        to_prev[1:] = flow.pairs(list(frames[1:]), list(frames[:-1]))
        to_next[:-1] = flow.pairs(list(frames[:-1]), list(frames[1:]))
    for t in range(1, n):
        reliable[t] = occlusion_mask(to_prev[t], to_next[t - 1])
    return {"to_prev": to_prev, "to_next": to_next, "reliable": reliable}


def flows_for(frames, flows):
    return neighbour_flows(frames) if flows is None else flows


def carry(mask: np.ndarray, flow_to_prev: np.ndarray) -> np.ndarray:
    """The previous frame's mask carried onto this frame along the flow (this frame -> previous)."""
    return warp(np.asarray(mask, np.float32), flow_to_prev)


def subject_transform(mask: np.ndarray, flow_next: np.ndarray) -> np.ndarray | None:
    """The 2x3 similarity transform (RANSAC) that best explains the flow (this frame -> next) inside the mask,
    eroded away from its edge where the flow bleeds across the motion boundary; None for too small a mask."""
    binary = np.asarray(mask) > 0.5
    h, w = binary.shape
    k = max(3, int(round(0.01 * np.hypot(h, w))) | 1)
    inner = cv2.erode(binary.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    ys, xs = np.nonzero(inner if inner.sum() >= 20 else binary)
    if len(xs) < 20:
        return None
    step = max(1, len(xs) // 2000)
    src = np.stack([xs[::step], ys[::step]], 1).astype(np.float32)
    dst = src + flow_next[ys[::step], xs[::step]]
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0)
    return matrix


def carry_subject(mask: np.ndarray, flows: dict, t: int) -> np.ndarray:
    """Frame t-1's subject mask carried onto frame t, binary: moved as a whole by `subject_transform`, so it
    keeps its shape instead of fraying at the edges. Falls back to the per-pixel warp when the mask is too
    small to fit a transform or flows has no "to_next"."""
    prev = np.asarray(mask) > 0.5
    if not prev.any():
        return prev
    matrix = subject_transform(prev, flows["to_next"][t - 1]) if "to_next" in flows else None
    if matrix is not None:
        h, w = prev.shape
        return cv2.warpAffine(prev.astype(np.float32), matrix, (w, h), flags=cv2.INTER_LINEAR) > 0.5
    return carry(prev, flows["to_prev"][t]) > 0.5


def mask_flicker(masks: np.ndarray, flows: dict) -> float:
    """Mean over consecutive pairs of 1 - IoU(mask_t, mask_{t-1} warped onto t): 0 = perfectly steady."""
    values = [1.0 - iou(masks[t], carry(masks[t - 1], flows["to_prev"][t])) for t in range(1, len(masks))]
    return float(np.mean(values)) if values else 0.0


def stabilise_masks(masks: np.ndarray, flows: dict, momentum: float = 0.6) -> np.ndarray:
    """Motion-compensated exponential moving average of masks (N, H, W) -> float32 (N, H, W) in [0, 1].

    out[0] = m[0];  out[t] = momentum * W_t(out[t-1]) + (1 - momentum) * m[t], where W_t carries the previous
    mask onto frame t: along the per-pixel flow where it is reliable (flows["reliable"], forward-backward
    consistent), and as a whole with the subject's motion (`subject_transform`) where it is not (the band
    around a moving subject's edge, where the flow bleeds). Following the motion means a moving subject's
    mask does not lag; averaging means a pixel that flips on one frame moves only part of the way, so a
    thresholded mask (hard merge) does not jitter and a soft one (feather) changes smoothly. Above 0.5 the
    past can outvote one frame's binary mask; momentum 0 = off.
    """
    masks = np.asarray(masks, np.float32)
    if not 0 <= momentum < 1:
        raise ValueError(f"mask momentum must be in [0, 1), got {momentum}")
    out = masks.copy()
    if momentum == 0:
        return out
    h, w = masks.shape[1:]
    reliable = flows.get("reliable")
    for t in range(1, len(masks)):
        warped = carry(out[t - 1], flows["to_prev"][t])
        matrix = subject_transform(out[t - 1], flows["to_next"][t - 1]) if "to_next" in flows else None
        if reliable is not None:
            fallback = cv2.warpAffine(out[t - 1], matrix, (w, h)) if matrix is not None else masks[t]
            warped = np.where(reliable[t] > 0.5, warped, fallback)
        out[t] = momentum * warped + (1 - momentum) * masks[t]
    return np.clip(out, 0, 1)
