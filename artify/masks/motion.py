"""The offline default segmenter, no weights: what moves against the camera's own motion (see MotionSegmenter).
"""
from __future__ import annotations


import cv2
import numpy as np

from artify.masks.carry import flows_for, carry_subject


def camera_flow(flow: np.ndarray, model: str = "homography", step: int = 4) -> np.ndarray:
    """The camera's flow: a global transform fitted to `flow` with RANSAC, evaluated at every pixel.

    The transform (homography, or affine) is fitted to the flow sampled every `step` pixels; RANSAC lets the
    dominant motion win, which is the camera's when the background covers most of the frame.
    """
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    src = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    dst = src + flow[ys.ravel(), xs.ravel()]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    grid = np.stack([gx, gy], -1)
    if model == "homography":
        matrix, _ = cv2.findHomography(src, dst, cv2.RANSAC, 1.0, maxIters=2000)
        if matrix is not None:
            return cv2.perspectiveTransform(grid.reshape(-1, 1, 2), matrix).reshape(h, w, 2) - grid
    matrix, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0)
    if matrix is None:
        return np.zeros_like(flow)
    return cv2.transform(grid.reshape(-1, 1, 2), matrix).reshape(h, w, 2) - grid


def background_flow(flow: np.ndarray, exclude: np.ndarray, camera: np.ndarray, sigma: float) -> np.ndarray:
    """The background's own flow, smooth but not global: a Gaussian-weighted average (normalised convolution,
    width `sigma` px) of the flow over pixels not in `exclude`; the camera's flow where too few remain. It
    follows the slow change of motion with depth (parallax of a 3D background) that one transform misses."""
    keep = (~exclude).astype(np.float32)
    num = cv2.GaussianBlur(flow * keep[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(keep, (0, 0), sigma)[..., None]
    return np.where(den > 0.2, num / np.maximum(den, 1e-6), camera).astype(np.float32)


def own_motion(flow: np.ndarray, model: str = "homography", threshold: float = 1.0,
               sigma_frac: float = 0.08) -> np.ndarray:
    """flow - the background's flow, (H, W, 2): each pixel's motion of its own. The background's flow is first
    the camera's global transform, then the smooth background flow fitted with the pixels that first residual
    flagged (dilated) left out."""
    camera = camera_flow(flow, model)
    first = np.linalg.norm(flow - camera, axis=-1) > threshold
    h, w = first.shape
    k = max(3, int(round(0.03 * np.hypot(h, w))) | 1)
    exclude = cv2.dilate(first.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    smooth = background_flow(flow, exclude, camera, sigma_frac * np.hypot(h, w))
    return (flow - smooth).astype(np.float32)


def camera_residual(flow: np.ndarray, model: str = "homography") -> np.ndarray:
    """|own_motion| per pixel: how far each pixel's motion is from the background's."""
    return np.linalg.norm(own_motion(flow, model), axis=-1)


def _fill_holes(binary: np.ndarray) -> np.ndarray:
    h, w = binary.shape
    flood = np.pad(binary.astype(np.uint8), 1)
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    return binary | (flood[1:-1, 1:-1] == 0)


class MotionSegmenter:
    """Offline default segmenter (no weights): the subject is what moves differently from the background.

    Rule, per frame t (every `every`-th frame; the frames between get the mask carried by the flow):
      1. DIS optical flow from t to its neighbours t-1 and t+1.
      2. The background's motion: a homography fitted to each flow with RANSAC (the camera: the dominant
         motion), then refined into a smooth field (Gaussian-weighted average of the flow over the pixels
         the homography explains, width 8% of the frame diagonal), which absorbs gentle parallax.
      3. Own motion = flow - background motion; residual = its length, the smaller over the two neighbours
         (a pixel covered or uncovered by the subject on one side is consistent on the other, so the
         silhouette does not grow a leading or trailing band).
      4. Moving = residual > max(`min_px` px, `relative` x the median residual, the flow's noise level),
         opened and closed morphologically, regions under `min_area` of the frame dropped.
      5. One subject (subject="one"): the region carried over from the previous frame's mask; on the first
         frame (or once the subject is lost), the region with the most evidence (sum of residual above the
         threshold), discounted for touching the frame's edges, where content enters and flow is unreliable.
         Only pixels moving like the subject are kept (own-motion vector within max(min_px, half its speed)
         of the median of its most distinctly moving quarter), which separates it from other movers it
         touches; holes are filled. subject="all" keeps every moving region.
      6. GrabCut (colour models, `grabcut_iterations`) refines the edge in a band around that mask: the
         eroded mask is sure foreground, beyond the band sure background.
      A frame without a moving subject keeps the previous frame's mask, carried by the flow.
    Limits: a subject that never moves relative to the background is not found (its mask stays empty:
    everything is background) and one that stops keeps its last mask, carried by the flow; strong parallax
    (near objects under a moving camera) or flow errors (textureless or fast-moving regions, motion blur) can
    look like a subject; a subject covering about half the frame or more makes its motion the dominant one;
    of several movers only one is the subject (the strongest or the one tracked). Configure a SAM checkpoint,
    with a point or box prompt, where these matter.
    """

    def __init__(self, every: int = 1, min_px: float = 0.75, relative: float = 3.0, min_area: float = 0.002,
                 grabcut_iterations: int = 3, model: str = "homography", subject: str = "one"):
        if subject not in ("one", "all"):
            raise ValueError(f"unknown motion subject rule {subject!r} (one, all)")
        self.every, self.min_px, self.relative, self.min_area = max(1, int(every)), min_px, relative, min_area
        self.grabcut_iterations, self.model, self.subject = grabcut_iterations, model, subject

    def _clean(self, binary: np.ndarray) -> tuple[int, np.ndarray, list[int]]:
        h, w = binary.shape
        k = max(3, int(round(0.012 * np.hypot(h, w))) | 1)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        binary = cv2.morphologyEx(binary.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        return count, labels, [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= self.min_area * h * w]

    def moving(self, motion: np.ndarray, residual: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
        """Steps 4-5: the cleaned binary mask of the subject, moving against the background.

        motion: own motion vectors (H, W, 2) towards one neighbour; residual: their magnitude (the smaller
        over both neighbours).
        """
        h, w = residual.shape
        threshold = max(self.min_px, self.relative * float(np.median(residual)))
        binary = residual > threshold
        count, labels, big = self._clean(binary)
        if not big:
            return np.zeros((h, w), bool)
        if self.subject == "all":
            return _fill_holes(np.isin(labels, big))
        excess = np.bincount(labels.ravel(), np.maximum(residual - threshold, 0).ravel(), count)
        seed = None
        if previous is not None:
            seed = previous & (labels > 0)
            if seed.sum() < 0.2 * max(previous.sum(), 1):
                seed = None  # the subject stopped or was lost: start afresh
        if seed is None:  # the strongest evidence of own motion, away from the frame's edges
            def score(i):
                ys, xs = np.nonzero(labels == i)
                edges = (xs.min() == 0) + (ys.min() == 0) + (xs.max() == w - 1) + (ys.max() == h - 1)
                return excess[i] * (1 - edges / 4) ** 2
            seed = labels == max(big, key=score)
        # Keep the pixels that move like the subject: splits it from other movers it touches.
        core = seed & (residual >= np.percentile(residual[seed], 75))  # its most distinctly moving part
        velocity = np.median(motion[core if core.any() else seed], axis=0)
        tolerance = max(self.min_px, 0.5 * float(np.hypot(*velocity)))
        alike = binary & (np.linalg.norm(motion - velocity, axis=-1) < tolerance)
        count, labels, big = self._clean(alike)
        keep = [i for i in big if seed[labels == i].mean() >= 0.3]
        if not keep:
            return np.zeros((h, w), bool)
        return _fill_holes(np.isin(labels, keep))

    def refine(self, frame: np.ndarray, binary: np.ndarray) -> np.ndarray:
        """Step 5: GrabCut in a band around `binary`."""
        if not binary.any() or self.grabcut_iterations <= 0:
            return binary
        h, w = binary.shape
        band = max(3, int(round(0.03 * np.hypot(h, w))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        u8 = binary.astype(np.uint8)
        sure_fg = cv2.erode(u8, kernel) > 0
        near = cv2.dilate(u8, kernel) > 0
        gc = np.full((h, w), cv2.GC_BGD, np.uint8)
        gc[near] = cv2.GC_PR_BGD
        gc[binary] = cv2.GC_PR_FGD
        gc[sure_fg] = cv2.GC_FGD
        if not (gc == cv2.GC_BGD).any() and not (gc == cv2.GC_PR_BGD).any():
            return binary
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR), gc, None, bgd, fgd,
                        self.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error:  # degenerate colour models (e.g. a flat frame): keep the motion mask
            return binary
        return _fill_holes((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD))

    def frame_mask(self, frame: np.ndarray, neighbour_flows_: list[np.ndarray],
                   previous: np.ndarray | None = None) -> np.ndarray:
        """The subject's mask on `frame` from its flows to its neighbours (and the previous mask, carried)."""
        motions = [own_motion(f, self.model) for f in neighbour_flows_]
        residual = np.minimum.reduce([np.linalg.norm(m, axis=-1) for m in motions])
        return self.refine(frame, self.moving(motions[0], residual, previous))

    def segment(self, frames: np.ndarray, flows: dict | None = None) -> np.ndarray:
        """Masks (N, H, W) float32 for a chunk's frames; `flows` = neighbour_flows(frames) when given."""
        frames = np.asarray(frames)
        flows = flows_for(frames, flows)
        n = len(frames)
        masks = np.zeros(frames.shape[:3], np.float32)
        for t in range(n):
            carried = carry_subject(masks[t - 1], flows, t) if t else None
            if t % self.every == 0 or t == 0:
                near = [flows["to_prev"][t]] if t > 0 else []
                near += [flows["to_next"][t]] if t < n - 1 else []
                mask = self.frame_mask(frames[t], near, carried) if near else np.zeros(frames.shape[1:3], bool)
                if not mask.any() and carried is not None:
                    mask = carried
            else:
                mask = carried
            masks[t] = mask
        return masks
