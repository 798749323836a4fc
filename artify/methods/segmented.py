"""The segmented method: foreground and background stylized each on its own, then merged along the mask.

Each region gets its own style (the background may have a fixed painting: `background_keyframes`) and its
own strength s (output = s x stylized + (1 - s) x content, per region). The region inputs and the merge
follow the seed's four variants (settings.merge_mode):
  hard     the other region cut out (black), merged along the binary mask (mask > 0.5)
  feather  cut out as hard, merged along the mask blurred by `feather_px` (soft edges)
  blur     the other region blurred by `blur_px` instead of cut out, merged along the feathered mask
  resize   each region's bounding box (padded to the frame's aspect ratio, smoothed over time) cut out,
           resized to the full frame before stylizing and back after, merged along the feathered mask
With settings.inpaint, the background's input has the subject filled by OpenCV inpainting (Telea)
instead, so the background's style does not carry the subject's silhouette.
The per-region stylizer is gatys by default (any function with its signature can be passed).
"""
from __future__ import annotations

from typing import Callable, Iterator

import cv2
import numpy as np

from artify.features import vgg19
from artify.flow import backward_flows, flow_method
from artify.media.pixels import round_to_uint8
from artify.media.video import MediaError, load_image
from artify.methods import gatys
from artify.settings import Settings

MERGE_MODES = ("hard", "feather", "blur", "resize")


def feather(mask: np.ndarray, px: float) -> np.ndarray:
    """The mask with its edges blurred: Gaussian of sigma px/2 (so the ramp is about 2 px wide), in [0, 1]."""
    mask = np.asarray(mask, np.float32)
    if px <= 0:
        return mask
    return np.clip(cv2.GaussianBlur(mask, (0, 0), px / 2), 0, 1)


def blur(image: np.ndarray, px: float) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), max(px, 0.5) / 2) if px > 0 else image


def inpaint(frame: np.ndarray, mask: np.ndarray, dilate_px: int = 3, radius: int = 5) -> np.ndarray:
    """`frame` with the region mask > 0.5 (grown by dilate_px to cover soft edges) filled by cv2.inpaint."""
    hole = (np.asarray(mask) > 0.5).astype(np.uint8)
    if not hole.any():
        return frame
    if dilate_px > 0:
        hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1,) * 2))
    return cv2.inpaint(np.ascontiguousarray(frame), hole, radius, cv2.INPAINT_TELEA)


def region_boxes(masks: np.ndarray, margin: float = 0.1, smooth: float = 0.7) -> np.ndarray:
    """Per frame, an (x0, y0, x1, y1) integer box around mask > 0.5, grown by `margin` of its size, widened to
    the frame's aspect ratio (so resizing does not distort) and smoothed over time (exponential moving
    average with weight `smooth` on the past) so the crop does not jitter. An empty mask: the whole frame."""
    n, h, w = masks.shape
    boxes = np.zeros((n, 4), np.float64)
    state = None
    for t in range(n):
        ys, xs = np.nonzero(masks[t] > 0.5)
        if len(xs) == 0:
            box = np.array([0, 0, w, h], np.float64)
        else:
            cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
            bw, bh = (xs.max() + 1 - xs.min()) * (1 + 2 * margin), (ys.max() + 1 - ys.min()) * (1 + 2 * margin)
            bw, bh = max(bw, bh * w / h, 16.0), max(bh, bw * h / w, 16.0 * h / w)
            box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        state = box if state is None else smooth * state + (1 - smooth) * box
        boxes[t] = state
    out = np.zeros((n, 4), np.int64)
    for t, (x0, y0, x1, y1) in enumerate(boxes):
        bw, bh = min(x1 - x0, w), min(y1 - y0, h)
        x0 = float(np.clip(x0, 0, w - bw))
        y0 = float(np.clip(y0, 0, h - bh))
        out[t] = [int(round(x0)), int(round(y0)), int(round(x0 + bw)), int(round(y0 + bh))]
        out[t, 2:] = np.maximum(out[t, 2:], out[t, :2] + 2)
        out[t, [2, 3]] = np.minimum(out[t, [2, 3]], [w, h])
    return out


