"""Metrics on constructed videos with known answers, and one real clip (Sintel frames)."""
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from artify.quality.evaluate import (compute_flows, content_distance, evaluate_video, flicker, frame_grams,
                             scaled_keyframe_grams, mix_grams, ssim, style_distance_per_frame, warping_error)

H, W = 96, 128
SINTEL = Path("/work/shared/data/frames/sintel_mountain_2")


def texture(h, w, seed=0, sigma=1.5):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8).astype(np.float32), (0, 0), sigma)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def translating_video(n=6, step=(2, 1), h=H, w=W, seed=0):
    """A window sliding over one textured image by `step` px per frame: a pure translation."""
    big = texture(h + n * abs(step[1]) + 2, w + n * abs(step[0]) + 2, seed)
    return np.stack([big[t * step[1]:t * step[1] + h, t * step[0]:t * step[0] + w] for t in range(n)])


def moving_square_video(n=6, size=24, shift=4, seed=1):
    """Static textured background (left part of the frame), a textured square moving right."""
    bg = texture(H, W, seed)
    sq = texture(size, size, seed + 1, sigma=1.0)
    frames = []
    for t in range(n):
        f = bg.copy()
        x0 = 50 + t * shift
        f[30:30 + size, x0:x0 + size] = sq
        frames.append(f)
    return np.stack(frames)


