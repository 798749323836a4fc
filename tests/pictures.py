"""One check that an output is made of real stylized pictures, for every test that makes frames.

The last round shipped a demo whose frames 24-71 were black while every test passed: counts, means and
"the file exists" do not see a broken picture. This looks at every frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def assert_real_pictures(output, inputs, keyframes, weights, what: str = "output") -> None:
    """Every frame of `output` (N, H, W, 3) uint8 is a real stylized picture of the same frame of `inputs`:
    not flat and not black where the input frame is not (`artify.quality.evaluate.blank_frames`), and nearer in style
    (Gram distance, measured as the evaluate stage does) to its scheduled target (`keyframes` mixed by the
    schedule rows `weights` (N, K)) than the input frame itself is."""
    from artify.quality.evaluate import blank_frames, frame_ranges, scaled_keyframe_grams, style_distance_per_frame
    from artify.features import mix_grams

    output, inputs = np.asarray(output), np.asarray(inputs)
    assert output.dtype == np.uint8 and output.ndim == 4 and output.shape[3] == 3, (what, output.dtype, output.shape)
    assert output.shape == inputs.shape, f"{what}: {output.shape} frames for inputs of {inputs.shape}"
    blank = np.flatnonzero(blank_frames(output, inputs))
    assert not len(blank), f"{what}: blank frames {frame_ranges(blank)} of {len(output)}"
    weights = np.asarray(weights, np.float64).reshape(len(output), -1)
    grams = scaled_keyframe_grams(keyframes, size=output.shape[1:3])
    targets = [mix_grams(grams, w) for w in weights]
    ours, theirs = style_distance_per_frame(output, targets), style_distance_per_frame(inputs, targets)
    worse = np.flatnonzero(~(ours < theirs))  # NaN counts as worse
    assert not len(worse), (f"{what}: frames {frame_ranges(worse)} are no nearer the style than their input "
                            f"(ours {ours[worse][:5]}, input {theirs[worse][:5]})")


def assert_job_stylized(workdir, job: str) -> np.ndarray:
    """`assert_real_pictures` on a pipeline job's results/{job}/stylized.mp4 against its content (decoded at the
    processing size), its keyframes and its schedule, as the pipeline wrote them. Returns the frames."""
    import pandas as pd

    from artify.style.schedule import StyleSchedule
    from artify.media.video import VideoMeta, load_image, read_frames

    results = Path(workdir) / "results" / job
    output = read_frames(results / "stylized.mp4")
    meta = VideoMeta.load(results / "meta.json")
    inputs = read_frames(meta.path if Path(meta.path).is_absolute() else Path(workdir) / meta.path, 0, len(output),
                         size=(output.shape[2], output.shape[1]))
    table = pd.read_csv(results / "keyframes.tsv", sep="\t")
    keyframes = [load_image(results / "keyframes" / name) for name in table["file"]]
    weights = StyleSchedule.load(results / "schedule.tsv").weights_range(0, len(output))
    assert_real_pictures(output, inputs, keyframes, weights, what=f"{job}: stylized.mp4")
    return output
