"""Gatys optimisation: losses as plain functions, the optimiser moves towards the style, deterministic."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from artify.features import gram, style_grams, to_tensor, vgg19
from artify.methods.gatys import content_loss, optimise, style_loss, stylize_frames, tv_loss
from artify.settings import Settings
from tests.conftest import textured_video

# the optimiser the settings choose by default, as the method passes it
OPTIMISER = (Settings().optimizer, Settings().learning_rate)


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
    out, used = optimise(model, frame, content_targets, target, 10, 1.0, 1e3, 0.0, *OPTIMISER)
    assert used == 10
    after = sum(((style_grams(model, out, layers)[k] - target[k]) ** 2).sum() for k in layers)
    assert after < 0.5 * before
    assert out.min() >= 0 and out.max() <= 1


FAST = {"iterations": 4, "warm_iterations": 2, "style_layers": "relu1_1,relu2_1", "content_layers": "relu2_1",
        "coarse_to_fine": False}


def test_stylize_frames_is_deterministic_and_follows_the_schedule():
    model = vgg19()
    settings = Settings(**FAST, temporal=False)
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
    from artify.quality.evaluate import warping_error
    from artify.flow import backward_flows
    from artify.media.video import load_image
    from artify.media.video import read_frames

    model = vgg19()
    frames = read_frames(bunny_clip, 0, 6, size=(96, 54))
    settings = Settings(iterations=40, warm_iterations=10, tolerance=0.0)
    style = [load_image(painting, 96)]
    weights = np.ones((6, 1))
    per_frame = np.stack(list(stylize_frames(model, frames, weights, style, replace(settings, temporal=False), "cpu")))
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
                            Settings(**FAST), "cpu"))


def test_chained_chunk_reuses_the_previous_overlap_exactly():
    from artify.flow import backward_flows

    frames = textured_video(4, 32, 24)
    previous = [np.full((24, 32, 3), 7, np.uint8), np.full((24, 32, 3), 9, np.uint8)]
    out = list(stylize_frames(vgg19(), frames, np.ones((4, 1)), [_style_image()], Settings(**FAST), "cpu",
                              flows=backward_flows(frames), previous=previous))
    assert np.array_equal(out[0], previous[0]) and np.array_equal(out[1], previous[1])
    assert not np.array_equal(out[2], previous[1])


def test_adaptive_stop_ends_a_converged_frame_early():
    model = vgg19()
    frame = to_tensor(textured_video(1, 32, 24)[0])
    with torch.no_grad():
        targets = model(frame, ["relu2_1"])
    grams = style_grams(model, to_tensor(_style_image()), ["relu1_1", "relu2_1"])
    converged, used = optimise(model, frame, targets, grams, 100, 1.0, 10.0, 0.0, *OPTIMISER)
    assert used == 100  # no tolerance: every iteration
    # Started again at its optimum the loss hardly falls, so the second check stops it.
    _, used = optimise(model, converged, targets, grams, 100, 1.0, 10.0, 0.0, *OPTIMISER, tolerance=0.01, check_every=5)
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


class _Poisoned(torch.nn.Module):
    """VGG19 features, except that the calls listed in `bad` (counted from 0) return NaN: a diverged step."""

    def __init__(self, model, bad):
        super().__init__()
        self.model, self.bad, self.calls = model, set(bad), 0

    def forward(self, x, layers):
        feats = self.model(x, layers)
        self.calls += 1
        if self.calls - 1 in self.bad:
            return {k: v * float("nan") for k, v in feats.items()}
        return feats


def test_a_non_finite_step_rolls_back_and_the_frame_stays_finite():
    model = vgg19()
    frame = to_tensor(textured_video(1, 32, 24)[0])
    with torch.no_grad():
        targets = model(frame, ["relu2_1"])
    grams = style_grams(model, to_tensor(_style_image()), ["relu1_1", "relu2_1"])
    clean, _ = optimise(model, frame, targets, grams, 20, 1.0, 10.0, 0.0, *OPTIMISER)
    poisoned = _Poisoned(model, bad=range(8, 12))  # a few evaluations in the second check go NaN
    out, used = optimise(poisoned, frame, targets, grams, 20, 1.0, 10.0, 0.0, *OPTIMISER)
    assert torch.isfinite(out).all() and used == 20 and poisoned.calls > 12
    start = content_loss(model(frame, ["relu2_1"]), targets) + 10 * style_loss(model(frame, ["relu1_1", "relu2_1"]), grams)
    recovered = content_loss(model(out, ["relu2_1"]), targets) + 10 * style_loss(model(out, ["relu1_1", "relu2_1"]), grams)
    assert recovered < 0.5 * start  # it went on optimising after the fall, not just returned the start
    assert (out - clean).abs().max() > 0  # (and the fall really happened)


def test_an_optimisation_that_stays_non_finite_is_refused_not_written():
    from artify.media.pixels import NonFiniteError

    model = vgg19()
    frame = to_tensor(textured_video(1, 32, 24)[0])
    with torch.no_grad():
        targets = model(frame, ["relu2_1"])
    always = _Poisoned(model, bad=range(10_000))
    with pytest.raises(NonFiniteError):
        optimise(always, frame, targets, {}, 20, 1.0, 0.0, 0.0, *OPTIMISER)
    frames = textured_video(2, 32, 24)
    with pytest.raises(NonFiniteError):
        list(stylize_frames(always, frames, np.ones((2, 1)), [_style_image()], Settings(**FAST, temporal=False),
                            "cpu"))


def test_to_uint8_refuses_non_finite_values():
    from artify.features import to_uint8
    from artify.media.pixels import NonFiniteError, round_to_uint8

    x = torch.rand(3, 3, 4, 4)
    x[1, 0, 2, 2] = float("nan")
    with pytest.raises(NonFiniteError) as e:
        to_uint8(x)
    assert e.value.frame == 1
    assert to_uint8(x[:1]).dtype == np.uint8
    with pytest.raises(NonFiniteError):
        round_to_uint8(np.array([[1.0, np.inf]]))
    assert round_to_uint8(np.array([-3.0, 0.4, 254.6, 300])).tolist() == [0, 0, 255, 255]
