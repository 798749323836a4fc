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

from functools import partial
from pathlib import Path

import cv2
import numpy as np

from artify.atomic import atomic_path
from artify.pixels import round_to_uint8
from artify.settings import Settings
from artify.flow import dis_flow, occlusion_mask, warp

# ------------------------------------------------------------------------------------------- helpers


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


def parse_prompt(text, size: int) -> np.ndarray | None:
    """A jobs.tsv prompt: "x,y" (point) or "x0,y0,x1,y1" (box) in fractions of the frame's width and height,
    so it holds at any processing size. Empty or None = no prompt."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or str(text).strip() == "":
        return None
    values = np.array([float(v) for v in str(text).replace(";", ",").split(",")], dtype=np.float64)
    if len(values) != size or np.any(values < 0) or np.any(values > 1):
        raise ValueError(f"prompt {text!r}: need {size} comma-separated fractions of the frame in [0, 1]")
    if size == 4 and (values[2] <= values[0] or values[3] <= values[1]):
        raise ValueError(f"box prompt {text!r}: need x0 < x1 and y0 < y1")
    return values


def neighbour_flows(frames: np.ndarray) -> dict[str, np.ndarray]:
    """DIS flows of every frame to its neighbours: to_prev[t] (t -> t-1), to_next[t] (t -> t+1), both on t's
    grid (zero where there is no neighbour), and reliable[t], the forward-backward consistency mask of to_prev
    (1 = trustworthy; 0 for t = 0). 2(N-1) DIS calls."""
    n, h, w = frames.shape[:3]
    to_prev = np.zeros((n, h, w, 2), np.float32)
    to_next = np.zeros((n, h, w, 2), np.float32)
    reliable = np.zeros((n, h, w), np.float32)
    for t in range(1, n):
        to_prev[t] = dis_flow(frames[t], frames[t - 1])
        to_next[t - 1] = dis_flow(frames[t - 1], frames[t])
        reliable[t] = occlusion_mask(to_prev[t], to_next[t - 1])
    return {"to_prev": to_prev, "to_next": to_next, "reliable": reliable}


def _flows(frames, flows):
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


# ------------------------------------------------------------------------------------------- stable masks


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


# ------------------------------------------------------------------------------------------- offline segmenter


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
        flows = _flows(frames, flows)
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


# ------------------------------------------------------------------------------------------- Segment Anything

SAM_TYPES = ("vit_h", "vit_l", "vit_b")
_SAMS: dict = {}


def load_sam(model_type: str, checkpoint, device="cpu", sha256: str | None = None):
    """A Segment Anything model from a checkpoint path or URL (fetched through artify.weights).

    The model is built by segment_anything's registry *without* its own loader (which unpickles) and the
    state dict is read with torch.load(weights_only=True). Cached per (type, file, device).
    """
    import torch
    from segment_anything import sam_model_registry

    from artify.weights import fetch

    if model_type not in SAM_TYPES:
        raise ValueError(f"unknown SAM model type {model_type!r} ({', '.join(SAM_TYPES)})")
    path = fetch(checkpoint, sha256=sha256 or None, expected="any")
    key = (model_type, str(Path(path).resolve()), str(device))
    if key not in _SAMS:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{path}: not a checkpoint that loads with weights_only=True ({e})") from None
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        sam = sam_model_registry[model_type]()
        try:
            sam.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{path}: not a Segment Anything {model_type} checkpoint ({first})") from None
        _SAMS[key] = sam.eval().requires_grad_(False).to(device)
    return _SAMS[key]


def tiny_sam(seed: int = 0, img_size: int = 256, width: int = 32, depth: int = 2):
    """A Segment Anything model with SAM's real blocks, tiny and randomly initialised (for tests and timing).

    Same classes and data path as the real ones (ViT encoder with windowed and global attention, prompt
    encoder, two-way transformer mask decoder); only the sizes differ: a `img_size`-px encoder of `width`
    channels and `depth` layers. Builds in milliseconds.
    """
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    patch = 16
    sam = Sam(
        image_encoder=ImageEncoderViT(depth=depth, embed_dim=width, img_size=img_size, mlp_ratio=4,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=2,
                                      patch_size=patch, qkv_bias=True, use_rel_pos=True,
                                      global_attn_indexes=(depth - 1,), window_size=8, out_chans=width),
        prompt_encoder=PromptEncoder(embed_dim=width, image_embedding_size=(img_size // patch, img_size // patch),
                                     input_image_size=(img_size, img_size), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3,
                                 transformer=TwoWayTransformer(depth=2, embedding_dim=width, mlp_dim=2 * width,
                                                               num_heads=2),
                                 transformer_dim=width, iou_head_depth=3, iou_head_hidden_dim=width),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    return sam.eval().requires_grad_(False)


def pick_subject(proposals: list[dict], shape, motion_mask: np.ndarray | None = None,
                 max_area: float = 0.6) -> np.ndarray:
    """The subject among SAM's automatic proposals (dicts with 'segmentation', 'area', 'stability_score').

    Rule: proposals covering more than `max_area` of the frame are background and skipped. With a motion
    mask (rule "motion"), the proposal that overlaps it most (IoU) wins. Otherwise (rule "centre") the
    largest stable mask near the centre: score = area fraction x stability score x (1 - d)^2, where d is the
    distance of the mask's centroid from the frame's centre divided by half the frame's diagonal.
    No proposal left = an empty mask (everything is background).
    """
    h, w = shape
    best, best_score = np.zeros((h, w), bool), -1.0
    for p in proposals:
        seg = np.asarray(p["segmentation"], bool)
        area = seg.sum() / (h * w)
        if area == 0 or area > max_area:
            continue
        if motion_mask is not None:
            score = iou(seg, motion_mask)
        else:
            ys, xs = np.nonzero(seg)
            d = np.hypot(xs.mean() - (w - 1) / 2, ys.mean() - (h - 1) / 2) / (0.5 * np.hypot(h, w))
            score = area * float(p.get("stability_score", 1.0)) * (1 - min(d, 1.0)) ** 2
        if score > best_score:
            best, best_score = seg, score
    return best


class SamSegmenter:
    """Segment Anything on every `every`-th frame, masks carried by the flow between (module docstring).

    point: (x, y) and box: (x0, y0, x1, y1), fractions of the frame (see parse_prompt); box wins over point.
    subject: rule for the automatic generator when there is no prompt, "centre" or "motion" (pick_subject).
    generator: keyword arguments for SamAutomaticMaskGenerator (e.g. points_per_side).
    """

    def __init__(self, sam, every: int = 8, point=None, box=None, subject: str = "centre",
                 generator: dict | None = None):
        from segment_anything import SamPredictor

        if subject not in ("centre", "motion"):
            raise ValueError(f"unknown subject rule {subject!r} (centre, motion)")
        self.sam, self.every, self.subject = sam, max(1, int(every)), subject
        self.point = None if point is None else np.asarray(point, np.float64)
        self.box = None if box is None else np.asarray(box, np.float64)
        self.generator_kwargs = dict(generator or {})
        self.predictor = SamPredictor(sam)
        self.sam_frames = 0  # how many frames SAM ran on (for timing)

    def _predict(self, frame, point=None, box=None, reference=None) -> np.ndarray:
        masks, scores, _ = self.predictor.predict(
            point_coords=None if point is None else np.asarray([point], np.float32),
            point_labels=None if point is None else np.array([1]),
            box=None if box is None else np.asarray(box, np.float32), multimask_output=True)
        if reference is not None:  # keep the subject's identity: the answer most like the carried mask
            return masks[int(np.argmax([iou(m, reference) for m in masks]))]
        return masks[int(np.argmax(scores))]

    def _first(self, frames, t, flows) -> np.ndarray:
        h, w = frames.shape[1:3]
        scale = np.array([w, h, w, h], np.float64)
        if self.box is not None:
            return self._predict(frames[t], box=self.box * scale)
        if self.point is not None:
            return self._predict(frames[t], point=self.point * scale[:2])
        from segment_anything import SamAutomaticMaskGenerator

        proposals = SamAutomaticMaskGenerator(self.sam, **self.generator_kwargs).generate(frames[t])
        motion = None
        if self.subject == "motion" and len(frames) > 1:
            near = [flows["to_prev"][t]] if t > 0 else []
            near += [flows["to_next"][t]] if t < len(frames) - 1 else []
            motion = MotionSegmenter(grabcut_iterations=0).frame_mask(frames[t], near)
        return pick_subject(proposals, (h, w), motion)

    def segment(self, frames: np.ndarray, flows: dict | None = None) -> np.ndarray:
        """Masks (N, H, W) float32 for a chunk's frames; `flows` = neighbour_flows(frames) when given."""
        frames = np.asarray(frames)
        flows = _flows(frames, flows)
        masks = np.zeros(frames.shape[:3], np.float32)
        for t in range(len(frames)):
            carried = carry_subject(masks[t - 1], flows, t) if t else None
            if t % self.every == 0:
                self.predictor.set_image(frames[t])
                self.sam_frames += 1
                box = None if carried is None else box_of(carried)
                if box is not None:  # re-prompt with the carried mask's box
                    mask = self._predict(frames[t], box=box, reference=carried)
                else:
                    mask = self._first(frames, t, flows)
            else:
                mask = carried
            masks[t] = mask
        return masks


