"""Segmentation: the real Segment Anything code path on a tiny random SAM, the offline motion segmenter on a
synthetic scene with known truth, and temporal stabilisation of masks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from artify.masks import carry, sam as sam_module
from artify.masks.carry import box_of, iou, mask_flicker, neighbour_flows, stabilise_masks
from artify.masks.motion import MotionSegmenter
from artify.masks.sam import SamSegmenter, load_sam, parse_prompt, pick_subject, tiny_sam
from artify.masks.segment import load_masks, make_segmenter, save_masks, segment_frames
from artify.settings import Settings


def scene(n=8, h=96, w=160, pan=2, square=40, speed=(3, 1), seed=0):
    """Textured background panning left by `pan` px/frame (the camera) and a differently textured square moving
    by `speed` px/frame: (frames uint8 (n, h, w, 3), truth masks float32 (n, h, w))."""
    rng = np.random.default_rng(seed)
    world = rng.integers(0, 256, (h // 4 + 1, (w + n * pan) // 4 + 1, 3), dtype=np.uint8)
    world = np.repeat(np.repeat(world, 4, 0), 4, 1)
    obj = rng.integers(0, 256, (square // 4, square // 4, 3), dtype=np.uint8)
    obj = np.repeat(np.repeat(obj, 4, 0), 4, 1)
    obj[..., 2] = 255 - obj[..., 2] // 3  # a colour of its own, as real subjects have
    frames, truth = [], []
    for t in range(n):
        f = world[:h, t * pan: t * pan + w].copy()
        x, y = 20 + speed[0] * t, 20 + speed[1] * t
        f[y:y + square, x:x + square] = obj
        m = np.zeros((h, w), np.float32)
        m[y:y + square, x:x + square] = 1
        frames.append(f)
        truth.append(m)
    return np.stack(frames), np.stack(truth)


@pytest.fixture(scope="module")
def sam():
    return tiny_sam()


@pytest.fixture(scope="module")
def moving_scene():
    frames, truth = scene()
    return frames, truth, neighbour_flows(frames)


# ------------------------------------------------------------------------------------------- SAM


def test_tiny_sam_runs_the_real_predictor(sam):
    from segment_anything import SamPredictor

    frame = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    predictor = SamPredictor(sam)
    predictor.set_image(frame)
    assert predictor.features.shape == (1, 32, 16, 16)  # 256-px encoder, patch 16, width 32
    masks, scores, low = predictor.predict(point_coords=np.array([[40.0, 24.0]]), point_labels=np.array([1]))
    assert masks.shape == (3, 48, 80) and masks.dtype == bool and scores.shape == (3,) and low.shape == (3, 64, 64)


def _spy(seg, answer=None):
    """Record every prompt SamPredictor.predict receives (the real call still runs unless `answer` is given)."""
    calls, real = [], seg.predictor.predict

    def predict(**kwargs):
        calls.append(kwargs)
        out = real(**kwargs)
        if answer is not None:
            return answer(kwargs), out[1], out[2]
        return out
    seg.predictor.predict = predict
    return calls


def test_point_and_box_prompts_are_scaled_to_pixels(sam, moving_scene):
    frames = moving_scene[0][:3]
    seg = SamSegmenter(sam, every=8, point=parse_prompt("0.5,0.25", 2))
    calls = _spy(seg)
    masks = seg.segment(frames)
    assert masks.shape == frames.shape[:3] and masks.dtype == np.float32
    assert set(np.unique(masks)) <= {0.0, 1.0}
    np.testing.assert_allclose(calls[0]["point_coords"], [[80.0, 24.0]])
    assert calls[0]["box"] is None and seg.sam_frames == 1

    seg = SamSegmenter(sam, every=8, point=(0.5, 0.5), box=parse_prompt("0.25,0.5,0.75,1", 4))
    calls = _spy(seg)
    seg.segment(frames)
    np.testing.assert_allclose(calls[0]["box"], [40.0, 48.0, 120.0, 96.0])  # the box wins over the point
    assert calls[0]["point_coords"] is None


def test_bad_prompts_are_refused():
    assert parse_prompt("", 2) is None and parse_prompt(float("nan"), 4) is None
    with pytest.raises(ValueError, match="fractions"):
        parse_prompt("120,40", 2)
    with pytest.raises(ValueError, match="x0 < x1"):
        parse_prompt("0.8,0.1,0.2,0.9", 4)


def test_masks_are_carried_by_the_flow_and_sam_is_reprompted_with_their_box(sam, moving_scene):
    frames, truth, flows = moving_scene
    seg = SamSegmenter(sam, every=4, box=(0.1, 0.1, 0.5, 0.6))
    # SAM answers the true square at SAM frames (random weights can't), so carried masks can be checked
    state = {"t": 0}
    calls = _spy(seg, answer=lambda kw: np.stack([truth[state["t"]] > 0.5] * 3))
    original = seg.predictor.set_image

    def set_image(image, *a):
        state["t"] = next(i for i, f in enumerate(frames) if f is image or np.array_equal(f, image))
        return original(image, *a)
    seg.predictor.set_image = set_image
    masks = seg.segment(frames, flows)
    assert seg.sam_frames == 2 and len(calls) == 2  # frames 0 and 4
    for t in (1, 2, 3, 5, 6, 7):  # frames between SAM frames follow the square's own motion
        assert iou(masks[t], truth[t]) > 0.8, t
    carried = carry.carry_subject(masks[3], flows, 4)
    np.testing.assert_allclose(calls[1]["box"], box_of(carried))  # re-prompted from the carried mask's box


def test_automatic_generator_path_and_subject_rule(sam, moving_scene):
    frames = np.ascontiguousarray(moving_scene[0][:2, ::2, ::2])  # small: SAM's RLE of random masks is slow
    for subject in ("centre", "motion"):
        seg = SamSegmenter(sam, every=8, subject=subject, generator={"points_per_side": 4, "pred_iou_thresh": -1.0,
                                                                     "stability_score_thresh": -1.0})
        masks = seg.segment(frames)
        assert masks.shape == frames.shape[:3] and seg.sam_frames == 1
    with pytest.raises(ValueError, match="unknown subject rule"):
        SamSegmenter(sam, subject="largest")

    h, w = 40, 60
    def proposal(y0, y1, x0, x1, stability=0.95):
        m = np.zeros((h, w), bool)
        m[y0:y1, x0:x1] = True
        return {"segmentation": m, "area": int(m.sum()), "stability_score": stability}
    background = proposal(0, 40, 0, 60)  # the whole frame: skipped (> max_area)
    centre = proposal(12, 28, 20, 40)
    corner_big = proposal(0, 18, 0, 26)  # larger, but far from the centre
    small_centre = proposal(18, 22, 28, 32)
    chosen = pick_subject([background, corner_big, small_centre, centre], (h, w))
    assert np.array_equal(chosen, centre["segmentation"])
    moving = corner_big["segmentation"]  # rule "motion": the proposal overlapping the moving region
    assert np.array_equal(pick_subject([centre, corner_big], (h, w), moving), moving)
    assert not pick_subject([background], (h, w)).any()


def test_load_sam_reads_weights_only_and_names_bad_files(sam, tmp_path, monkeypatch):
    import segment_anything

    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", lambda: tiny_sam(seed=5))
    good = tmp_path / "sam tiny.pth"
    torch.save(sam.state_dict(), good)
    loaded = load_sam("vit_b", good)
    for k, v in sam.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    wrong = tmp_path / "wrong.pth"
    torch.save({"image_encoder.pos_embed": torch.zeros(3)}, wrong)
    with pytest.raises(ValueError, match=r"wrong\.pth: not a Segment Anything vit_b checkpoint"):
        load_sam("vit_b", wrong)
    import functools
    evil = tmp_path / "evil.pth"
    torch.save({"x": functools.partial(print)}, evil)
    with pytest.raises(ValueError, match="weights_only"):
        load_sam("vit_b", evil)
    with pytest.raises(ValueError, match="unknown SAM model type"):
        load_sam("vit_x", good)
    sam_module._SAMS.clear()


def test_make_segmenter_choice():
    assert isinstance(make_segmenter(Settings()), MotionSegmenter)
    assert isinstance(make_segmenter(Settings(segmenter="motion", sam_checkpoint="x.pth")), MotionSegmenter)
    with pytest.raises(ValueError, match="needs sam_checkpoint"):
        make_segmenter(Settings(segmenter="sam"))
    from artify.weights import WeightsError
    with pytest.raises(WeightsError, match="missing.pth: weights file not found"):
        make_segmenter(Settings(sam_checkpoint="missing.pth"))


# ------------------------------------------------------------------------------------------- offline segmenter


def test_motion_segmenter_finds_the_square_moving_against_the_camera(moving_scene):
    frames, truth, flows = moving_scene
    masks = MotionSegmenter().segment(frames, flows)
    ious = [iou(m, t) for m, t in zip(masks, truth)]
    assert masks.shape == truth.shape and masks.dtype == np.float32
    assert np.mean(ious) > 0.85 and min(ious) > 0.7, ious


def test_motion_segmenter_every_nth_frame_propagates(moving_scene):
    frames, truth, flows = moving_scene
    masks = MotionSegmenter(every=3).segment(frames, flows)
    assert np.mean([iou(m, t) for m, t in zip(masks, truth)]) > 0.8


def test_still_scene_gives_an_empty_mask():
    frames = np.repeat(scene(n=1)[0], 3, axis=0)
    assert not MotionSegmenter().segment(frames).any()


# ------------------------------------------------------------------------------------------- stability


def test_stabilisation_reduces_flicker_and_follows_the_motion(moving_scene):
    frames, truth, flows = moving_scene
    rng = np.random.default_rng(3)
    import cv2
    noisy = []
    for t, m in enumerate(truth):  # edges that grow and shrink at random, plus speckles
        k = np.ones((5, 5), np.uint8)
        m = cv2.dilate(m, k) if rng.random() < 0.5 else cv2.erode(m, k)
        m[rng.random(m.shape) < 0.01] = 1
        noisy.append(m)
    noisy = np.stack(noisy).astype(np.float32)
    stable = stabilise_masks(noisy, flows, momentum=0.6)
    assert stable.dtype == np.float32 and stable.min() >= 0 and stable.max() <= 1
    floor = mask_flicker(truth, flows)  # the metric's own error (flow at the square's edges) on perfect masks
    assert mask_flicker(stable, flows) - floor < 0.6 * (mask_flicker(noisy, flows) - floor)
    assert np.mean([iou(s, t) for s, t in zip(stable, truth)]) >= np.mean([iou(s, t) for s, t in zip(noisy, truth)])
    np.testing.assert_array_equal(stabilise_masks(noisy, flows, 0.0), noisy)


def test_segment_frames_and_mask_files(moving_scene, tmp_path):
    frames, truth, _ = moving_scene
    masks = segment_frames(frames, Settings(segmenter="motion", mask_momentum=0.5))
    assert np.mean([iou(m, t) for m, t in zip(masks, truth)]) > 0.8
    save_masks(tmp_path / "m.npz", masks)
    back = load_masks(tmp_path / "m.npz")
    assert back.shape == masks.shape and np.abs(back - masks).max() <= 0.5 / 255 + 1e-6
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# ------------------------------------------------------------------------------------------- foreground share


def test_a_span_logs_each_chunks_foreground_share_and_warns_where_no_subject_was_found(tmp_path, capsys):
    """segmented with no subject styles the whole frame as background: the segment stage says so per chunk, and
    its table carries the shares into metrics.json."""
    from artify.media.chunks import chunk_frames_path, plan_chunks, write_chunks
    from artify.stages.segment import segment_span
    from artify.media.video import save_frames
    from artify.quality.evaluate import foreground_metrics

    clip = np.concatenate([scene(5)[0], scene(5, pan=0, speed=(0, 0), seed=1)[0]])  # a moving square, then still
    (tmp_path / "frames").mkdir()
    chunks = plan_chunks(len(clip), 5, 0)
    for c in chunks:
        save_frames(chunk_frames_path(tmp_path / "frames", c.chunk), clip[c.read_start:c.stop], c.stop - c.read_start)
    write_chunks(chunks, tmp_path / "chunks.tsv")
    segment_span(tmp_path / "frames", tmp_path / "chunks.tsv", 0, tmp_path / "masks", Settings(segmenter="motion"),
                 "cpu", foreground=tmp_path / "foreground.tsv")
    log = capsys.readouterr().out
    found = (load_masks(tmp_path / "masks" / "0000.npz") > 0.5).mean()
    assert found > 0.05 and f"chunk 0: foreground {100 * found:.1f} % of the pixels" in log
    assert "chunk 1: foreground 0.0 % of the pixels" in log and "warning: chunk 1: no subject found" in log
    assert "warning: chunk 0" not in log
    metrics = foreground_metrics([tmp_path / "foreground.tsv"])["foreground"]
    assert metrics["per_chunk"] == [pytest.approx(found, abs=1e-6), 0.0] and metrics["chunks_without_subject"] == [1]
    assert metrics["share"] == pytest.approx(found / 2, abs=1e-6)
    assert "warning: no subject found in chunks [1]" in capsys.readouterr().out


def test_masks_are_carried_along_the_jobs_flow_method(monkeypatch):
    """The segment stage carries and steadies its masks with the job's flow (`flow_method`), as the stylization
    does: it once always used DIS, whatever flow_method said."""
    import artify.flow as flow

    asked = []
    real_pairs = flow.FlowMethod.pairs

    def pairs(self, firsts, seconds):
        asked.append(self.method)
        return real_pairs(flow.DIS, firsts, seconds)  # DIS's answer: this test is about which flow is asked

    monkeypatch.setattr(flow.FlowMethod, "pairs", pairs)
    frames, _ = scene(n=4, h=48, w=80, square=16)
    segment_frames(frames, Settings(flow_method="raft", method="segmented"), "cpu")
    assert asked and set(asked) == {"raft"}
    asked.clear()
    segment_frames(frames, Settings(flow_method="auto", method="segmented"), "cpu")  # auto on a CPU: DIS
    assert asked and set(asked) == {"dis"}
