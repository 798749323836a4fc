"""Segment Anything: loading a checkpoint (path or URL, weights_only), a tiny untrained SAM for tests, the
subject rule, and SamSegmenter (SAM every few frames, the flow carries the mask between them).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from artify.masks.carry import flows_for, box_of, carry_subject, iou
from artify.masks.motion import MotionSegmenter
from artify.weights import fetch


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


SAM_TYPES = ("vit_h", "vit_l", "vit_b")


_SAMS: dict = {}


def load_sam(model_type: str, checkpoint, device="cpu", sha256: str | None = None):
    """A Segment Anything model from a checkpoint path or URL (fetched through artify.weights).

    The model is built by segment_anything's registry *without* its own loader (which unpickles) and the
    state dict is read with torch.load(weights_only=True). Cached per (type, file, device).
    """
    import torch  # here: segmenting with the motion segmenter (the default) needs neither torch nor SAM
    from segment_anything import sam_model_registry

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
        flows = flows_for(frames, flows)
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
