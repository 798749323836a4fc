"""Gatys et al. (2016) optimisation-based style transfer, made steady for video after Ruder et al. (2016).

Per frame: content loss on deep VGG19 features, style loss on Gram matrices against the schedule's mix of
the keyframes' Grams (so transitions are smooth), total variation; for video, a temporal loss (masked
distance to the previous stylized frame warped by optical flow), initialisation from that warped frame and
an adaptive stop, so frames after the first need a fraction of its iterations. Losses are plain functions.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from artify.features import VGG19Features, gram, keyframe_grams, mix_grams, to_tensor, to_uint8, vgg19
from artify.media.pixels import NonFiniteError, round_to_uint8
from artify.settings import Settings
from artify.flow import flow_to_torch, warp_torch


def content_loss(features: dict, targets: dict) -> torch.Tensor:
    return sum(F.mse_loss(features[k], targets[k]) for k in targets)


def style_loss(features: dict, target_grams: dict) -> torch.Tensor:
    return sum(F.mse_loss(gram(features[k]), target_grams[k]) for k in target_grams) / max(1, len(target_grams))


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    return (image[..., 1:, :] - image[..., :-1, :]).abs().mean() + (image[..., :, 1:] - image[..., :, :-1]).abs().mean()


def temporal_loss(image: torch.Tensor, warped_previous: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Ruder et al.'s short-term loss: mean over pixels of c * (x - w(x_prev))^2, c the reliable-pixel mask."""
    return (mask * (image - warped_previous) ** 2).mean()


# ------------------------------------------------------------------------------------------- colour

def _ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    m = rgb.new_tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    return torch.einsum("ij,njhw->nihw", m, rgb)


def _rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    m = ycbcr.new_tensor([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]])
    return torch.einsum("ij,njhw->nihw", m, ycbcr).clamp(0, 1)


def keep_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance-only transfer (Gatys et al. 2017): the stylized luminance with the content's colours."""
    return _rgb(torch.cat([_ycbcr(stylized)[:, :1], _ycbcr(content)[:, 1:]], 1))