def add_noise(frames, sigma, seed=0):
    rng = np.random.default_rng(seed)
    noisy = frames.astype(np.float32) + rng.normal(0, sigma * 255, frames.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def video():
    return translating_video()


@pytest.fixture(scope="module")
def flows(video):
    return compute_flows(video, 1)


# ------------------------------------------------------------------------------------------ warping error

def test_warping_error_near_zero_for_pure_translation(video, flows):
    mean, per_pair = warping_error(video, video)
    assert per_pair.shape == (len(video) - 1,)
    assert mean < 2e-4, mean
    # reusing precomputed flows gives the same numbers
    mean2, per_pair2 = warping_error(video, flows=flows)
    assert mean2 == pytest.approx(mean) and np.allclose(per_pair, per_pair2)


def test_warping_error_grows_with_temporal_noise(video, flows):
    errors = [warping_error(video, flows=flows)[0]]
    for sigma in (0.01, 0.03, 0.1):
        errors.append(warping_error(add_noise(video, sigma), flows=flows)[0])
    assert all(a < b for a, b in zip(errors, errors[1:])), errors
    # squared error of independent noise in two frames: about 2 sigma^2 per channel
    assert errors[-1] == pytest.approx(2 * 0.1 ** 2, rel=0.25)


def test_warping_error_formula_matches_reference_normalisation():
    """E = Σ M (W(O_1) − O_0)² / (3 Σ M), as evaluate_WarpError.py with its 3-channel occlusion PNG."""
    o0 = np.full((1, 8, 10, 3), 100, np.uint8)
    o1 = o0.copy()
    o1[..., 0] += 51  # +0.2 in one channel everywhere
    mask = np.zeros((8, 10), np.float32)
    mask[:4] = 1
    flows = [(np.zeros((8, 10, 2), np.float32), mask)]
    mean, per_pair = warping_error(np.concatenate([o0, o1]), flows=flows)
    assert mean == pytest.approx(0.2 ** 2 / 3, rel=1e-5)
    # nothing reliable: divided by every pixel-channel instead
    mean, _ = warping_error(np.concatenate([o0, o1]), flows=[(flows[0][0], np.zeros_like(mask))])
    assert mean == 0.0


def test_warping_error_long_interval_and_errors(video):
    # 10 px apart at interval 10 (DIS at 128 px wide tracks up to ~16 px)
    long = translating_video(n=12, step=(1, 0))
    flows = compute_flows(long, 10)
    mean, per_pair = warping_error(long, flows=flows)
    assert per_pair.shape == (2,) and mean < 5e-3
    assert mean < 0.1 * warping_error(add_noise(long, 0.1), flows=flows)[0]
    with pytest.raises(ValueError):
        warping_error(video, video, interval=10)  # 6 frames have no pair 10 apart
    with pytest.raises(ValueError):
        warping_error(video, video[:, :-2])
    with pytest.raises(ValueError):
        warping_error(video)


# ------------------------------------------------------------------------------------------------ flicker

def test_flicker_zero_for_static_video():
    static = np.repeat(texture(H, W)[None], 5, axis=0)
    mean, per_pair = flicker(static, static)
    assert mean == 0.0 and per_pair.shape == (4,)


def test_flicker_only_counts_static_regions():
    video = moving_square_video()
    # output = input: the square moves but the static background does not change
    assert flicker(video, video)[0] == 0.0
    # changing the moving square only is not flicker
    moved = video.copy()
    for t in range(len(video)):
        x0 = 50 + 4 * t
        moved[t, 30:54, x0:x0 + 24] = add_noise(video[t:t + 1, 30:54, x0:x0 + 24], 0.1, seed=t)[0]
    assert flicker(moved, video)[0] < 0.005
    # brightness flicker in the static background is
    flick = video.astype(np.int16)
    flick[1::2, :, :40] += 20
    flick = np.clip(flick, 0, 255).astype(np.uint8)
    mean, per_pair = flicker(flick, video)
    assert mean > 0.015 and (per_pair > 0.01).all()  # 20/255 on about a third of the static pixels


# ----------------------------------------------------------------------------------------- SSIM, content

def _ssim_naive(a, b):
    """Direct SSIM over every 11x11 window inside the image, Gaussian σ = 1.5, on BT.601 luma."""
    def luma(f):
        f = f.astype(np.float64) / 255.0
        return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    x, y = luma(a), luma(b)
    g = cv2.getGaussianKernel(11, 1.5)
    k = (g @ g.T)
    wx = np.lib.stride_tricks.sliding_window_view(x, (11, 11))
    wy = np.lib.stride_tricks.sliding_window_view(y, (11, 11))
    mx, my = (wx * k).sum((-1, -2)), (wy * k).sum((-1, -2))
    vx = (wx ** 2 * k).sum((-1, -2)) - mx ** 2
    vy = (wy ** 2 * k).sum((-1, -2)) - my ** 2
    cxy = (wx * wy * k).sum((-1, -2)) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.mean()


def test_ssim_known_cases():
    a = texture(48, 64, 3)
    assert ssim(a, a) == pytest.approx(1.0)
    both = ssim(np.stack([a, a]), np.stack([a, a]))
    assert both.shape == (2,) and np.allclose(both, 1.0)
    # constant images: only the luminance term remains, (2 μa μb + C1) / (μa² + μb² + C1)
    ca, cb = np.full((32, 32, 3), 100, np.uint8), np.full((32, 32, 3), 150, np.uint8)
    mu_a, mu_b, c1 = 100 / 255, 150 / 255, 0.01 ** 2
    assert ssim(ca, cb) == pytest.approx((2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1), rel=1e-6)
    # a direct windowed computation agrees
    b = add_noise(a[None], 0.05)[0]
    assert ssim(a, b) == pytest.approx(_ssim_naive(a, b), abs=1e-6)
    # and it falls with noise
    assert ssim(a, b) > ssim(a, add_noise(a[None], 0.2)[0])


def test_content_distance_zero_for_identical_and_positive_otherwise():
    v = translating_video(n=2, h=48, w=64)
    d = content_distance(v, v)
    assert d.shape == (2,) and np.allclose(d, 0.0)
    d_noise = content_distance(add_noise(v, 0.2), v)
    assert (d_noise > 0.01).all()
    assert (content_distance(np.zeros_like(v), v) > 0.5).all()  # a black frame keeps almost nothing


# ------------------------------------------------------------------------------------------------- style

def test_mix_grams_one_hot_and_average():
    rng = torch.Generator().manual_seed(0)
    grams = [{"relu1_1": torch.rand(1, 4, 4, generator=rng), "relu2_1": torch.rand(1, 6, 6, generator=rng)}
             for _ in range(3)]
    mixed = mix_grams(grams, [0, 1, 0])
    for k in grams[1]:
        assert torch.equal(mixed[k], grams[1][k])
    half = mix_grams(grams, np.array([0.5, 0.0, 0.5]))
    assert torch.allclose(half["relu2_1"], (grams[0]["relu2_1"] + grams[2]["relu2_1"]) / 2)
    assert torch.allclose(mix_grams(grams, [2, 0, 2])["relu1_1"], half["relu1_1"])  # normalised
    for bad in ([0, 0, 0], [1, -1, 1], [1, 1]):
        with pytest.raises(ValueError):
            mix_grams(grams, bad)


def test_style_distance_to_own_grams_is_zero():
    frames = np.stack([texture(48, 64, 7), texture(48, 64, 8, sigma=4)])
    own = frame_grams(frames)
    d = style_distance_per_frame(frames, own)
    assert d.shape == (2,) and np.allclose(d, 0.0, atol=1e-12)
    swapped = style_distance_per_frame(frames, own[::-1])
    assert (swapped > 0).all()
    # keyframe at another size is measured at the frames' scale
    kg = scaled_keyframe_grams([cv2.resize(frames[0], (128, 96))], size=(48, 64))
    assert style_distance_per_frame(frames[:1], kg[0])[0] < swapped[0]


def test_evaluate_video_keys_and_columns():
    inp = translating_video(n=12, h=48, w=64)
    out = add_noise(inp, 0.05)
    keys = [texture(40, 40, 11), texture(50, 30, 12, sigma=3)]
    weights = np.stack([np.linspace(1, 0, 12), np.linspace(0, 1, 12)], axis=1)
    metrics, per_frame = evaluate_video(inp, out, keys, weights)
    assert set(metrics) == {"warp_error", "warp_error_input", "style_distance", "style_distance_input",
                            "content_distance", "ssim", "flicker", "flicker_input", "frames", "blank_frames",
                            "unreliable_pairs", "measured_on"}
    assert metrics["measured_on"]["style_distance"] == {"size": [64, 48], "frames": 12, "of": 12}
    assert metrics["blank_frames"] == [] and metrics["unreliable_pairs"] == {"short": 0, "long": 0}
    assert metrics["frames"] == 12
    for k in ("warp_error", "warp_error_input"):
        assert set(metrics[k]) == {"short", "long"} and all(isinstance(v, float) for v in metrics[k].values())
    assert metrics["warp_error"]["short"] > 10 * metrics["warp_error_input"]["short"]
    assert metrics["ssim"] < 1 and metrics["content_distance"] > 0
    assert list(per_frame.columns) == ["frame", "warp_error_short", "warp_error_input_short", "style_distance",
                                       "style_distance_input", "content_distance", "ssim", "flicker", "warp_error_long",
                                       "warp_error_input_long", "flicker_input", "reliable_short", "reliable_long",
                                       "blank"]
    assert len(per_frame) == 12 and np.isnan(per_frame["warp_error_short"][0])
    assert per_frame["warp_error_short"][1:].notna().all()
    assert per_frame["warp_error_short"][1:].mean() == pytest.approx(metrics["warp_error"]["short"])
    import json
    json.dumps(metrics)  # plain JSON

    short_metrics, short_frames = evaluate_video(inp[:6], out[:6], keys, weights[:6])
    assert short_metrics["warp_error"]["long"] is None and short_metrics["warp_error_input"]["long"] is None
    assert len(short_frames) == 6
    with pytest.raises(ValueError):
        evaluate_video(inp, out, keys, weights[:, :1])


# --------------------------------------------------------------------------------------------- real media

def _sintel_frames():
    files = [SINTEL / f"frame_{i:04d}.png" for i in range(1, 13)]
    missing = [f for f in files if not f.is_file()]
    if missing:
        msg = f"Sintel frames missing: {missing[0]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    frames = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            pytest.fail(f"{f}: unreadable image")
        frames.append(cv2.resize(img[..., ::-1], (256, 110), interpolation=cv2.INTER_AREA))
    return np.stack(frames)


def test_sintel_input_warping_error_small_and_flicker_scores_higher():
    frames = _sintel_frames()
    flows = compute_flows(frames, 1)
    floor, per_pair = warping_error(frames, flows=flows)
    assert np.isfinite(per_pair).all() and floor < 0.01
    rng = np.random.default_rng(0)
    gain = 1 + rng.uniform(-0.15, 0.15, len(frames))
    flickering = np.clip(frames.astype(np.float32) * gain[:, None, None, None], 0, 255).round().astype(np.uint8)
    worse, _ = warping_error(flickering, flows=flows)
    assert worse > 5 * floor and worse > floor + 1e-3, (floor, worse)
    assert flicker(flickering, frames, flows=flows)[0] > 3 * flicker(frames, frames, flows=flows)[0]


def test_windowed_evaluation_equals_the_whole_clip():
    """Memory follows the window, not the video's length, and the numbers do not change."""
    from artify.quality.evaluate import evaluate_frames, evaluate_video, metrics_from_frames
    from tests.conftest import textured_video

    rng = np.random.default_rng(1)
    inp = textured_video(26, 64, 48, speed=1)
    out = np.clip(inp.astype(int) + rng.integers(-20, 20, (26, 1, 1, 3)), 0, 255).astype(np.uint8)
    style = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)]
    weights = np.ones((26, 1))
    whole_metrics, whole = evaluate_video(inp, out, style, weights)
    windowed = evaluate_frames(lambda s, c: out[s:s + c], lambda s, c, size: inp[s:s + c], 26, weights, style,
                               window=7)
    assert list(windowed["frame"]) == list(range(26))
    pd.testing.assert_frame_equal(windowed[whole.columns], whole, rtol=1e-5)
    metrics = metrics_from_frames(windowed)
    def same(a, b):  # None: undefined in both (e.g. flicker of a clip with no static pixel)
        return a is None and b is None or a == pytest.approx(b, rel=1e-5)

    for key in ("style_distance", "content_distance", "ssim", "flicker", "flicker_input"):
        assert same(metrics[key], whole_metrics[key]), key
    for key in ("warp_error", "warp_error_input"):
        for span in ("short", "long"):
            assert metrics[key][span] is not None and same(metrics[key][span], whole_metrics[key][span]), key