def _crop_to_frame(image: np.ndarray, box) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    return cv2.resize(image[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_CUBIC)


def _frame_to_crop(image: np.ndarray, box, canvas: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box
    out = canvas.copy()
    out[y0:y1, x0:x1] = cv2.resize(image, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return out


def region_inputs(frames: np.ndarray, masks: np.ndarray, mode: str, blur_px: float,
                  use_inpaint: bool) -> tuple[np.ndarray, np.ndarray]:
    """What each region's stylizer sees, (foreground inputs, background inputs), uint8 (N, H, W, 3) each.

    The frame with the other region black (hard, feather, resize) or blurred (blur); with use_inpaint, the
    background input has the subject inpainted instead. (resize crops later, in `stylize_frames`.)
    """
    if mode not in MERGE_MODES:
        raise ValueError(f"unknown merge_mode {mode!r} ({', '.join(MERGE_MODES)})")
    fg_in, bg_in = np.empty_like(frames), np.empty_like(frames)
    for t, (frame, mask) in enumerate(zip(frames, masks)):
        m = (mask > 0.5)[..., None]
        other = blur(frame, blur_px) if mode == "blur" else np.zeros_like(frame)
        fg_in[t] = np.where(m, frame, other)
        bg_in[t] = inpaint(frame, mask) if use_inpaint else np.where(m, other, frame)
    return fg_in, bg_in


def merge(fg: np.ndarray, bg: np.ndarray, mask: np.ndarray, mode: str, feather_px: float) -> np.ndarray:
    """One merged uint8 frame: hard = binary mask, every other mode = the feathered mask."""
    alpha = (mask > 0.5).astype(np.float32) if mode == "hard" else feather(mask, feather_px)
    out = alpha[..., None] * fg.astype(np.float32) + (1 - alpha[..., None]) * bg.astype(np.float32)
    return round_to_uint8(out)


def _strength(stylized: np.ndarray, content: np.ndarray, s: float) -> np.ndarray:
    if s >= 1:
        return stylized
    out = s * stylized.astype(np.float32) + (1 - s) * content.astype(np.float32)
    return round_to_uint8(out)


def background_keyframes(settings: Settings, long_side: int | None = None) -> list[np.ndarray] | None:
    """The background's own style from settings.background_style (an image path; empty = None, i.e. the
    background follows the keyframe schedule like the foreground), uint8 RGB, long side `long_side`."""
    path = settings.background_style
    if not path:
        return None

    try:
        return [load_image(path, long_side)]
    except MediaError as e:
        raise MediaError(f"{path}: background_style is not a readable image") from e


def _region_flows(inputs: np.ndarray, flows: dict | None, settings: Settings, device) -> dict | None:
    """Flows for the temporal terms: the chunk's own, except for resized crops, whose pixels move otherwise
    (computed as the flow stage computes the chunk's: by settings.flow_method)."""
    if flows is None:
        return None

    offsets = sorted(int(k[5:]) for k in flows if k.startswith("flow_"))
    return backward_flows(inputs, offsets or [1], flow_method(settings, device))


def stylize_frames(model, frames: np.ndarray, weights: np.ndarray, keyframes: list[np.ndarray], settings: Settings,
                   device, masks: np.ndarray, background_keyframes: list[np.ndarray] | None = None,
                   background_weights: np.ndarray | None = None, flows: dict | None = None,
                   previous: list[np.ndarray] | None = None, stylizer: Callable | None = None) -> Iterator[np.ndarray]:
    """Yield one merged uint8 frame per input frame.

    frames (N, H, W, 3) uint8; weights (N, K) schedule rows over `keyframes` (the foreground's styles, and the
    background's unless background_keyframes (K' images) with background_weights (N, K') are given; a single
    background painting with no weights gets weight 1 on every frame); masks (N, H, W) float in [0, 1].
    flows: the chunk's backward flows (artify.flow.backward_flows), for temporal stylization.
    previous: the previous chunk's merged overlap frames (chunk_chain): output as they are, and given to both
    region stylizers (cropped like their inputs in resize mode) so each continues from them.
    stylizer: the per-region stylizer, gatys.stylize_frames's signature (default: gatys).
    """
    stylizer = stylizer or gatys.stylize_frames
    s = settings
    mode = s.merge_mode
    masks = np.asarray(masks, np.float32)
    if masks.shape != frames.shape[:3]:
        raise ValueError(f"masks have shape {masks.shape}, frames {frames.shape[:3]}")
    if background_keyframes is None:
        background_keyframes, background_weights = keyframes, weights
    elif background_weights is None:
        background_weights = np.ones((len(frames), len(background_keyframes)), np.float64)
    fg_in, bg_in = region_inputs(frames, masks, mode, s.blur_px, s.inpaint)
    fg_boxes = bg_boxes = None
    fg_flows = bg_flows = flows
    fg_previous = bg_previous = previous
    if mode == "resize":
        fg_boxes, bg_boxes = region_boxes(masks), region_boxes(1 - masks)
        fg_in = np.stack([_crop_to_frame(f, b) for f, b in zip(fg_in, fg_boxes)])
        bg_in = np.stack([_crop_to_frame(f, b) for f, b in zip(bg_in, bg_boxes)])
        fg_flows, bg_flows = _region_flows(fg_in, flows, s, device), _region_flows(bg_in, flows, s, device)
        if previous is not None:
            fg_previous = [_crop_to_frame(p, b) for p, b in zip(previous, fg_boxes)]
            bg_previous = [_crop_to_frame(p, b) for p, b in zip(previous, bg_boxes)]
    fg_out = stylizer(model, fg_in, weights, keyframes, s, device, flows=fg_flows, previous=fg_previous)
    bg_out = stylizer(model, bg_in, background_weights, background_keyframes, s, device, flows=bg_flows,
                      previous=bg_previous)
    fg_strength = s.foreground_strength
    bg_strength = s.background_strength
    for t, (fg, bg) in enumerate(zip(fg_out, bg_out)):
        if previous is not None and t < len(previous):  # the overlap, already merged by the previous chunk
            yield np.asarray(previous[t], np.uint8)
            continue
        if mode == "resize":
            fg = _frame_to_crop(fg, fg_boxes[t], frames[t])
            bg = _frame_to_crop(bg, bg_boxes[t], frames[t])
        fg = _strength(fg, frames[t], fg_strength)
        bg = _strength(bg, frames[t], bg_strength)
        yield merge(fg, bg, masks[t], mode, s.feather_px)


def stylizer(settings: Settings, device, inputs: dict):
    """The method's entry point (artify.methods.registry): VGG19 and the background's own style loaded once,
    then one shot at a time with its masks."""

    model = vgg19(device, settings.vgg_source, settings.vgg_weights or None)
    background = background_keyframes(settings, settings.style_size)
    return lambda shot: stylize_frames(model, shot.frames, shot.weights, shot.keyframes, settings, device,
                                       shot.masks, background_keyframes=background, flows=shot.flows,
                                       previous=shot.previous)
