"""The style stages (style.smk, and detect_cuts of video.smk: the same detection): the style video's scenes,
the content's cuts, the keyframes, the style schedule."""
from __future__ import annotations

from fractions import Fraction

from artify.media.video import VideoMeta
from artify.settings import Settings
from artify.style.cuts import detect_content_cuts, load_cuts
from artify.style.keyframes import contact_sheet, select_keyframes
from artify.style.scenes import detect_scenes
from artify.style.schedule import plan_schedule, plot_schedule


def run_detect_scenes(style, out_tsv, settings: Settings) -> list:
    """The style video's (or image folder's) scenes -> scenes.tsv."""
    scenes = detect_scenes(style, out_tsv, detector=settings.scene_detector, threshold=settings.scene_threshold,
                           min_scene_frames=settings.min_scene_frames, min_change=settings.scene_min_change)
    print(f"{len(scenes)} scenes")
    return scenes


def run_detect_cuts(video, meta_json, out_tsv, settings: Settings) -> list[int]:
    """The content's cuts (where its shots start), in the pipeline's frame numbers -> cuts.tsv."""
    cuts = detect_content_cuts(video, meta_json, out_tsv, detector=settings.cut_detector,
                               threshold=settings.cut_threshold, min_shot_frames=settings.min_shot_frames,
                               min_change=settings.cut_min_change, max_frames=settings.max_frames)
    print(f"{len(cuts)} cuts: {cuts}")
    return cuts


def run_select_keyframes(style, scenes_tsv, out_dir, out_tsv, settings: Settings, sheet=None):
    """One representative frame per distinct style -> keyframes.tsv and out_dir; a contact sheet of them to
    `sheet` when given."""
    keyframes = select_keyframes(style, scenes_tsv, out_dir, out_tsv, samples_per_scene=settings.keyframe_samples,
                                 blur_threshold=settings.blur_threshold, merge_threshold=settings.merge_threshold,
                                 max_keyframes=settings.max_keyframes)
    if sheet:
        contact_sheet(out_tsv, out_dir, sheet)
    print(f"{len(keyframes)} keyframes")
    return keyframes


def run_plan_schedule(keyframes_tsv, meta_json, out_tsv, settings: Settings, cuts_tsv=None, plot=None) -> None:
    """Per-frame style weights over the job's frames, cross-faded, boundaries synced to the content's cuts
    when sync_cuts -> schedule.tsv; a plot of them to `plot` when given."""
    meta = VideoMeta.load(meta_json)
    n = min(meta.frames, settings.max_frames) if settings.max_frames else meta.frames
    cuts = load_cuts(cuts_tsv) if cuts_tsv else []
    fps = float(Fraction(meta.fps))
    plan_schedule(keyframes_tsv, n, fps, out_tsv, spread=settings.schedule_spread,
                  transition_seconds=settings.transition_seconds, curve=settings.transition_curve,
                  cuts=cuts if settings.sync_cuts else [], sync_seconds=settings.sync_seconds)
    if plot:
        plot_schedule(out_tsv, plot, fps, [c for c in cuts if c < n])
