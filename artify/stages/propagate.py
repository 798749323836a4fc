"""Method propagate's two stages: propagate_keyframes (rule propagate_keyframes: the job's shots, their keyframes
picked and stylized, `artify.methods.propagate.shot_keyframes`, the keyframes table last) and train_propagate
(rule train_propagate: one network trained per shot of that table, `artify.methods.propagate.train_shots`, the
shots table last). Two rules, so each has its own cost in metrics.json and its own settings: a change to a
training setting reruns the training alone. The frames are read one shot at a time from the span folders
(`job_frames`): a feature film's frames never have to fit in memory together."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from artify.devices import pick_device, set_threads
from artify.flow import flow_method
from artify.media.chunks import read_chunks
from artify.media.spans import chunk_path
from artify.media.video import read_frames
from artify.methods.propagate import (read_shot_keyframes, shot_keyframes, train_shots, write_shot_keyframes,
                                      write_shots)
from artify.settings import Settings
from artify.style.cuts import load_cuts, shot_starts, shots
from artify.style.keyframes import load_keyframe_images
from artify.style.schedule import StyleSchedule


def job_frames(frames_dirs, chunks_tsv) -> tuple[int, Callable[[int, int], np.ndarray]]:
    """The job's number of frames, and a reader of its frames [start, stop) from the extracted span folders:
    each chunk's core frames, the overlap it was read with skipped, only from the chunks that hold them."""
    folders = {int(Path(f).name): Path(f) for f in frames_dirs}
    plan = read_chunks(chunks_tsv)
    for c in plan:  # refused before any work, not at the shot that needs it
        if c.span not in folders:
            raise ValueError(f"{chunks_tsv}: chunk {c.chunk} is in span {c.span}, whose frames were not given")

    n = plan[-1].stop

    def read(start: int, stop: int) -> np.ndarray:
        if not 0 <= start < stop <= n:
            raise ValueError(f"{chunks_tsv}: frames [{start}, {stop}) asked for; the job has [0, {n})")
        return np.concatenate([read_frames(chunk_path(folders[c.span], c.chunk, ".npy"),
                                           max(start, c.start) - c.read_start, min(stop, c.stop) - max(start, c.start))
                               for c in plan if c.start < stop and start < c.stop])

    return n, read


def run_propagate_keyframes(frames_dirs, chunks_tsv, cuts_tsv, schedule_tsv, keyframes_tsv, keyframe_dir, out_tsv,
                            settings: Settings, threads: int | None = None, decoder=None) -> list[dict]:
    """The `propagate_keyframes` stage: the job's shots (cuts.tsv), their keyframes picked and stylized into the
    folder of `out_tsv` (cached there, see `shot_keyframes`), and the keyframes table written last."""
    set_threads(threads)
    device = pick_device(settings.device)
    n, frames_of = job_frames(frames_dirs, chunks_tsv)
    ranges = shots(shot_starts(load_cuts(cuts_tsv), 0, n), n)
    weights = StyleSchedule.load(schedule_tsv).weights_range(0, n)
    styles = load_keyframe_images(keyframes_tsv, keyframe_dir, settings.style_size)
    print(f"{n} frames, {len(ranges)} shots; device {device}", flush=True)
    rows = shot_keyframes(frames_of, ranges, weights, styles, Path(out_tsv).parent, settings, device,
                          _keyframe_flow(settings, device), decoder)
    write_shot_keyframes(rows, out_tsv)
    return rows


def run_train_propagate(frames_dirs, chunks_tsv, shot_keyframes_tsv, out_tsv, settings: Settings,
                        threads: int | None = None) -> list[dict]:
    """The `train_propagate` stage: a network trained per shot of the keyframes table (`propagate_keyframes`'
    output, its keyframe files beside it) into the folder of `out_tsv` (cached there, see `train_shots`), and
    the shots table written last."""
    set_threads(threads)
    device = pick_device(settings.device)
    n, frames_of = job_frames(frames_dirs, chunks_tsv)
    keyframes = read_shot_keyframes(shot_keyframes_tsv)
    print(f"{n} frames, {len(keyframes)} shots; device {device}", flush=True)
    rows = train_shots(frames_of, keyframes, Path(shot_keyframes_tsv).parent, Path(out_tsv).parent, settings,
                       device, _keyframe_flow(settings, device))
    write_shots(rows, out_tsv)
    return rows


def _keyframe_flow(settings: Settings, device):
    """The flow both stages follow (keyframes, guides): flow_method auto picks the keyframe method's."""
    return flow_method(replace(settings, method=settings.propagate_keyframe_method), str(device))