# ------------------------------------------------------------------------------------------- the stage


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
    from artify.cuts import shots

    frames = np.asarray(frames)
    segmenter = segmenter or make_segmenter(settings, device)
    out = []
    for a, b in shots(shot_starts or [0], len(frames)):
        flows = neighbour_flows(frames[a:b])
        out.append(stabilise_masks(segmenter.segment(frames[a:b], flows), flows, settings.mask_momentum))
    return np.concatenate(out)


def save_masks(path, masks: np.ndarray) -> None:
    """Masks as 8-bit (0-255) in a compressed .npz, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file, not a name: numpy adds .npz to names
        np.savez_compressed(f, masks=round_to_uint8(np.clip(masks, 0, 1) * 255))


def load_masks(path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        return data["masks"].astype(np.float32) / 255.0


def segment_chunk(frames_video, out, settings: Settings, device="cpu", threads: int | None = None,
                  segmenter=None, shot_starts: list[int] | None = None) -> None:
    """The segment_chunk stage: a chunk's frames -> its stable foreground masks (.npz). segmenter: one made
    by `make_segmenter` for these settings, shared by a span's chunks (default: a new one). shot_starts: where
    the content's shots start among the chunk's frames (`artify.cuts.shot_starts`)."""
    from artify.video import read_frames

    if threads:
        import torch

        torch.set_num_threads(threads)
    save_masks(out, segment_frames(read_frames(frames_video), settings, device, segmenter, shot_starts))
