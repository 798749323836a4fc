"""The style schedule: spans, cross-fades, rows summing to 1, and the StyleSchedule contract."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artify.settings import Settings
from artify.style.schedule import StyleSchedule, plan_schedule, plot_schedule


def keyframes_tsv(path, durations: list[int]):
    """A keyframes table as select_keyframes writes it, with the given duration_frames."""
    k = len(durations)
    pd.DataFrame({"keyframe": range(k), "file": [f"keyframe_{i:03d}.png" for i in range(k)],
                  "source_frame": range(k), "time": 0.0, "scene": range(k), "scenes": [str(i) for i in range(k)],
                  "duration_frames": durations, "distance_to_next": [0.5] * (k - 1) + [np.nan]}
                 ).to_csv(path, sep="\t", index=False)
    return path


_S = Settings()
# The plan_schedule stage's settings at their defaults, as plan_schedule takes them
SCHEDULE = {"spread": _S.schedule_spread, "transition_seconds": _S.transition_seconds, "curve": _S.transition_curve,
            "sync_seconds": _S.sync_seconds}


def weights_of(tmp_path, durations, n_frames, fps=24, **kwargs) -> np.ndarray:
    table = plan_schedule(keyframes_tsv(tmp_path / "k.tsv", durations), n_frames, fps, tmp_path / "s.tsv",
                          **SCHEDULE | kwargs)
    assert table.columns.tolist() == ["frame"] + [f"w{i}" for i in range(len(durations))]
    assert table.frame.tolist() == list(range(n_frames))
    return table.iloc[:, 1:].to_numpy()


def test_one_style_is_all_ones(tmp_path):
    w = weights_of(tmp_path, [50], 30)
    assert w.shape == (30, 1) and (w == 1.0).all()


@pytest.mark.parametrize("curve", ["cosine", "linear"])
@pytest.mark.parametrize("spread", ["proportional", "equal"])
def test_rows_sum_to_one_and_fades_are_monotone(tmp_path, spread, curve):
    w = weights_of(tmp_path, [100, 20, 60, 40], 240, spread=spread, curve=curve, transition_seconds=1.0)
    assert np.abs(w.sum(axis=1) - 1).max() < 1e-12
    assert (w >= 0).all()
    for k in range(w.shape[1]):  # each style rises (once), then falls (once): unimodal
        peak = int(np.argmax(w[:, k]))
        assert (np.diff(w[: peak + 1, k]) >= 0).all() and (np.diff(w[peak:, k]) <= 0).all()
    for row in w:  # at most two neighbouring styles at a time
        active = np.flatnonzero(row > 0)
        assert len(active) <= 2 and (len(active) < 2 or active[1] == active[0] + 1)


def test_proportional_and_equal_spreads(tmp_path):
    no_fade = {"transition_seconds": 0.0}
    proportional = weights_of(tmp_path, [100, 300], 400, spread="proportional", **no_fade)
    assert proportional.argmax(axis=1).tolist() == [0] * 100 + [1] * 300
    equal = weights_of(tmp_path, [100, 300], 400, spread="equal", **no_fade)
    assert equal.argmax(axis=1).tolist() == [0] * 200 + [1] * 200
    assert set(np.unique(equal)) == {0.0, 1.0}


def test_cross_fade_has_the_requested_length_and_shape(tmp_path):
    w = weights_of(tmp_path, [1, 1], 96, fps=Fraction(24), transition_seconds=1.0, curve="linear")
    fading = np.flatnonzero((w[:, 0] > 0) & (w[:, 0] < 1))
    assert fading.tolist() == list(range(36, 60))  # 1 s = 24 frames centred on the boundary at 48
    assert w[47, 1] + w[48, 1] == pytest.approx(1.0)  # symmetric about the boundary
    assert np.diff(w[36:60, 1]) == pytest.approx(np.full(23, 1 / 24))  # linear: constant steps
    cosine = weights_of(tmp_path, [1, 1], 96, transition_seconds=1.0, curve="cosine")
    assert cosine[36, 1] < w[36, 1] and cosine[59, 1] > w[59, 1]  # eases in and out


def test_long_transitions_are_clipped_to_the_spans(tmp_path):
    w = weights_of(tmp_path, [1, 1, 1], 60, transition_seconds=10.0)
    assert w[30, 1] == pytest.approx(1.0, abs=0.02)  # the middle style still reaches (almost) full weight
    assert w[0, 0] == pytest.approx(1.0, abs=0.02) and w[-1, 2] == pytest.approx(1.0, abs=0.02)
    more_styles_than_frames = weights_of(tmp_path, [1] * 5, 3, transition_seconds=1.0)
    assert np.abs(more_styles_than_frames.sum(axis=1) - 1).max() < 1e-12


def test_fps_as_fraction_string(tmp_path):
    w = weights_of(tmp_path, [1, 1], 120, fps="24000/1001", transition_seconds=0.5)
    assert ((w[:, 0] > 0) & (w[:, 0] < 1)).sum() == 12


def test_style_schedule_contract(tmp_path):
    weights_of(tmp_path, [2, 1, 1], 48)
    schedule = StyleSchedule.load(tmp_path / "s.tsv")
    assert (schedule.num_styles, schedule.num_frames) == (3, 48)
    assert schedule.weights(0).tolist() == [1.0, 0.0, 0.0]
    assert schedule.weights(47).tolist() == [0.0, 0.0, 1.0]
    chunk = schedule.weights_range(10, 34)
    assert chunk.shape == (24, 3) and np.allclose(chunk.sum(axis=1), 1.0)
    assert np.array_equal(chunk[5], schedule.weights(15))
    with pytest.raises(IndexError, match="s.tsv"):
        schedule.weights(48)
    with pytest.raises(IndexError):
        schedule.weights_range(40, 60)


def test_bad_inputs_raise_clear_errors(tmp_path):
    keyframes = keyframes_tsv(tmp_path / "k.tsv", [1, 1])
    with pytest.raises(ValueError, match="n_frames"):
        plan_schedule(keyframes, 0, 24, tmp_path / "s.tsv", **SCHEDULE)
    with pytest.raises(ValueError, match="nowhere.tsv"):
        plan_schedule(tmp_path / "nowhere.tsv", 10, 24, tmp_path / "s.tsv", **SCHEDULE)
    (tmp_path / "gaps.tsv").write_text("frame\tw0\n0\t1\n2\t1\n")
    with pytest.raises(ValueError, match="gaps.tsv"):
        StyleSchedule.load(tmp_path / "gaps.tsv")
    (tmp_path / "columns.tsv").write_text("frame\tstyle\n0\t1\n")
    with pytest.raises(ValueError, match="columns.tsv"):
        StyleSchedule.load(tmp_path / "columns.tsv")
    assert not (tmp_path / "s.tsv").exists()


def test_plot_is_a_png(tmp_path):
    weights_of(tmp_path, [3, 1, 2], 120)
    plot_schedule(tmp_path / "s.tsv", tmp_path / "plots" / "schedule.png", Fraction(24))
    with Image.open(tmp_path / "plots" / "schedule.png") as image:
        assert image.format == "PNG" and image.size[0] > 300
