"""Baselines the result has to beat: the per-frame output (a job with `temporal: false`, made by the normal
stages) and that output through ffmpeg's `deflicker` filter, made here."""
from __future__ import annotations

import os
from pathlib import Path

from artify.atomic import atomic_path
from artify.media.video import MediaError, probe, run_ffmpeg
from artify.settings import ConfigError

def deflicker_video(video, out, *, size: int, mode: str, crf: int) -> int:
    """`video` through ffmpeg's deflicker filter (brightness averaged over `size` frames, `mode` its mean: the
    settings deflicker_size and deflicker_mode, checked there) -> H.264 `out` at quality `crf`, the audio
    copied, every frame kept. Returns the number of frames."""
    meta = probe(video)
    args = ["-hide_banner", "-nostdin", "-y", "-i", str(video), "-map", "0:v:0"]
    if meta.audio:
        args += ["-map", "0:a:0", "-c:a", "copy"]
    with atomic_path(out) as tmp:
        args += ["-vf", f"deflicker=size={size}:mode={mode}", "-fps_mode", "passthrough", "-c:v", "libx264",
                 "-crf", str(crf), "-preset", "medium", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp)]
        run_ffmpeg(args, video)
        got = probe(tmp).frames
        if got != meta.frames:
            raise MediaError(f"{video}: deflicker gave {got} frames, the video has {meta.frames}")
    return meta.frames


SUFFIXES = (".perframe", ".deflicker")


def add_baselines(jobs: dict[str, dict]) -> tuple[dict[str, dict], dict[str, dict], dict[str, str]]:
    """The jobs with each `baselines: true` job's baselines added, for the workflow.

    Returns (jobs, baselines, deflickered): jobs gains `{job}.perframe` (the same settings, temporal: false,
    run by the normal stages; the job itself when it is already per-frame); baselines maps a job to
    {"perframe": name, "deflicker": name}; deflickered maps each `{job}.deflicker` (made by the deflicker rule
    from the per-frame output, not a stylization job) to that per-frame job. Names ending in .perframe or
    .deflicker are reserved: a jobs-table row using one is an error.
    """
    for name in jobs:
        if name.endswith(SUFFIXES):
            raise ConfigError(f"job '{name}': names ending in {' or '.join(SUFFIXES)} are reserved for baselines")
    out, baselines, deflickered = dict(jobs), {}, {}
    for name, settings in jobs.items():
        if not settings["baselines"]:  # job dicts from artify.config.load_jobs hold every key
            continue
        perframe = name
        if settings["temporal"]:
            perframe = name + ".perframe"
            out[perframe] = dict(settings, temporal=False, baselines=False)
        deflickered[name + ".deflicker"] = perframe
        baselines[name] = {"perframe": perframe, "deflicker": name + ".deflicker"}
    return out, baselines, deflickered


def comparison_groups(jobs: dict[str, dict], deflickered: dict[str, str]) -> dict[str, list[str]]:
    """Every evaluated job (jobs and deflickered), grouped by content video: {name: [job, ...]}.

    The name is the content file's stem (characters other than letters, digits, _ . - replaced by _),
    made unique with -2, -3, ... when two different videos share a stem.
    """
    import re

    by_content: dict[str, list[str]] = {}
    for name in [*jobs, *deflickered]:
        content = jobs[deflickered.get(name, name)]["content"]
        by_content.setdefault(os.path.normpath(os.path.abspath(content)), []).append(name)
    groups, used = {}, set()
    for content, members in by_content.items():
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(content).stem) or "content"
        name, i = stem, 1
        while name in used:
            i += 1
            name = f"{stem}-{i}"
        used.add(name)
        groups[name] = members
    return groups
