"""Gatys et al. (2016) optimisation-based style transfer, with the schedule's Gram mixing for transitions.

Losses are plain functions over tensors; `stylize_frames` optimises one frame after another, each frame
warm-started from the previous stylized one so later frames need fewer iterations.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from artify.features import VGG19Features, gram, mix_grams, style_grams, to_tensor, to_uint8


def content_loss(features: dict, targets: dict) -> torch.Tensor:
    return sum(F.mse_loss(features[k], targets[k]) for k in targets)


def style_loss(features: dict, target_grams: dict) -> torch.Tensor:
    return sum(F.mse_loss(gram(features[k]), target_grams[k]) for k in target_grams) / len(target_grams)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    return (image[..., 1:, :] - image[..., :-1, :]).abs().mean() + (image[..., :, 1:] - image[..., :, :-1]).abs().mean()


def keyframe_grams(model: VGG19Features, keyframes: list[np.ndarray], layers, device) -> list[dict]:
    return [style_grams(model, to_tensor(k, device), layers) for k in keyframes]


def optimise(model, image: torch.Tensor, content_targets: dict, target_grams: dict, iterations: int,
             content_weight: float, style_weight: float, tv_weight: float, optimizer: str = "lbfgs",
             learning_rate: float = 0.02) -> torch.Tensor:
    """Optimise `image` (1, 3, H, W) in [0, 1] against the content features and Gram targets."""
    x = image.detach().clone().requires_grad_(True)
    layers = list(content_targets) + list(target_grams)

    def loss_fn():
        feats = model(x, layers)
        return (content_weight * content_loss(feats, content_targets)
                + style_weight * style_loss(feats, target_grams) + tv_weight * tv_loss(x))

    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([x], max_iter=iterations, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=0.0, tolerance_change=0.0)

        def closure():
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss

        opt.step(closure)
    else:
        opt = torch.optim.Adam([x], lr=learning_rate)
        for _ in range(iterations):
            opt.zero_grad()
            loss_fn().backward()
            opt.step()
    return x.detach().clamp(0, 1)


def stylize_frames(model: VGG19Features, frames: np.ndarray, weights: np.ndarray, keyframes: list[np.ndarray],
                   settings: dict, device) -> Iterator[np.ndarray]:
    """Yield one stylized uint8 frame per input frame; `weights` (N, K) are the schedule's rows."""
    content_layers = settings["content_layers"].split(",")
    style_layers = settings["style_layers"].split(",")
    grams = keyframe_grams(model, keyframes, style_layers, device)
    previous = None
    for frame, w in zip(frames, weights):
        content = to_tensor(frame, device)
        with torch.no_grad():
            content_targets = model(content, content_layers)
        init, iterations = (content, settings["iterations"]) if previous is None else (previous, settings["warm_iterations"])
        out = optimise(model, init, content_targets, mix_grams(grams, w), iterations, settings["content_weight"],
                       settings["style_weight"], settings["tv_weight"], settings["optimizer"],
                       settings["learning_rate"])
        previous = out
        yield to_uint8(out)[0]
