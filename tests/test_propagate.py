"""Method propagate: keyframes where the content moves away, guides that move with it, a per-shot network that
learns a known mapping, seeded, resumable, retrained exactly where its inputs change, nothing across a cut."""
from __future__ import annotations

from dataclasses import fields, replace
from fractions import Fraction

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from artify.media.chunks import plan_chunks, write_chunks
from artify.media.spans import chunk_path
from artify.media.video import save_frames
from artify.methods import propagate as P
from artify.settings import Settings
from artify.style.cuts import write_cuts
from tests.conftest import textured_video
from tests.pictures import assert_real_pictures

# CI-sized: a few seconds of training on 40x56 frames
TINY = dict(propagate_steps=150, propagate_patch=24, propagate_batch=8, propagate_perceptual_weight=0.0,
            propagate_checkpoint_every=10)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _pan(n: int = 12, seed: int = 0, speed: int = 2) -> np.ndarray:
    """A smooth random texture panning right by `speed` px a frame (40x56)."""
    rng = np.random.default_rng(seed)
    world = cv2.resize(rng.integers(0, 256, (12, 18, 3), dtype=np.uint8), (56 + n * speed, 40),
                       interpolation=cv2.INTER_CUBIC)
    return np.stack([world[:, t * speed:t * speed + 56] for t in range(n)])


def _known(frames: np.ndarray) -> np.ndarray:
    """The known 'style': channels rotated and inverted."""
    return 255 - frames[..., [2, 0, 1]]


def _trained(tmp_path, frames, keys, settings, name="net.pt", seed=0, **kw):
    guides = P.shot_guides(frames, keys, _known(frames[keys]), settings, seed)
    result = P.train_network(frames[keys], guides[keys], _known(frames[keys]), tmp_path / name, settings, "cpu", seed,
                             **kw)
    return result, guides


def _apply(path, frames, guides, precision="auto"):
    net, _ = P.load_shot_network(path, "cpu")
    return np.stack(list(P.apply_network(net, frames, guides, "cpu", batch=5, precision=precision)))


def test_keyframes_start_each_shot_and_follow_motion_or_every_n():
    frames = textured_video(12, 96, 64, speed=1)
    assert P.keyframe_indices(frames, 0.0, 4) == [0, 4, 8, 11]  # and the last: every frame between two
    assert P.keyframe_indices(frames, 0.0, 0) == [0, 11]
    assert P.keyframe_indices(frames[:1], 0.0, 0) == [0]
    # new content from frame 7 on: the flow back to keyframe 0 is reliable on a third of it at most
    changed = np.concatenate([frames[:7], textured_video(5, 96, 64, seed=9, speed=1)])
    assert P.keyframe_indices(changed, 0.5, 0) == [0, 7, 11]
    assert P.keyframe_indices(changed, 0.5, 3) == [0, 3, 6, 7, 10, 11]
    # a pan drifts away from its keyframe: the further, the less of the frame its look can be carried to (DIS
    # loses a 4-pixel-block texture after ~10 px on these tiny frames)
    assert P.reliable_share(frames[1], frames[0]) > 0.95 > P.reliable_share(frames[10], frames[0])
    assert P.keyframe_indices(frames, 0.7, 0) == [0, 10, 11]


def test_a_fade_from_black_is_not_a_keyframe_a_frame():
    """Flat, dark frames: the forward-backward flow check fails everywhere there (the flow is arbitrary), and
    made every frame of a fade a keyframe; a flat look is carried anywhere, so they keep their keyframe."""
    frames = textured_video(12, 96, 64, speed=1)
    fade = (frames.astype(np.float32) * np.linspace(0.02, 0.08, 12)[:, None, None, None]).astype(np.uint8)
    assert P.keyframe_indices(fade, 0.6, 0) == [0, 11]