def test_blank_frames_are_flat_or_black_outputs_of_frames_that_are_not():
    from artify.quality.evaluate import blank_frames, frame_ranges

    inp = translating_video(n=8, h=48, w=64)
    out = add_noise(inp, 0.05)
    out[2] = 0  # a NaN that became 0
    out[3] = 128  # flat grey
    out[5] = (out[5] * 0.05).astype(np.uint8)  # nearly black, but with detail: still black
    inp[6] = 0
    out[6] = 0  # black where the input is black too: a faithful frame, not a broken one
    assert np.flatnonzero(blank_frames(out, inp)).tolist() == [2, 3, 5]
    assert frame_ranges([2, 3, 5, 9, 10, 11]) == "2-3, 5, 9-11"


def test_evaluate_counts_blank_frames_and_pairs_with_no_reliable_pixel():
    inp = translating_video(n=12, h=48, w=64)
    inp[6:] = 255 - inp[6:, ::-1]  # a cut between frames 5 and 6: no pixel of 6 is reliably 5's
    out = add_noise(inp, 0.02)
    out[9] = 0
    keys = [texture(40, 40, 11)]
    metrics, per_frame = evaluate_video(inp, out, keys, np.ones((12, 1)))
    assert metrics["blank_frames"] == [9]
    assert per_frame["blank"].tolist() == [0] * 9 + [1, 0, 0]
    assert per_frame["reliable_short"][1:6].min() > 0.5
    assert per_frame["reliable_short"][6] < 0.5 * per_frame["reliable_short"][1:6].min()  # the cut's pair
    # a pair with no reliable pixel at all says nothing about steadiness: counted in metrics.json
    from artify.quality.evaluate import metrics_from_frames

    per_frame.loc[[3, 6], "reliable_short"] = 0.0
    per_frame.loc[11, "reliable_long"] = 0.0
    assert metrics_from_frames(per_frame)["unreliable_pairs"] == {"short": 2, "long": 1}
    assert metrics_from_frames(per_frame)["blank_frames"] == [9]


