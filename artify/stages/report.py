"""The report stages (report.smk): a job's side-by-side video, contact sheet and per-frame plot; the
comparison page of the jobs on one content video; the blind A/B page and the tally of its answers."""
from __future__ import annotations

from pathlib import Path

from artify.media.video import VideoMeta
from artify.quality.assess import build_assessment, tally_text, write_tally
from artify.quality.compare import compare
from artify.quality.report import plot_per_frame, side_by_side, video_contact_sheet
from artify.settings import Settings


def run_side_by_side(content, stylized, meta_json, schedule_tsv, keyframes_tsv, keyframe_dir, out) -> int:
    """input | output | current style, with the schedule's weights as a bar -> mp4."""
    n = side_by_side(content, stylized, meta_json, schedule_tsv, keyframes_tsv, keyframe_dir, out)
    print(f"{n} frames -> {out}")
    return n


def run_contact_sheet(content, stylized, meta_json, out_png, settings: Settings) -> tuple[int, int]:
    """contact_frames evenly spaced frames, input above output -> PNG."""
    size = video_contact_sheet(content, stylized, meta_json, out_png, frames=settings.contact_frames)
    print(f"{size[0]}x{size[1]} -> {out_png}")
    return size


def run_plot_per_frame(per_frame_tsvs: dict, schedule_tsv, meta_json, out_png) -> None:
    """The jobs' per-frame warping error and style distance ({label: per-frame TSV}) over the schedule's
    weights, on the content's time axis -> PNG."""
    plot_per_frame(per_frame_tsvs, schedule_tsv, VideoMeta.load(meta_json).fps, out_png)


def run_compare(entries: list[dict], out_md, out_html, settings: Settings, **page) -> dict:
    """The comparison of the jobs on one content video -> Markdown (also printed) and one HTML page. entries:
    as the rule lists them, each job's metrics.json under "path"; page: `compare`'s title, content,
    meta_json, tally_json, assess_page and answers_dir."""
    entries = [dict(e) for e in entries]
    for e in entries:
        e["metrics"] = e.pop("path", e.get("metrics"))
    result = compare(entries, out_md, out_html, frames=settings.compare_frames, **page)
    print(Path(out_md).read_text())
    return result


def run_assess(content, videos: dict, meta_json, out_html, out_key, settings: Settings, key_archive=None) -> dict:
    """The blind pairwise (A/B) page of `videos` ({job: stylized.mp4}) on `content`, and its key."""
    key = build_assessment(content, videos, meta_json, out_html, out_key, key_archive=key_archive,
                           clips=settings.assess_clips, seconds=settings.assess_seconds)
    print(f"sheet {key['sheet']}: {len(key['segments'])} stretches x {len(videos)} jobs -> {out_html} "
          f"(key: {out_key})")
    return key


def run_tally(answer_csvs, key_paths, out_json) -> dict:
    """The win rates of the answers viewers saved from A/B pages -> tally.json (and a summary on stdout)."""
    result = write_tally(answer_csvs, key_paths, out_json)
    print(tally_text(result), end="")
    return result