def test_keyframes_follow_a_style_transition():
    """A one-second cosine cross-fade (the schedule's) in the middle of a still shot: keyframes are taken through
    it until the straight mix between each two keyframes (what the look carried between them shows) stays
    within the tolerance of the schedule's mix; the same shot under one style keeps its two keyframes."""
    frames = textured_video(48, 96, 64, speed=0)
    fade = np.clip((np.arange(48) - 12) / 24, 0, 1)
    to_b = (1 - np.cos(np.pi * fade)) / 2
    weights = np.stack([1 - to_b, to_b], 1)
    assert P.keyframe_indices(frames, 0.6, 0, weights=np.ones((48, 1)), mix_tolerance=0.1) == [0, 47]
    assert P.keyframe_indices(frames, 0.6, 0) == [0, 47]  # no schedule given
    for tolerance in (0.2, 0.1, 0.05):
        keys = P.keyframe_indices(frames, 0.6, 0, weights=weights, mix_tolerance=tolerance)
        assert max(P.mix_departure(weights, a, b) for a, b in zip(keys, keys[1:])) <= tolerance, keys
        assert all(8 <= k <= 40 for k in keys[1:-1]), keys  # none far from the fade, where the mix holds still
    assert P.mix_departure(weights, 0, 47) > 0.25  # the first and last frames alone: far off where the fade starts
    assert len(P.keyframe_indices(frames, 0.6, 0, weights=weights, mix_tolerance=0.05)) > len(
        P.keyframe_indices(frames, 0.6, 0, weights=weights, mix_tolerance=0.2))
    assert P.keyframe_indices(frames, 0.6, 0, weights=weights, mix_tolerance=1.0) == [0, 47]


def test_keyframes_of_a_two_hour_shot_with_style_transitions():
    """At film scale (one shot of 2 hours at 24 fps, 172,800 frames, a cross-fade to the next of four styles
    every 20 minutes): keyframes strictly increasing from the first frame to the last, never more than
    `propagate_every` apart, denser only through the fades, and the straight mix between each two within the
    tolerance of the schedule. Content is left out (min_reliable 0: no flow), the frames are 1x1."""
    n, styles = 172_800, 4
    frames = np.zeros((n, 1, 1, 3), np.uint8)
    weights = np.zeros((n, styles))
    boundaries = [28_800 * (k + 1) for k in range(styles - 1)]  # 20, 40 and 60 minutes in
    position = np.zeros(n)
    for start in boundaries:  # a one-second cosine fade at each
        position += (1 - np.cos(np.pi * np.clip((np.arange(n) - start) / 24, 0, 1))) / 2
    low = np.minimum(position.astype(int), styles - 1)
    weights[np.arange(n), low] = 1 - (position - low)
    weights[np.arange(n), np.minimum(low + 1, styles - 1)] += position - low
    keys = P.keyframe_indices(frames, 0.0, 24, weights=weights, mix_tolerance=0.1)
    gaps = np.diff(keys)
    assert keys[0] == 0 and keys[-1] == n - 1 and (gaps > 0).all() and (gaps <= 24).all()
    assert max(P.mix_departure(weights, a, b) for a, b in zip(keys, keys[1:])) <= 0.1
    dense = [k for k, gap in zip(keys, gaps) if gap < 24]
    assert all(any(b - 24 <= k <= b + 24 for b in boundaries) for k in dense[:-1]), dense


def test_a_look_lost_along_its_chain_stays_lost():
    """held_trust: a block the picture test fails at frame 1 and passes again at frame 2 stays untrusted from
    frame 1 on, moving with the pan (each frame's pixel x was at x + 1 the frame before); the rest keeps its
    trust."""
    trust = np.ones((4, 8, 12), np.float32)
    trust[1, 2:4, 4:6] = 0
    flows = np.zeros((4, 8, 12, 2), np.float32)
    flows[1:, ..., 0] = 1
    held = P.held_trust(trust, flows)
    assert (held[1, 2:4, 4:6] == 0).all() and (held[2, 2:4, 3:5] == 0).all() and (held[3, 2:4, 2:4] == 0).all()
    assert held.sum() == trust.sum() - 4 - 4  # frames 2 and 3 lose the moved block, nothing else
    assert (P.held_trust(np.ones_like(trust), flows) == 1).all()