def test_a_job_with_blank_frames_fails_and_says_which(tmp_path):
    import pandas as pd

    from artify.quality.evaluate import BlankFramesError, evaluate_job
    from artify.settings import Settings
    from artify.media.video import probe, write_frames_h264

    inp = translating_video(n=12, h=48, w=64)
    out = add_noise(inp, 0.02)
    out[4:7] = 0
    write_frames_h264(tmp_path / "content.mp4", inp, 24, crf=0)
    write_frames_h264(tmp_path / "stylized.mp4", out, 24, crf=0)
    probe(tmp_path / "content.mp4").save(tmp_path / "meta.json")
    pd.DataFrame({"frame": range(12), "w0": 1.0}).to_csv(tmp_path / "schedule.tsv", sep="\t", index=False)
    (tmp_path / "kf").mkdir()
    cv2.imwrite(str(tmp_path / "kf" / "k.png"), texture(40, 40, 11))
    pd.DataFrame({"keyframe": [0], "file": ["k.png"]}).to_csv(tmp_path / "keyframes.tsv", sep="\t", index=False)
    with pytest.raises(BlankFramesError, match=r"3 of 12 frames are blank .* frames 4-6") as e:
        evaluate_job(tmp_path / "content.mp4", tmp_path / "stylized.mp4", tmp_path / "meta.json",
                     tmp_path / "schedule.tsv", tmp_path / "keyframes.tsv", tmp_path / "kf", tmp_path / "metrics.json",
                     tmp_path / "per-frame.tsv", size=64, device="cpu", settings=Settings())
    assert e.value.frames == [4, 5, 6]
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "per-frame.tsv").exists()


# ------------------------------------------------------------------------------------ what evaluation costs

