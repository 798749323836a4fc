"""Scene detection on the labelled set of bench.scenes (made from ../shared/data with ffmpeg): the
defaults find every hard cut and split no negative, the hash confirmation drops only spurious cuts, the old
one-clip default missed cuts, the scoring counts what it should, and keyframe merging folds the detector's
own spurious splits back together."""
from __future__ import annotations

import pytest

from bench.scenes import FPS, LabelledClip, build_scene_set, merge_check, score
from artify.style.scenes import (DEFAULT_THRESHOLDS, confirm_cuts, detect_cuts, detection_frames,
                           video_cuts)
from tests.conftest import SHARED_DATA, require_shared
from tests.test_scenes import DETECTION


@pytest.fixture(scope="module")
def scene_set(tmp_path_factory):
    require_shared("videos")
    require_shared("styles")
    return build_scene_set(tmp_path_factory.mktemp("scene_set"), SHARED_DATA)


@pytest.fixture(scope="module")
def detections(scene_set):
    """Per clip, the default detector's own cuts and the frames' hashes (what video_cuts confirms)."""
    return {c.name: detect_cuts(detection_frames(c.path), FPS, DETECTION["detector"], None,
                                DETECTION["min_scene_frames"]) for c in scene_set}


@pytest.fixture(scope="module")
def found_alone(detections):
    return {name: cuts for name, (cuts, _) in detections.items()}


@pytest.fixture(scope="module")
def found_by_default(detections):
    return {name: confirm_cuts(cuts, hashes, DETECTION["min_scene_frames"], DETECTION["min_change"])
            for name, (cuts, hashes) in detections.items()}


def test_video_cuts_is_the_confirmed_detection(scene_set, found_by_default):
    clip = next(c for c in scene_set if c.name == "flashes")
    assert video_cuts(clip.path, **DETECTION) == found_by_default[clip.name] == []


def test_the_set_has_cuts_dissolves_and_negatives(scene_set):
    assert len(scene_set) >= 20
    assert sum(len(c.cuts) for c in scene_set) >= 30 and sum(len(c.dissolves) for c in scene_set) >= 3
    events = {what for c in scene_set for what, _, _ in c.events}
    for kind in ("fade in from black", "fade out to black", "fast pan", "flash, 1 frame", "camera shake",
                 "dip to black and back"):
        assert kind in events
    for c in scene_set:  # labels inside the clip, cuts ordered and at least a shortest scene apart
        assert all(0 < x < c.frames for x in c.cuts) and all(b - a >= 15 for a, b in zip(c.cuts, c.cuts[1:]))


def test_defaults_find_every_hard_cut_and_split_no_negative(scene_set, found_by_default):
    assert (DETECTION["detector"], DEFAULT_THRESHOLDS["adaptive"], DETECTION["min_change"]) == ("adaptive", 2.0, 0.3)
    result = score(scene_set, found_by_default)
    assert result["recall_cuts"] == 1.0
    assert result["recall_dissolves"] >= 2 / 3
    assert result["false"] == 0 and result["events_split"] == 0


def test_confirmation_drops_only_spurious_cuts(scene_set, found_alone, found_by_default):
    alone, confirmed = score(scene_set, found_alone), score(scene_set, found_by_default)
    assert alone["false"] > 0  # flashes and a fade-in split the shot without it
    for recall in ("recall_cuts", "recall_dissolves"):
        assert alone[recall] == confirmed[recall]


def test_the_old_one_clip_default_misses_cuts_in_motion(scene_set):
    found = {c.name: video_cuts(c.path, "adaptive", 8.0, DETECTION["min_scene_frames"], 0) for c in scene_set}
    result = score(scene_set, found)
    assert result["recall_cuts"] < 0.9 and result["recall_dissolves"] == 0
    missed = [c.name for c in scene_set if any(all(abs(f - x) > 2 for f in found[c.name]) for x in c.cuts)]
    assert "cuts in fast motion" in missed


def test_scoring():
    clip = LabelledClip("c", "c.mp4", 200, 3, cuts=[50, 100], dissolves=[(140, 156)],
                        events=[("flash", 20, 22), ("pan", 60, 90)])
    perfect = score([clip], {"c": [51, 99, 150]})
    assert (perfect["recall"], perfect["precision"], perfect["false"], perfect["events_split"]) == (1, 1, 0, 0)
    assert score([clip], {"c": [53, 158]})["recall_cuts"] == 0  # 3 frames off is a miss
    assert score([clip], {"c": [158]})["recall_dissolves"] == 1  # within 2 frames of the dissolve's end
    sloppy = score([clip], {"c": [21, 50, 75, 100]})
    assert (sloppy["recall_cuts"], sloppy["false"], sloppy["events_split"], sloppy["precision"]) == (1, 2, 2, 0.5)
    twice = score([clip], {"c": [50, 51]})  # one true cut takes one detection
    assert twice["recall_cuts"] == 0.5 and twice["false"] == 1


def test_keyframe_merging_folds_spurious_splits(scene_set, found_alone, tmp_path):
    """Every clip of one shot that the detector alone splits ends with one keyframe after merging; a slide
    show's paintings keep one each."""
    split = [c for c in scene_set if c.shots == 1 and found_alone[c.name]]
    assert split
    slides = [c for c in scene_set if c.name == "slide show"]
    table = merge_check(split + slides, "adaptive", DEFAULT_THRESHOLDS["adaptive"], tmp_path, min_change=0)
    assert (table.scenes.iloc[:-1] > 1).all() and (table.keyframes.iloc[:-1] == 1).all(), table
    assert table.keyframes.iloc[-1] == slides[0].shots == 6
