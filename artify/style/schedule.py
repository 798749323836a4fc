"""The style schedule: how much of each keyframe's style every frame of the target gets.

Each of the K keyframe styles owns a span of the target's timeline: proportional to the frames its scenes
last in the style source (the style video's pacing carries over), or equal. Around each boundary a
cross-fade of `transition_seconds` (clipped so neighbouring fades never overlap) lowers one style's weight
while the next one's rises, monotonically; outside fades one style has weight 1. Every row sums to 1.

With the content's cuts (`artify.style.cuts`, `sync_cuts`), each boundary moves to the nearest cut within
`sync_seconds` (`sync_boundaries`): the style changes with the shot, hard, because the cut is the
transition; boundaries with no cut near keep their cross-fades.

schedule.tsv (columns frame, w0..w{K-1}) is read through `StyleSchedule`, the one contract every
stylization method uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd

from artify.style.keyframes import read_keyframe_table
from artify.atomic import atomic_write_text



def plan_schedule(keyframes_tsv, n_frames: int, fps: Fraction | float | str, out_tsv, *, spread: str,
                  transition_seconds: float, curve: str, sync_seconds: float,
                  cuts: list[int] | None = None) -> pd.DataFrame:
    """Write and return the schedule (frame, w0..w{K-1}) of a target with n_frames frames at fps, with the
    plan_schedule stage's settings (schedule_spread, transition_seconds, transition_curve, sync_seconds:
    checked there). cuts: the content's cut frames; style boundaries within sync_seconds of one move onto it
    and switch hard."""
    if n_frames < 1:
        raise ValueError(f"need n_frames >= 1, got {n_frames}")
    fps = float(Fraction(fps)) if isinstance(fps, str) else float(fps)
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    keyframes = read_keyframe_table(keyframes_tsv)
    durations = keyframes.duration_frames.to_numpy(float) if spread == "proportional" \
        else np.ones(len(keyframes))
    bounds, hard = sync_boundaries(span_boundaries(durations, n_frames), cuts or [], sync_seconds * fps)
    weights = schedule_weights(bounds, n_frames, transition_seconds * fps, curve, hard)
    table = weights_table(weights)
    atomic_write_text(out_tsv, table.to_csv(sep="\t", index=False))
    return table


def span_boundaries(shares: np.ndarray, n_frames: int) -> np.ndarray:
    """Frame where each span starts and ends (K+1 values from 0 to n_frames), spans proportional to shares."""
    cumulative = np.concatenate([[0.0], np.cumsum(shares)]) / float(np.sum(shares))
    return np.round(cumulative * n_frames).astype(int)


def sync_boundaries(bounds: np.ndarray, cuts: list[int], distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Each inner boundary moved to the nearest cut at most `distance` frames away (the earlier of two as near),
    in order, so every span keeps at least one frame and no two boundaries share a cut. Returns the boundaries
    and, per inner boundary, whether it now lies on a cut (a hard switch)."""
    bounds = np.array(bounds, dtype=int)
    hard = np.zeros(max(len(bounds) - 2, 0), dtype=bool)
    cuts = np.array(sorted(cuts), dtype=int)
    for k in range(1, len(bounds) - 1):
        near = cuts[(cuts > bounds[k - 1]) & (cuts < bounds[k + 1]) & (np.abs(cuts - bounds[k]) <= distance)]
        if len(near):
            bounds[k] = near[np.argmin(np.abs(near - bounds[k]))]
            hard[k - 1] = True
    return bounds, hard


def schedule_weights(bounds: np.ndarray, n_frames: int, transition_frames: float, curve: str,
                     hard: np.ndarray | None = None) -> np.ndarray:
    """(n_frames, K) weights: one-hot inside spans, cross-faded over each boundary (but those `hard` says are
    on a cut: they switch at once), rows summing to 1.

    A fade centred on a boundary extends half its length into each side; it is clipped to half of an inner
    span (which fades at both ends) or all of the first or last span (one fade), so fades never overlap.
    Weights are taken at frame centres (f + 0.5), which makes a fade symmetric about its boundary.
    """
    n_styles = len(bounds) - 1
    lengths = np.diff(bounds).astype(float)
    room = lengths / 2
    room[[0, -1]] = lengths[[0, -1]]
    weights = np.zeros((n_frames, n_styles))
    owner = np.clip(np.searchsorted(bounds, np.arange(n_frames), side="right") - 1, 0, n_styles - 1)
    weights[np.arange(n_frames), owner] = 1.0
    centres = np.arange(n_frames) + 0.5
    for k in range(n_styles - 1):
        half = min(transition_frames / 2, room[k], room[k + 1])
        if half <= 0 or (hard is not None and hard[k]):
            continue
        inside = np.abs(centres - bounds[k + 1]) < half
        rising = fade_curve((centres[inside] - (bounds[k + 1] - half)) / (2 * half), curve)
        weights[inside] = 0.0
        weights[inside, k] = 1.0 - rising
        weights[inside, k + 1] = rising
    return weights / weights.sum(axis=1, keepdims=True)


