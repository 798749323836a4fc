"""The evaluation stages (evaluate.smk): a job's stage times from its benchmark files, its metrics, and the
deflicker baseline."""
from __future__ import annotations

import json

from artify.media.chunks import read_chunks
from artify.quality.baselines import deflicker_video
from artify.quality.cost import stage_times
from artify.settings import Settings


def run_stage_times(benchmark_files, chunks_tsv, out_tsv):
    """Seconds per frame and peak memory of each stage of a job (its frames: the plan's) -> TSV."""
    frames = read_chunks(chunks_tsv)[-1].stop
    table = stage_times(benchmark_files, frames, out_tsv)
    print(table.to_string(index=False))
    return table


def run_evaluate(stylized, content, meta_json, schedule_tsv, keyframes_tsv, keyframe_dir, out_json, per_frame_tsv,
                 settings: Settings, size: int, device: str, stage_times_tsv=None, foreground_tsvs=()) -> dict:
    """Warping error, style and content distance of a job's output -> metrics.json and per-frame TSV."""
    # imported here: the metrics load torch (about 2 s), which this module's light stages (stage_times, and
    # deflicker in the video environment, without torch) must not pay
    from artify.quality.evaluate import evaluate_job

    metrics = evaluate_job(content, stylized, meta_json, schedule_tsv, keyframes_tsv, keyframe_dir, out_json,
                           per_frame_tsv, size=size, device=device, stage_times_tsv=stage_times_tsv,
                           foreground_tsvs=foreground_tsvs, settings=settings)
    print(json.dumps(metrics, indent=2))
    return metrics


def run_deflicker(video, out, settings: Settings, crf: int) -> int:
    """The deflicker baseline: `video` through ffmpeg's deflicker filter -> H.264 `out`."""
    n = deflicker_video(video, out, size=settings.deflicker_size, mode=settings.deflicker_mode, crf=crf)
    print(f"{n} frames -> {out}")
    return n