def test_sampled_frames_are_evenly_spaced_first_and_last_included_and_all_of_a_short_video():
    from artify.quality.evaluate import evenly_spaced

    assert evenly_spaced(720, 5).tolist() == [0, 180, 360, 539, 719]
    assert evenly_spaced(720, 64).tolist() == evenly_spaced(720, 64).tolist()  # the same frames every run
    assert len(evenly_spaced(720, 64)) == 64 and evenly_spaced(720, 64)[[0, -1]].tolist() == [0, 719]
    assert evenly_spaced(40, 64).tolist() == list(range(40)) == evenly_spaced(40, 0).tolist()


def test_sampled_style_and_content_are_the_every_frame_values_on_the_sampled_frames():
    """Sampling skips frames; it does not change what is measured on the frames it keeps (across windows too)."""
    from artify.quality.evaluate import evaluate_frames, metrics_from_frames

    inp = translating_video(n=23, h=48, w=64)
    out = add_noise(inp, 0.05)
    keys = [texture(40, 40, 11), texture(50, 30, 12, sigma=3)]
    weights = np.stack([np.linspace(1, 0, 23), np.linspace(0, 1, 23)], axis=1)

    def run(sample):
        return evaluate_frames(lambda s, c: out[s:s + c], lambda s, c, size: inp[s:s + c], 23, weights, keys,
                               window=12, sample=sample)

    every, sampled = run(0), run(5)
    picked = [0, 6, 11, 16, 22]
    for column in ("style_distance", "style_distance_input", "content_distance"):
        assert np.flatnonzero(sampled[column].notna()).tolist() == picked, column
        assert np.allclose(sampled[column][picked], every[column][picked], rtol=1e-5), column
    for column in ("warp_error_short", "warp_error_long", "flicker", "ssim"):  # every frame, untouched
        pd.testing.assert_series_equal(sampled[column], every[column], rtol=1e-6)
    measured = metrics_from_frames(sampled, (64, 48))["measured_on"]
    assert measured["content_distance"] == {"size": [64, 48], "frames": 5, "of": 23}
    assert measured["warp_error"] == {"size": [64, 48], "frames": 23, "of": 23}


def _job_files(tmp_path, inp, out, fps=24):
    from artify.media.video import probe, write_frames_h264

    n = len(inp)
    write_frames_h264(tmp_path / "content.mp4", inp, fps, crf=0)
    write_frames_h264(tmp_path / "stylized.mp4", out, fps, crf=0)
    probe(tmp_path / "content.mp4").save(tmp_path / "meta.json")
    pd.DataFrame({"frame": range(n), "w0": 1.0}).to_csv(tmp_path / "schedule.tsv", sep="\t", index=False)
    (tmp_path / "kf").mkdir()
    cv2.imwrite(str(tmp_path / "kf" / "k.png"), texture(40, 40, 11))
    pd.DataFrame({"keyframe": [0], "file": ["k.png"]}).to_csv(tmp_path / "keyframes.tsv", sep="\t", index=False)
    return [tmp_path / name for name in ("content.mp4", "stylized.mp4", "meta.json", "schedule.tsv",
                                         "keyframes.tsv", "kf", "metrics.json", "per-frame.tsv")]


def test_a_job_is_measured_at_the_capped_size_on_the_sampled_frames_and_says_so(tmp_path):
    import json

    from artify.quality.evaluate import evaluate_job
    from artify.settings import Settings

    inp = translating_video(n=20, h=96, w=128)
    out = add_noise(inp, 0.03)
    files = _job_files(tmp_path, inp, out)
    metrics = evaluate_job(*files, size=128, device="cpu", settings=Settings(eval_size=64, eval_frames=4))
    assert metrics == json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["measured_on"]["style_distance"] == {"size": [64, 48], "frames": 4, "of": 20}
    assert metrics["measured_on"]["content_distance"] == {"size": [64, 48], "frames": 4, "of": 20}
    assert metrics["measured_on"]["warp_error"] == {"size": [64, 48], "frames": 20, "of": 20}
    per_frame = pd.read_csv(tmp_path / "per-frame.tsv", sep="\t")
    assert np.flatnonzero(per_frame["style_distance"].notna()).tolist() == [0, 6, 13, 19]
    assert per_frame["warp_error_short"][1:].notna().all() and per_frame["ssim"].notna().all()
    # a smaller output is measured as it is, and eval_frames 0 is every frame
    full = evaluate_job(*files, size=128, device="cpu", settings=Settings(eval_size=512, eval_frames=0))
    assert full["measured_on"]["style_distance"] == {"size": [128, 96], "frames": 20, "of": 20}