def fade_curve(t: np.ndarray, curve: str) -> np.ndarray:
    """Rising weight for fade progress t in [0, 1]: linear, or cosine (eases in and out, no kink)."""
    t = np.clip(t, 0.0, 1.0)
    return t if curve == "linear" else (1.0 - np.cos(math.pi * t)) / 2.0


def weights_table(weights: np.ndarray) -> pd.DataFrame:
    table = pd.DataFrame(weights, columns=[f"w{k}" for k in range(weights.shape[1])])
    table.insert(0, "frame", np.arange(len(weights)))
    return table


@dataclass(frozen=True)
class StyleSchedule:
    """Per-frame style weights (num_frames, num_styles), rows summing to 1: what every method reads."""
    table: np.ndarray
    path: str = ""

    @classmethod
    def load(cls, path) -> "StyleSchedule":
        """Read schedule.tsv, checking frames are 0..n-1 in order and weights are finite and >= 0."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: schedule not found")
        table = pd.read_csv(path, sep="\t")
        style_columns = [c for c in table.columns if c != "frame"]
        expected = [f"w{k}" for k in range(len(style_columns))]
        if "frame" not in table.columns or not style_columns or style_columns != expected:
            raise ValueError(f"{path}: a schedule needs columns frame, w0..w(K-1); found {list(table.columns)}")
        if table.empty or not np.array_equal(table.frame.to_numpy(), np.arange(len(table))):
            raise ValueError(f"{path}: schedule frames must be 0, 1, ... without gaps")
        weights = table[expected].to_numpy(float)
        sums = weights.sum(axis=1)
        if not np.isfinite(weights).all() or (weights < 0).any() or (sums <= 0).any():
            raise ValueError(f"{path}: schedule weights must be finite, >= 0 and not all 0 in a row")
        return cls(weights / sums[:, None], str(path))

    @property
    def num_styles(self) -> int:
        return self.table.shape[1]

    @property
    def num_frames(self) -> int:
        return self.table.shape[0]

    def weights(self, frame: int) -> np.ndarray:
        """The K style weights of one target frame."""
        if not 0 <= frame < self.num_frames:
            raise IndexError(f"{self.path or 'schedule'}: frame {frame} outside 0..{self.num_frames - 1}")
        return self.table[frame].copy()

    def weights_range(self, start: int, stop: int) -> np.ndarray:
        """Weights (stop - start, K) of frames [start, stop), e.g. one chunk."""
        if not 0 <= start <= stop <= self.num_frames:
            raise IndexError(f"{self.path or 'schedule'}: frames [{start}, {stop}) outside 0..{self.num_frames}")
        return self.table[start:stop].copy()


def plot_schedule(schedule_tsv, out_png, fps: Fraction | float | str, cuts: list[int] | None = None) -> None:
    """Stacked areas of the style weights over the target's time: shows spans and cross-fades at a glance; the
    content's cuts (frames) as dashed lines."""
    from artify.figures import pyplot, save_figure  # here: matplotlib only for the plot

    plt = pyplot()

    schedule = StyleSchedule.load(schedule_tsv)
    seconds = np.arange(schedule.num_frames) / float(Fraction(fps) if isinstance(fps, str) else fps)
    fig, ax = plt.subplots(figsize=(8, 2.5), dpi=100)
    ax.stackplot(seconds, schedule.table.T, labels=[f"style {k}" for k in range(schedule.num_styles)],
                 step="post")
    rate = float(Fraction(fps) if isinstance(fps, str) else fps)
    for i, cut in enumerate(cuts or []):
        ax.axvline(cut / rate, color="black", linestyle="--", linewidth=1, label="content cut" if i == 0 else None)
    ax.set(xlabel="time (s)", ylabel="weight", ylim=(0, 1), xlim=(0, max(seconds[-1], 1e-9)))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.tight_layout()
    save_figure(fig, out_png)