def match_colours(style: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Colour histogram matching (linear, Gatys et al. 2017): give `style` the mean and covariance of
    `reference`'s colours, so the style's textures transfer but not its palette."""
    s = style.reshape(-1, 3).astype(np.float64) / 255
    r = reference.reshape(-1, 3).astype(np.float64) / 255
    def sqrt_cov(x, inverse=False):
        vals, vecs = np.linalg.eigh(np.cov(x.T) + 1e-5 * np.eye(3))
        return vecs @ np.diag(vals ** (-0.5 if inverse else 0.5)) @ vecs.T
    out = (s - s.mean(0)) @ sqrt_cov(s, inverse=True) @ sqrt_cov(r) + r.mean(0)
    return round_to_uint8(np.clip(out, 0, 1) * 255).reshape(style.shape)


# ------------------------------------------------------------------------------------------- optimisation

# Pixels are optimised through x = sigmoid(z), z unconstrained: the image is in (0, 1) by construction, so the
# losses (VGG features of a bounded image) are bounded, and nothing moves x behind the optimiser's back.
# The old way — optimise x itself and clamp it to [0, 1] between L-BFGS calls — let the strong-Wolfe line
# search step far outside [0, 1] (losses of 1e13-1e20, then NaN) and left L-BFGS a curvature history of a
# function it was no longer minimising. The sweep in bench/gatys_stability.py chose this
# over a clamp-in-the-loss projection and over clamping with a history reset: finite everywhere, and lower
# style and content loss than the old optimiser's finite frames.
# A starting image is clipped to [eps, 1 - eps] before the logit, and where the sigmoid is flat a pixel
# hardly moves (dx/dz = eps(1 - eps)). A start from the content (a cold start) is clipped to [0.1, 0.9]:
# at 1e-3, footage with bright sky or deep shadow kept a 30-60 % higher style loss than the old optimiser
# (bench_gatys_stability.py on adain_cutBunny.mp4); at 0.1 the content loss brings the clipped extremes back
# and the losses matched or beat the old optimiser's. A start from a stylized picture (a warm start, the
# coarse pass upsampled) keeps its extremes, which the optimiser chose, within 1/4 of a grey level.
COLD_EPS = 0.1
WARM_EPS = 1e-3


def to_free(image: torch.Tensor, eps: float = WARM_EPS) -> torch.Tensor:
    """The unconstrained variable z of an image in [0, 1]: logit of the image clipped to [eps, 1 - eps]."""
    return torch.logit(image.detach().clamp(eps, 1 - eps))


def optimise(model, image: torch.Tensor, content_targets: dict, target_grams: dict, iterations: int,
             content_weight: float, style_weight: float, tv_weight: float, optimizer: str,
             learning_rate: float, temporal_terms=(), temporal_weight: float = 0.0,
             tolerance: float = 0.0, check_every: int = 5, retries: int = 3,
             eps: float = WARM_EPS) -> tuple[torch.Tensor, int]:
    """Optimise `image` (1, 3, H, W) in [0, 1]; returns it and the iterations used.

    eps: how far the start is kept from 0 and 1 (COLD_EPS for a start from the content, see above).

    temporal_terms: (warped previous frame, mask) pairs. With `tolerance` > 0 the frame stops as soon as
    the loss falls by less than that fraction over `check_every` iterations (the adaptive stop).
    Every `check_every` iterations the state is checked: a non-finite loss or image goes back to the last
    finite state and continues more cautiously (a fresh optimiser with a quarter of the step); after
    `retries` such falls NonFiniteError is raised. Nothing non-finite is ever returned.
    """
    z = to_free(image, eps).contiguous().requires_grad_(True)
    layers = list(content_targets) + list(target_grams)
    last = {}

    def loss_fn():
        x = torch.sigmoid(z)
        feats = model(x, layers)
        loss = (content_weight * content_loss(feats, content_targets)
                + style_weight * style_loss(feats, target_grams) + tv_weight * tv_loss(x))
        for warped, mask in temporal_terms:
            loss = loss + temporal_weight / len(temporal_terms) * temporal_loss(x, warped, mask)
        return loss

    def evaluate():
        loss = loss_fn()
        loss.backward()
        last["loss"] = loss.item()
        return loss

    # Adam's learning rate is in pixel units; dx/dz = 1/4 at mid-grey, so the same steps need 4x in z.
    def make(scale: float):
        if optimizer == "lbfgs":
            return torch.optim.LBFGS([z], lr=scale, max_iter=check_every, history_size=20,
                                     line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
        return torch.optim.Adam([z], lr=4 * learning_rate * scale)

    def step(opt, n: int) -> None:
        if optimizer == "lbfgs":
            opt.param_groups[0]["max_iter"] = n

            def closure():
                opt.zero_grad()
                return evaluate()
            opt.step(closure)
        else:
            for _ in range(n):
                opt.zero_grad()
                evaluate()
                opt.step()

    scale, falls = 1.0, 0
    opt = make(scale)
    good = z.detach().clone()  # the last finite state
    done, previous = 0, None
    while done < iterations:
        n = min(check_every, iterations - done)
        step(opt, n)
        if not (math.isfinite(last["loss"]) and torch.isfinite(z).all()):
            # A fall does not count as iterations done: the same block is tried again from the last finite
            # state, so a short optimisation (a warm start of 2 iterations) is refused, not returned unchanged.
            falls += 1
            if falls > retries:
                raise NonFiniteError(f"the optimisation stayed non-finite after {retries} cautious retries")
            with torch.no_grad():
                z.copy_(good)
            scale /= 4
            opt = make(scale)
            previous = None
            continue
        done += n
        good = z.detach().clone()
        if tolerance > 0 and previous is not None and abs(previous - last["loss"]) <= tolerance * abs(previous):
            break
        previous = last["loss"]
    return torch.sigmoid(good), done


def stylize_frames(model: VGG19Features, frames: np.ndarray, weights: np.ndarray, keyframes: list[np.ndarray],
                   settings: Settings, device, flows: dict | None = None, previous: list[np.ndarray] | None = None,
                   stats: dict | None = None) -> Iterator[np.ndarray]:
    """Yield one stylized uint8 frame per input frame; `weights` (N, K) are the schedule's rows.

    flows: `artify.flow.backward_flows` of these frames (needed when settings.temporal is true).
    previous: already-stylized frames to reuse for the first frames (the previous chunk's overlap); the
    optimisation then continues from them, so a chained chunk starts steady.
    stats: when given, receives per-frame iteration counts under "iterations".
    """
    s = settings
    content_layers = s.content_layers.split(",")
    style_layers = s.style_layers.split(",")
    temporal = s.temporal
    if temporal and flows is None:
        raise ValueError("temporal stylization needs the chunk's flows")
    if s.preserve_colour == "histogram":
        reference = frames.reshape(-1, frames.shape[-2], 3)
        keyframes = [match_colours(k, reference) for k in keyframes]
    grams = keyframe_grams(model, keyframes, style_layers, device)
    offsets = sorted(int(k[5:]) for k in flows if k.startswith("flow_")) if temporal else []
    outputs: list[torch.Tensor] = []  # stylized frames so far (needed up to the longest offset back)
    common = dict(content_weight=s.content_weight, style_weight=s.style_weight, tv_weight=s.tv_weight,
                  optimizer=s.optimizer, learning_rate=s.learning_rate)
    for t, (frame, w) in enumerate(zip(frames, weights)):
        content = to_tensor(frame, device)
        if previous is not None and t < len(previous):
            out, used = to_tensor(previous[t], device), 0
        else:
            with torch.no_grad():
                content_targets = model(content, content_layers)
            target = mix_grams(grams, w)
            terms = []
            for k in offsets:
                if t >= k and flows[f"mask_{k}"][t].any():
                    flow = flow_to_torch(flows[f"flow_{k}"][t].astype(np.float32), device)
                    mask = torch.as_tensor(flows[f"mask_{k}"][t], dtype=torch.float32, device=device)[None, None]
                    terms.append((warp_torch(outputs[t - k], flow), mask))
            if terms:  # warm start from the previous stylized frame, warped to this one
                init, iterations, eps = terms[0][0], s.warm_iterations, WARM_EPS
            else:  # a cold start (and the per-frame baseline): from the frame's own content
                init, iterations, eps = content, s.iterations, COLD_EPS
            if not terms and s.coarse_to_fine and min(frame.shape[:2]) >= 128:
                small = F.interpolate(content, scale_factor=0.5, mode="bilinear", align_corners=False)
                with torch.no_grad():
                    small_targets = model(small, content_layers)
                coarse, used_small = optimise(model, small, small_targets, target, iterations, **common,
                                              tolerance=s.tolerance, eps=COLD_EPS)
                init = F.interpolate(coarse, size=content.shape[-2:], mode="bilinear", align_corners=False)
                iterations, eps = s.warm_iterations, WARM_EPS
            out, used = optimise(model, init, content_targets, target, iterations, **common, temporal_terms=terms,
                                 temporal_weight=s.temporal_weight,
                                 tolerance=s.tolerance if (terms or not temporal) else 0.0, eps=eps)
            if s.preserve_colour == "luminance":
                out = keep_luminance(out, content)
        if stats is not None:
            stats.setdefault("iterations", []).append(used)
        outputs.append(out)
        if len(outputs) > max(offsets, default=1):
            outputs[len(outputs) - 1 - max(offsets, default=1)] = None  # free what no later frame needs
        yield to_uint8(out)[0]


def stylizer(settings: Settings, device, inputs: dict):
    """The method's entry point (artify.methods.registry): VGG19 loaded once, then one shot at a time."""
    model = vgg19(device, settings.vgg_source, settings.vgg_weights or None)
    return lambda shot: stylize_frames(model, shot.frames, shot.weights, shot.keyframes, settings, device,
                                       flows=shot.flows, previous=shot.previous)