def test_the_mixture_guide_moves_with_the_content():
    frames = _pan(8)
    guides = P.shot_guides(frames, [0], _known(frames[:1]), Settings(propagate_guide="mixture"), seed=0)
    assert guides.shape == (8, 40, 56, 3) and guides.dtype == np.uint8
    # panning right by 2 px a frame: frame t's column x shows what frame 0 had at column x + 2t
    t = 5
    moved = np.abs(guides[t][:, 4:40].astype(int) - guides[0][:, 4 + 2 * t:40 + 2 * t]).mean()
    still = np.abs(guides[t][:, 4:40].astype(int) - guides[0][:, 4:40]).mean()
    assert moved < 2 < still
    assert P.shot_guides(frames, [0], _known(frames[:1]), Settings(propagate_guide="none"), 0).shape == (8, 40, 56, 0)
    carried = P.shot_guides(frames, [0], _known(frames[:1]), Settings(propagate_guide="carried"), 0)
    assert carried.shape == (8, 40, 56, 7) and np.array_equal(carried[..., :3], guides)


def test_the_stylized_keyframes_are_carried_to_every_frame_and_meet_each_keyframe():
    """Keyframes 0 and 6 of a pan, stylized by the known transform: each frame's carried guide is that
    transform of the frame itself where trusted (the pan enters from the right: the columns no keyframe saw
    are not trusted), and exactly the stylized keyframe on a keyframe."""
    frames = _pan(10)
    links = P.frame_links(frames)
    carried = P.carried_keyframes(_known(frames[[0, 6]]), [0, 6], links, frames)
    assert carried.shape == (10, 40, 56, 4)
    assert np.array_equal(carried[[0, 6], ..., :3], _known(frames[[0, 6]])) and (carried[[0, 6], ..., 3] == 255).all()
    for t in (2, 4, 8):
        trusted = carried[t, ..., 3] == 255
        assert trusted[4:-4, 4:40].mean() > 0.95, t  # the middle of the frame: seen by a keyframe
        error = np.abs(carried[t, ..., :3].astype(int) - _known(frames[t]))[trusted].mean()
        assert error < 6, (t, error)
    # after the last keyframe the pan brings in columns it never saw: 2 px a frame, untrusted and blank
    assert (carried[9, :, -6:, 3] == 0).mean() > 0.8 and (carried[9, :, -6:, :3][carried[9, :, -6:, 3] == 0] == 0).all()


