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
    out, used = optimise(model, frame, content_targets, target, 10, 1.0, 1e3, 0.0)
    assert used == 10
    after = sum(((style_grams(model, out, layers)[k] - target[k]) ** 2).sum() for k in layers)
    assert after < 0.5 * before
    assert out.min() >= 0 and out.max() <= 1


FAST = {"iterations": 4, "warm_iterations": 2, "style_layers": "relu1_1,relu2_1", "content_layers": "relu2_1",
        "coarse_to_fine": False}


def test_stylize_frames_is_deterministic_and_follows_the_schedule():
    model = vgg19()
    settings = defaults() | FAST | {"temporal": False}
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


def test_temporal_terms_make_video_steadier_than_per_frame(bunny_clip, painting):
    from artify.evaluate import warping_error
    from artify.flow import backward_flows
    from artify.video import load_image
    from artify.video import read_frames

    model = vgg19()
    frames = read_frames(bunny_clip, 0, 6, size=(96, 54))
    settings = defaults() | {"iterations": 40, "warm_iterations": 10, "tolerance": 0.0}
    style = [load_image(painting, 96)]
    weights = np.ones((6, 1))
    per_frame = np.stack(list(stylize_frames(model, frames, weights, style, settings | {"temporal": False}, "cpu")))
    stats = {}
    steady = np.stack(list(stylize_frames(model, frames, weights, style, settings, "cpu",
                                          flows=backward_flows(frames), stats=stats)))
    assert stats["iterations"][0] == 40 and all(i <= 10 for i in stats["iterations"][1:])
    e_pf, e_t = warping_error(per_frame, frames)[0], warping_error(steady, frames)[0]
    assert e_t < 0.5 * e_pf, (e_t, e_pf)


def test_temporal_without_flows_is_refused():
    import pytest

    with pytest.raises(ValueError, match="flows"):
        list(stylize_frames(vgg19(), textured_video(2, 32, 24), np.ones((2, 1)), [_style_image()],
                            defaults() | FAST, "cpu"))


def test_chained_chunk_reuses_the_previous_overlap_exactly():
    from artify.flow import backward_flows

    frames = textured_video(4, 32, 24)
    previous = [np.full((24, 32, 3), 7, np.uint8), np.full((24, 32, 3), 9, np.uint8)]
    out = list(stylize_frames(vgg19(), frames, np.ones((4, 1)), [_style_image()], defaults() | FAST, "cpu",
                              flows=backward_flows(frames), previous=previous))
    assert np.array_equal(out[0], previous[0]) and np.array_equal(out[1], previous[1])
    assert not np.array_equal(out[2], previous[1])


def test_adaptive_stop_ends_a_converged_frame_early():
    model = vgg19()
    frame = to_tensor(textured_video(1, 32, 24)[0])
    with torch.no_grad():
        targets = model(frame, ["relu2_1"])
    # Content loss only, starting at its optimum: the loss cannot fall, so the first check stops it.
    _, used = optimise(model, frame, targets, {}, 100, 1.0, 0.0, 0.0, tolerance=0.01, check_every=5)
    assert used == 10


def test_colour_preservation():
    from artify.methods.gatys import keep_luminance, match_colours

    content = torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    stylized = torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    mixed = keep_luminance(stylized, content)
    luma = lambda x: (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    assert torch.allclose(luma(mixed), luma(stylized), atol=1e-4)
    rng = np.random.default_rng(0)
    style = rng.integers(0, 120, (32, 32, 3)).astype(np.uint8)
    reference = rng.integers(100, 255, (32, 32, 3)).astype(np.uint8)
    matched = match_colours(style, reference).reshape(-1, 3).astype(float)
    assert np.allclose(matched.mean(0), reference.reshape(-1, 3).mean(0), atol=3)
