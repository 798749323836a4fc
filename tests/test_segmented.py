"""The segmented method: region inputs, the four merge modes, inpainting, strengths, and one real gatys run."""
from __future__ import annotations

import numpy as np
import pytest

from artify.methods import segmented
from artify.methods.segmented import feather, merge, region_boxes, region_inputs, stylize_frames
from artify.settings import ConfigError, Settings


def _frames(n=3, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(60, 200, (n, h, w, 3), dtype=np.uint8)
    masks = np.zeros((n, h, w), np.float32)
    for t in range(n):
        masks[t, 12:36, 16 + 2 * t:40 + 2 * t] = 1
    return frames, masks


class FakeStylizer:
    """Records what each region's stylizer sees; 'stylizes' a frame into the mean colour of its first keyframe."""

    def __init__(self):
        self.calls = []

    def __call__(self, model, frames, weights, keyframes, settings, device, flows=None, previous=None):
        self.calls.append({"frames": frames.copy(), "weights": weights, "keyframes": keyframes, "flows": flows,
                           "previous": previous})
        colour = np.asarray(keyframes[0]).reshape(-1, 3).mean(0).astype(np.uint8)
        for _ in frames:
            yield np.broadcast_to(colour, frames.shape[1:]).copy()


RED = np.full((8, 8, 3), (255, 0, 0), np.uint8)
BLUE = np.full((8, 8, 3), (0, 0, 255), np.uint8)


def run(mode, frames, masks, background=None, stylizer=None, previous=None, flows=None, **settings):
    stylizer = stylizer or FakeStylizer()
    out = np.stack(list(stylize_frames(None, frames, np.ones((len(frames), 1)), [RED],
                                       Settings(merge_mode=mode, **settings), "cpu", masks, background_keyframes=background, previous=previous,
                                       flows=flows, stylizer=stylizer)))
    return out, stylizer


def test_hard_mode_is_foreground_inside_and_background_outside():
    frames, masks = _frames()
    out, fake = run("hard", frames, masks, background=[BLUE])
    assert out.shape == frames.shape and out.dtype == np.uint8
    inside = masks > 0.5
    assert (out[inside] == (255, 0, 0)).all() and (out[~inside] == (0, 0, 255)).all()
    fg_in, bg_in = fake.calls[0]["frames"], fake.calls[1]["frames"]
    assert (fg_in[~inside] == 0).all() and (fg_in[inside] == frames[inside]).all()  # cut out
    assert (bg_in[inside] == 0).all() and (bg_in[~inside] == frames[~inside]).all()
    assert fake.calls[1]["keyframes"][0] is BLUE and fake.calls[1]["weights"].shape == (3, 1)


def test_feather_mode_has_soft_edges_and_hard_mode_does_not():
    frames, masks = _frames()
    hard, _ = run("hard", frames, masks, background=[BLUE])
    soft, _ = run("feather", frames, masks, background=[BLUE], feather_px=8)
    row_hard, row_soft = hard[0, 24, :, 0].astype(int), soft[0, 24, :, 0].astype(int)
    assert np.abs(np.diff(row_hard)).max() == 255
    assert np.abs(np.diff(row_soft)).max() < 100  # a ramp, not a step
    assert 0 < row_soft[15] < 255 and row_soft[28] >= 250 and row_soft[0] == 0
    alpha = feather(masks[0], 8)
    assert alpha.min() >= 0 and alpha.max() <= 1 and alpha[24, 28] > 0.99


def test_blur_mode_blurs_the_other_region_instead_of_cutting_it_out():
    frames, masks = _frames()
    fg_in, bg_in = region_inputs(frames, masks, "blur", blur_px=9, use_inpaint=False)
    inside = masks > 0.5
    assert (fg_in[inside] == frames[inside]).all() and (bg_in[~inside] == frames[~inside]).all()
    assert fg_in[~inside].min() > 0  # not black
    assert fg_in[0][~inside[0]].std() < 0.5 * frames[0][~inside[0]].std()  # blurred: random texture smoothed
    out, _ = run("blur", frames, masks, background=[BLUE])
    assert (out[0, 24, 28] == (255, 0, 0)).all() and (out[0, 2, 2] == (0, 0, 255)).all()


def test_resize_mode_crops_the_region_to_the_full_frame_and_back():
    frames, masks = _frames()
    boxes = region_boxes(masks)
    h, w = masks.shape[1:]
    for (x0, y0, x1, y1), m in zip(boxes, masks):
        ys, xs = np.nonzero(m)
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
        assert abs((x1 - x0) / (y1 - y0) - w / h) < 0.1  # the frame's aspect ratio: no distortion
    identity = lambda model, frames, *a, **k: iter(frames)  # noqa: E731 - a stylizer that changes nothing
    calls = []

    def spy(model, frames, *a, **k):
        calls.append(frames.copy())
        return identity(model, frames)
    out, _ = run("resize", frames, masks, stylizer=spy, feather_px=0)
    fg_in = calls[0]
    assert fg_in.shape == frames.shape and (fg_in > 0).mean() > 2 * (masks > 0.5).mean()  # region fills the frame
    inside = masks[0] > 0.5
    err = np.abs(out[0].astype(int) - frames[0].astype(int))[inside]
    assert np.median(err) < 25  # resized there and back: the content survives (up to resampling)
    assert region_boxes(np.zeros((1, h, w), np.float32)).tolist() == [[0, 0, w, h]]


def test_inpaint_removes_the_subject_from_the_background_input():
    frames = np.full((2, 48, 64, 3), 100, np.uint8)
    masks = np.zeros((2, 48, 64), np.float32)
    masks[:, 14:34, 20:44] = 1
    frames[masks > 0.5] = 250  # a bright subject on a flat background
    _, plain = region_inputs(frames, masks, "feather", 9.0, use_inpaint=False)
    _, filled = region_inputs(frames, masks, "feather", 9.0, use_inpaint=True)
    assert plain[0, 24, 32].tolist() == [0, 0, 0]  # the silhouette, cut out in black
    assert np.abs(filled[0][masks[0] > 0.5].astype(int) - 100).max() <= 3  # filled with the background
    out, fake = run("hard", frames, masks, inpaint=True)
    assert np.abs(fake.calls[1]["frames"][0, 24, 32].astype(int) - 100).max() <= 3


def test_strengths_blend_each_region_with_the_content():
    frames, masks = _frames()
    out, _ = run("hard", frames, masks, foreground_strength=0.0, background_strength=0.0)
    np.testing.assert_array_equal(out, frames)
    half, _ = run("hard", frames, masks, background=[BLUE], foreground_strength=0.5, background_strength=1.0)
    inside = masks > 0.5
    expected = np.clip(0.5 * np.array([255, 0, 0]) + 0.5 * frames[inside].astype(float) + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(half[inside], expected)
    assert (half[~inside] == (0, 0, 255)).all()


def test_bad_mode_and_shapes_are_refused():
    frames, masks = _frames()
    with pytest.raises(ConfigError, match="setting 'merge_mode': 'soft' is not one of hard, feather, blur, resize"):
        run("soft", frames, masks)
    with pytest.raises(ValueError, match="unknown merge_mode 'soft'"):  # the function alone checks it too
        region_inputs(frames, masks, "soft", 9.0, False)
    with pytest.raises(ValueError, match="masks have shape"):
        run("hard", frames, masks[:, :10])


def test_merge_is_exact_at_mask_values():
    fg = np.full((4, 4, 3), 200, np.uint8)
    bg = np.full((4, 4, 3), 10, np.uint8)
    m = np.zeros((4, 4), np.float32)
    m[:, 2:] = 1
    out = merge(fg, bg, m, "hard", 6.0)
    assert (out[:, 2:] == 200).all() and (out[:, :2] == 10).all()


def test_real_gatys_on_both_regions_tiny():
    import torch

    from artify.features import vgg19
    settings = Settings(iterations=2, warm_iterations=2, temporal=False, coarse_to_fine=False, merge_mode="feather",
                        style_layers="relu1_1,relu2_1", content_layers="relu2_1", inpaint=True, foreground_strength=0.5)
    frames, masks = _frames(n=2, h=32, w=40)
    rng = np.random.default_rng(1)
    style = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    torch.manual_seed(0)
    out = list(segmented.stylize_frames(vgg19("cpu"), frames, np.ones((2, 1)), [style], settings, torch.device("cpu"),
                                        masks, background_keyframes=[255 - style]))
    assert len(out) == 2 and out[0].shape == (32, 40, 3) and out[0].dtype == np.uint8
    assert not np.array_equal(out[0], frames[0])


def test_background_style_from_settings(tmp_path):
    import cv2

    from artify.media.video import MediaError

    assert segmented.background_keyframes(Settings()) is None
    assert segmented.background_keyframes(Settings(background_style="")) is None
    path = tmp_path / "bg painting ü.png"
    cv2.imwrite(str(path), np.zeros((40, 80, 3), np.uint8) + (255, 0, 0))  # BGR blue
    (image,) = segmented.background_keyframes(Settings(background_style=str(path)), long_side=20)
    assert image.shape == (10, 20, 3) and image[0, 0].tolist() == [0, 0, 255]
    with pytest.raises(MediaError, match="missing.png: background_style is not a readable image"):
        segmented.background_keyframes(Settings(background_style=str(tmp_path / "missing.png")))


@pytest.mark.parametrize("mode", ["feather", "resize"])
def test_chained_chunk_keeps_the_previous_overlap_and_both_regions_continue_from_it(mode):
    frames, masks = _frames()
    previous = [np.full(frames.shape[1:], 77, np.uint8), np.full(frames.shape[1:], 88, np.uint8)]
    out, fake = run(mode, frames, masks, background=[BLUE], previous=previous)
    assert (out[0] == 77).all() and (out[1] == 88).all()  # the overlap is the previous chunk's, untouched
    assert not (out[2] == 88).all()
    for call in fake.calls:  # foreground and background stylizers both start from it (cropped in resize)
        assert len(call["previous"]) == 2 and call["previous"][1].shape == frames.shape[1:]
        assert (np.asarray(call["previous"][1]) == 88).all()


def test_resize_mode_computes_its_crops_flows_by_the_jobs_flow_method(monkeypatch, tmp_path):
    """The crops' flows come from the flow function the flow stage uses, with flow_method and raft_weights (it
    once always used DIS)."""
    import artify.flow as flow

    asked = []

    def backward_flows(frames, offsets=(1,), method=flow.DIS):
        asked.append((len(frames), list(offsets), method.method, method.weights))
        return {"flow_1": np.zeros((*frames.shape[:3], 2), np.float16), "mask_1": np.zeros(frames.shape[:3], np.uint8)}

    monkeypatch.setattr(segmented, "backward_flows", backward_flows)  # the flow function segmented calls
    frames, masks = _frames()
    chunk_flows = backward_flows(frames)
    asked.clear()
    weights = str(tmp_path / "raft_small.pth")
    run("resize", frames, masks, flows=chunk_flows, flow_method="raft", raft_weights=weights)
    assert asked == [(3, [1], "raft", weights)] * 2  # foreground crops, background crops