def test_the_carried_look_moves_smoothly_from_one_keyframe_to_the_next():
    """Two keyframes stylized two ways (half contrast, the second 100 brighter): between them the carried guide
    moves from the first look to the second by an even step a frame, with no jump onto the second keyframe.
    Measured on the columns both keyframes see (the pan moves 2 px a frame: 16 px from one to the other)."""
    frames = _pan(9)
    looks = np.stack([frames[0] // 2, frames[8] // 2 + 100])
    carried = P.carried_keyframes(looks, [0, 8], P.frame_links(frames), frames)[:, 4:-4, 18:38, :3].astype(float)
    towards_second = [(c - frames[t][4:-4, 18:38] // 2).mean() / 100 for t, c in enumerate(carried)]
    assert towards_second[0] == 0 and towards_second[8] == 1
    steps = np.diff(towards_second)
    assert (abs(steps - 1 / 8) < 0.02).all(), np.round(towards_second, 3)


def test_blending_two_looks_keeps_the_contrast_of_their_detail():
    """Midway between two unrelated brush textures a plain average has ~0.71 of their contrast; the blend keeps
    it. Alike looks blend to themselves, and a look of weight 1 is itself."""
    rng = np.random.default_rng(0)
    looks = [cv2.resize(rng.uniform(0, 255, (20, 28, 3)).astype(np.float32), (112, 80))[None] for _ in range(2)]
    half = [np.full((1, 80, 112), 0.5, np.float32)] * 2

    def contrast(x):
        return (x - cv2.GaussianBlur(x[0], (0, 0), 3)[None]).std()

    assert contrast((looks[0] + looks[1]) / 2) < 0.8 * contrast(looks[0])
    assert abs(contrast(P.blend(looks, half)) / contrast(looks[0]) - 1) < 0.15
    assert np.allclose(P.blend([looks[0], looks[0]], half), looks[0], atol=0.5)
    assert np.allclose(P.blend(looks, [half[0] * 2, half[0] * 0]), looks[0], atol=0.5)


def test_the_output_is_the_carried_look_where_trusted_and_the_network_where_not():
    made = torch.full((1, 3, 20, 30), 0.2)
    look = torch.full((1, 3, 20, 30), 0.8)
    trusted = torch.zeros(1, 1, 20, 30)
    trusted[..., :, :15] = 1  # the left half: a keyframe's look can be carried there
    inputs = torch.cat([torch.rand(1, 6, 20, 30), look, trusted], 1)
    out, painted = P.composite(made, inputs)
    assert torch.equal(out, painted * made + (1 - painted) * look)
    assert torch.equal(out[..., :, :13], look[..., :, :13])  # trusted, away from the seam: the keyframe's own look
    assert torch.equal(out[..., :, 15:], made[..., :, 15:])  # untrusted: the network's painting
    seam = out[0, 0, 10, 13:15]
    assert (seam > 0.2).all() and (seam < 0.8).all() and (seam.diff() < 0).all()  # feathered, not a hard edge


def test_the_flow_blend_steadies_only_what_the_network_paints():
    """flow_blend 1 with a still camera (zero flow, reliable everywhere): what the network paints (the right
    half, no keyframe's look trusted there) stays as it was on the first frame however the frames change; the
    carried look (the left half) is the look of each frame as it is. flow_blend 0: painted anew each frame."""
    torch.manual_seed(0)
    net = P.PatchNet(3 + 7, 8)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 16, 24, 3), dtype=np.uint8)
    guides = np.zeros((4, 16, 24, 7), np.uint8)
    guides[..., 3:6] = rng.integers(0, 256, (4, 16, 24, 3))
    guides[:, :, :12, 6] = 255
    flows = {"flow_1": np.zeros((4, 16, 24, 2), np.float16), "mask_1": np.ones((4, 16, 24), np.uint8)}

    def run(blend):
        return np.stack(list(P.apply_network(net, frames, guides, "cpu", 2, "float32", True, flows, blend)))

    steady, fresh = run(1.0), run(0.0)
    assert (steady[:, :, 12:] == steady[0, :, 12:]).all() and not (fresh[:, :, 12:] == fresh[0, :, 12:]).all()
    assert np.array_equal(steady[:, :, :10], guides[:, :, :10, 3:6]) and np.array_equal(fresh[:, :, :10],
                                                                                          guides[:, :, :10, 3:6])


def test_training_hides_the_carried_guide_where_it_would_be_untrusted():
    inputs = torch.rand(64, 10, 24, 24) + 0.1
    hidden = P.hide_carried(inputs, torch.Generator().manual_seed(0))
    assert torch.equal(hidden[:, :6], inputs[:, :6])  # frame and mixture guide untouched
    blank = (hidden[:, 6:] == 0).all(1)
    share = blank.flatten(1).any(1).float().mean()
    assert 0.3 < share < 0.7 and blank.float().mean() > 0.1
    assert torch.equal(hidden, P.hide_carried(inputs, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("guide", ["carried", "mixture"])
def test_the_network_learns_a_known_mapping_and_carries_it_to_every_frame(tmp_path, guide):
    """Keyframes 0 and 6 stylized by a known colour transform: every other frame comes out as that transform
    of itself, within 16 of 255 on average (the identity is ~100 away)."""
    frames = _pan(12)
    result, guides = _trained(tmp_path, frames, [0, 6], Settings(**TINY, propagate_guide=guide))
    assert result["finished"] and result["history"][-1][1] < result["history"][0][1] / 3
    out = _apply(tmp_path / "net.pt", frames, guides)
    error = np.abs(out.astype(int) - _known(frames)).mean(axis=(1, 2, 3))
    assert np.abs(frames.astype(int) - _known(frames)).mean() > 60
    others = np.delete(error, [0, 6])
    assert others.max() < 16, error.round(1)
    assert others.mean() < 1.5 * error[[0, 6]].mean() + 2, error.round(1)


def test_same_seed_same_output_other_seed_differs(tmp_path):
    frames = _pan(6)
    settings = Settings(**{**TINY, "propagate_steps": 15})
    outputs = []
    for name, seed in (("a.pt", 0), ("b.pt", 0), ("c.pt", 1)):
        _, guides = _trained(tmp_path, frames, [0, 3], settings, name, seed)
        outputs.append(_apply(tmp_path / name, frames, guides))
    assert np.array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], outputs[2])


def test_interrupted_training_resumes_and_changed_settings_start_over(tmp_path, capsys):
    frames = _pan(6)
    settings = Settings(**{**TINY, "propagate_steps": 30})
    _, guides = _trained(tmp_path, frames, [0, 3], settings, "whole.pt")
    whole = _apply(tmp_path / "whole.pt", frames, guides)

    first, _ = _trained(tmp_path, frames, [0, 3], settings, "killed.pt", stop_after=17)
    assert not first["finished"] and not (tmp_path / "killed.pt").exists() and first["step"] == 17
    resumed, _ = _trained(tmp_path, frames, [0, 3], settings, "killed.pt")
    assert "resuming from" in capsys.readouterr().out and resumed["finished"]
    assert [h[0] for h in resumed["history"]] == list(range(1, 31))
    assert np.array_equal(_apply(tmp_path / "killed.pt", frames, guides), whole)  # as if never killed

    # a killed run of other settings is never resumed: a changed learning rate trains from step 0
    _trained(tmp_path, frames, [0, 3], settings, "changed.pt", stop_after=17)
    other = replace(settings, propagate_lr=1e-3)
    _trained(tmp_path, frames, [0, 3], other, "changed.pt")
    assert "propagate_lr" in capsys.readouterr().out
    _trained(tmp_path, frames, [0, 3], other, "fresh.pt")
    assert np.array_equal(_apply(tmp_path / "changed.pt", frames, guides), _apply(tmp_path / "fresh.pt", frames, guides))


def _shot_video():
    """Two shots: a pan of one texture, a cut at frame 8, a pan of another."""
    return np.concatenate([_pan(8, seed=0), _pan(8, seed=5)])


def _fake_keyframe_method(monkeypatch, transforms, calls):
    """The keyframe method replaced by known transforms, one per call (keyframe), counting its calls."""
    def stylize(frames, weights, styles, settings, device, decoder=None):
        calls.append(len(frames))
        return transforms[min(len(calls), len(transforms)) - 1](frames)

    monkeypatch.setattr(P, "stylize_keyframes", stylize)


def test_one_network_per_shot_and_nothing_across_a_cut(tmp_path, monkeypatch):
    """Each shot's keyframes stylized by a different transform: each shot comes out as its own; a network made
    from the other shot's keyframes would carry the wrong colours over the cut."""
    frames, calls = _shot_video(), []
    second = lambda f: f[..., [1, 2, 0]]  # noqa: E731
    _fake_keyframe_method(monkeypatch, [_known] * 3 + [second], calls)
    settings = Settings(**TINY, propagate_every=4)
    rows = P.shot_networks(lambda a, b: frames[a:b], [(0, 8), (8, 16)], np.ones((16, 1)), [frames[0]], tmp_path,
                           settings, "cpu")
    assert [(r["start"], r["stop"], r["keyframes"]) for r in rows] == [(0, 8, "0,4,7"), (8, 16, "8,12,15")]
    assert calls == [1] * 6  # one keyframe at a time
    out = np.stack(list(P.apply_shots(tmp_path, rows, frames, 0, "cpu")))
    assert np.abs(out[:8].astype(int) - _known(frames[:8])).mean() < 16
    assert np.abs(out[8:].astype(int) - second(frames[8:])).mean() < 16
    assert np.abs(out[8:].astype(int) - _known(frames[8:])).mean() > 60
    # a chunk that starts inside the first shot and ends inside the second: the same frames
    part = np.stack(list(P.apply_shots(tmp_path, rows, frames[5:11], 5, "cpu")))
    assert np.array_equal(part, out[5:11])


def test_a_change_retrains_exactly_the_shots_it_touches(tmp_path, monkeypatch, capsys):
    frames, calls = _shot_video(), []
    _fake_keyframe_method(monkeypatch, [_known], calls)
    settings = Settings(**{**TINY, "propagate_steps": 5}, propagate_every=4)
    shots = [(0, 8), (8, 16)]

    def run(frames, settings):
        capsys.readouterr()
        P.shot_networks(lambda a, b: frames[a:b], shots, np.ones((16, 1)), [frames[0]], tmp_path, settings, "cpu")
        return capsys.readouterr().out.count("; training")

    assert run(frames, settings) == 2 and len(calls) == 6  # keyframes 0, 4, 7 and 8, 12, 15
    assert run(frames, replace(settings, batch_frames=2)) == 0  # an apply-only setting
    assert len(calls) == 6  # and the keyframes were not stylized again
    touched = frames.copy()
    touched[12] = 255 - touched[12]  # a keyframe of the second shot (and frame 13 now moves away from it)
    assert run(touched, settings) == 1
    assert len(calls) == 8  # frames 12 and 13; keyframes 8 and 15 are kept
    assert run(touched, replace(settings, propagate_lr=1e-3)) == 2
    assert len(calls) == 8  # a training setting: the keyframes stay
    assert run(touched, replace(settings, style_weight=5.0)) == 2 and len(calls) == 8 + 7


def _extracted_job(folder, video, cuts):
    """A job's inputs as the rules make them: `video` in chunks of 5 frames read from 1 earlier (the overlap),
    spans of 10 frames, the cuts table, a one-style schedule and its keyframe."""
    plan = plan_chunks(len(video), 5, 1, span_frames=10)
    write_chunks(plan, folder / "chunks.tsv")
    for c in plan:
        save_frames(chunk_path(folder / "frames" / f"{c.span:04d}", c.chunk, ".npy"), video[c.read_start:c.stop],
                    c.stop - c.read_start)
    write_cuts(cuts, Fraction(24), folder / "cuts.tsv")
    pd.DataFrame({"frame": range(len(video)), "w0": 1.0}).to_csv(folder / "schedule.tsv", sep="\t", index=False)
    (folder / "kf").mkdir()
    cv2.imwrite(str(folder / "kf" / "k.png"), video[0])
    pd.DataFrame({"keyframe": [0], "file": ["k.png"]}).to_csv(folder / "keyframes.tsv", sep="\t", index=False)
    return sorted((folder / "frames").iterdir())


def test_a_film_of_many_shots_is_trained_one_shot_at_a_time(tmp_path, monkeypatch):
    """The propagate_keyframes and train_propagate stages on a job of five shots of unequal length, extracted
    into overlapping chunks and spans: each stage reads each shot's frames from the chunk files when its turn
    comes (no more frames read than the shot has, so a film of hours never has to fit in memory), and they are
    exactly the job's frames there. The training finds each shot and its keyframes in the keyframes table."""
    from artify.stages import propagate as stage

    video = textured_video(30, 56, 40)
    frames_dirs = _extracted_job(tmp_path, video, [7, 12, 20, 23])
    _fake_keyframe_method(monkeypatch, [_known], [])
    from_files, asked = [], []
    real_read = stage.read_frames

    def read_chunk_file(*args, **kw):
        frames = real_read(*args, **kw)
        from_files.append(len(frames))
        return frames

    def one_shot_at_a_time(real):
        def run(frames_of, *args, **kw):
            def shot(a, b):
                from_files.clear()
                frames = frames_of(a, b)
                asked.append((a, b, sum(from_files)))
                assert np.array_equal(frames, video[a:b]), (a, b)
                return frames
            return real(shot, *args, **kw)
        return run

    monkeypatch.setattr(stage, "read_frames", read_chunk_file)
    for name in ("shot_keyframes", "train_shots"):
        monkeypatch.setattr(stage, name, one_shot_at_a_time(getattr(stage, name)))
    settings = Settings(**{**TINY, "propagate_steps": 2}, device="cpu", propagate_every=4)
    keyframes = stage.run_propagate_keyframes(frames_dirs, tmp_path / "chunks.tsv", tmp_path / "cuts.tsv",
                                              tmp_path / "schedule.tsv", tmp_path / "keyframes.tsv", tmp_path / "kf",
                                              tmp_path / "out/shot_keyframes.tsv", settings, threads=1)
    rows = stage.run_train_propagate(frames_dirs, tmp_path / "chunks.tsv", tmp_path / "out/shot_keyframes.tsv",
                                     tmp_path / "out/shots.tsv", settings, threads=1)
    shots = [(0, 7), (7, 12), (12, 20), (20, 23), (23, 30)]
    assert [(r["start"], r["stop"]) for r in keyframes] == [(r["start"], r["stop"]) for r in rows] == shots
    assert [r["keyframes"] for r in rows] == [r["keyframes"] for r in keyframes]
    assert asked == [(a, b, b - a) for a, b in shots] * 2  # one shot at a time, read from its own chunks alone
    n, frames_of = stage.job_frames(frames_dirs, tmp_path / "chunks.tsv")
    assert n == 30
    with pytest.raises(ValueError, match=r"frames \[25, 31\) asked for; the job has \[0, 30\)"):
        frames_of(25, 31)


def test_the_training_refuses_a_keyframe_that_is_not_the_one_its_table_lists(tmp_path, monkeypatch):
    """train_propagate trains on the keyframe files the keyframes table lists with their sha256: a file changed
    since (another run's, a copy from elsewhere) is named and refused, not trained on. The table read back keeps
    its lists as text, also where every shot has one keyframe (shots of one frame: their lists would otherwise
    read as numbers)."""
    frames = _shot_video()
    _fake_keyframe_method(monkeypatch, [_known], [])
    settings = Settings(**{**TINY, "propagate_steps": 2}, propagate_every=0, propagate_min_reliable=0.0)
    table = P.shot_keyframes(lambda a, b: frames[a:b], [(0, 1), (1, 2)], np.ones((16, 1)), [frames[0]], tmp_path,
                             settings, "cpu")
    P.write_shot_keyframes(table, tmp_path / "shot_keyframes.tsv")
    table = P.read_shot_keyframes(tmp_path / "shot_keyframes.tsv")
    rows = P.train_shots(lambda a, b: frames[a:b], table, tmp_path, tmp_path / "nets", settings, "cpu")
    assert [r["keyframes"] for r in rows] == ["0", "1"]
    other = tmp_path / "keyframe_000001.npz"
    with np.load(other) as saved:
        np.savez(other, key=saved["key"], stylized=255 - saved["stylized"])
    with pytest.raises(ValueError, match=r"keyframe_000001.npz: not the keyframe the keyframes table lists"):
        P.train_shots(lambda a, b: frames[a:b], table, tmp_path, tmp_path / "nets", settings, "cpu")


def test_the_keyframes_stage_reads_no_training_setting():
    """The keyframes' rule gets no training setting (a change to one must not rerun it: Snakemake reruns a rule
    whose options change); the training's rule gets every propagate setting (its networks' key)."""
    from artify.settings import PropagateSettings, defaults, stage_options

    training = {f"--{f.name.replace('_', '-')}" for f in fields(PropagateSettings)}
    keyframes, train = stage_options("propagate_keyframes", defaults()), stage_options("train_propagate", defaults())
    assert "--propagate-every" in keyframes and "--propagate-keyframe-method" in keyframes
    assert training.isdisjoint(keyframes) and training <= set(train) and "--propagate-every" in train


def test_output_frames_are_real_stylized_pictures(tmp_path):
    """Through the real keyframe method (gatys, a few iterations): every frame a stylized picture."""
    frames = _pan(8)
    style = np.zeros((48, 48, 3), np.uint8)
    style[:, ::6] = [255, 60, 0]
    style[::6] = [0, 60, 255]
    settings = Settings(**{**TINY, "propagate_steps": 120}, iterations=12, style_layers="relu1_1,relu2_1",
                        content_layers="relu2_1", propagate_every=4)
    weights = np.ones((8, 1))
    rows = P.shot_networks(lambda a, b: frames[a:b], [(0, 8)], weights, [style], tmp_path, settings, "cpu")
    out = np.stack(list(P.apply_shots(tmp_path, rows, frames, 0, "cpu")))
    assert rows[0]["keyframes"] == "0,4,7"
    assert np.load(tmp_path / "keyframe_000004.npz")["stylized"].shape == (40, 56, 3)
    assert_real_pictures(out, frames, [style], weights, "propagate")


def test_bfloat16_runs_the_cuda_code_path_on_the_cpu(tmp_path):
    """precision bfloat16 on the CPU: the autocast CUDA's auto takes; the output stays near float32's."""
    frames = _pan(6)
    settings = Settings(**{**TINY, "propagate_steps": 20}, precision="bfloat16")
    _, guides = _trained(tmp_path, frames, [0, 3], settings)
    low = _apply(tmp_path / "net.pt", frames, guides, "bfloat16")
    full = _apply(tmp_path / "net.pt", frames, guides, "float32")
    assert 0 < np.abs(low.astype(int) - full).mean() < 3


def test_a_propagate_jobs_cost_counts_its_keyframes_and_training():
    """metrics.json's seconds_per_frame and stages sum these benchmark files: rules propagate_keyframes' and
    train_propagate's among them."""
    from artify.quality.stage_files import benchmark_files
    from artify.settings import defaults

    jobs = {"p": {**defaults(), "method": "propagate"}, "p.perframe": {**defaults(), "method": "propagate",
                                                                      "temporal": False}}
    files = benchmark_files("p", jobs, {}, lambda job: [0], lambda job: job)
    assert "benchmarks/train_propagate/p.tsv" in files and "benchmarks/stylize_chunk/p_0000.tsv" in files
    assert "benchmarks/propagate_keyframes/p.tsv" in files
    assert "benchmarks/flow_chunk/p_0000.tsv" in files  # the flow blend of what the network paints
    unblended = {"q": {**defaults(), "method": "propagate", "flow_blend": 0.0}}
    assert not any("flow_chunk" in f for f in benchmark_files("q", unblended, {}, lambda job: [0], lambda job: job))
    # a per-frame baseline applies the networks its job trained: it costs that training too
    baseline = benchmark_files("p.perframe", jobs, {}, lambda job: [0], lambda job: "p")
    assert {"benchmarks/propagate_keyframes/p.tsv", "benchmarks/train_propagate/p.tsv"} <= set(baseline)


def test_the_bench_table_says_which_targets_propagate_meets(tmp_path):
    """bench.propagate's table: each row's ratios to gatys per-frame's and temporal's on the same frames and
    painting, and propagate against the issue's three targets, counted."""
    from bench.propagate import write_table

    def row(clip, method, style, warp_1, warp_10):
        return {"clip": clip, "style": "wave.jpg", "frames": 24, "method": method, "style_distance": style,
                "content_distance": 0.4, "warp_1": warp_1, "warp_10": warp_10, "cpu_seconds_per_frame": 1.0}

    rows = [row("a", "gatys-perframe", 4.0, 4e-3, 8e-3), row("a", "gatys", 3.5, 3e-4, 4e-3),
            row("a", "propagate", 5.0, 3.3e-4, 3e-3),  # 1.25x, 1.1x (missed), 0.375x
            row("b", "gatys-perframe", 2.0, 4e-3, 8e-3), row("b", "gatys", 2.0, 3e-4, 4e-3),
            row("b", "propagate", 3.0, 2e-4, 5e-3),  # 1.5x (missed), 0.67x, 0.625x (missed)
            row("c", "propagate", 3.0, 2e-4, 5e-3)]  # no gatys rows: not counted
    write_table(rows, tmp_path / "t.md")
    text = (tmp_path / "t.md").read_text()
    assert "| a | wave.jpg | 1.25 met | 1.10 **missed** | 0.38 met |" in text
    assert "| b | wave.jpg | 1.50 **missed** | 0.67 met | 0.62 **missed** |" in text
    assert "| met | | 1 of 2 | 1 of 2 | 1 of 2 |" in text
