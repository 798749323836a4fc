"""Gatys optimisation: losses as plain functions, the optimiser moves towards the style, deterministic."""
import numpy as np
import torch

from artify.features import gram, style_grams, to_tensor, vgg19
from artify.methods.gatys import content_loss, optimise, stylize_frames, tv_loss
from artify.settings import defaults
from tests.conftest import textured_video


def test_gram_is_normalised_and_symmetric():
    f = torch.rand(2, 8, 5, 7)
    g = gram(f)
    assert g.shape == (2, 8, 8) and torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(gram(f.repeat(1, 1, 2, 2)), g, atol=1e-6)  # size-independent for a tiled image


def test_losses_are_zero_at_the_target_and_tv_sees_noise():
    f = {"relu4_2": torch.rand(1, 4, 3, 3)}
    assert content_loss(f, f) == 0
    smooth, noisy = torch.zeros(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    assert tv_loss(smooth) == 0 < tv_loss(noisy)


def _style_image():
    rng = np.random.default_rng(3)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::8] = [255, 40, 0]
    stripes[::8] = [0, 40, 255]
    return np.clip(stripes.astype(int) + rng.integers(0, 30, stripes.shape), 0, 255).astype(np.uint8)


def test_optimisation_moves_the_frame_towards_the_style():
    model = vgg19()
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    frame = to_tensor(textured_video(1, 48, 32)[0])
    target = style_grams(model, to_tensor(_style_image()), layers)
    with torch.no_grad():
        content_targets = model(frame, ["relu3_1"])
    before = sum(((style_grams(model, frame, layers)[k] - target[k]) ** 2).sum() for k in layers)
    out = optimise(model, frame, content_targets, target, 10, 1.0, 1e3, 0.0)
    after = sum(((style_grams(model, out, layers)[k] - target[k]) ** 2).sum() for k in layers)
    assert after < 0.5 * before
    assert out.min() >= 0 and out.max() <= 1


def test_stylize_frames_is_deterministic_and_follows_the_schedule():
    model = vgg19()
    settings = defaults() | {"iterations": 4, "warm_iterations": 2, "style_layers": "relu1_1,relu2_1",
                             "content_layers": "relu2_1"}
    frames = textured_video(3, 32, 24)
    styles = [_style_image(), 255 - _style_image()]
    weights = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    torch.manual_seed(0)
    a = list(stylize_frames(model, frames, weights, styles, settings, "cpu"))
    torch.manual_seed(0)
    b = list(stylize_frames(model, frames, weights, styles, settings, "cpu"))
    assert len(a) == 3 and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == frames[0].shape and a[0].dtype == np.uint8
    assert not np.array_equal(a[0], frames[0])
