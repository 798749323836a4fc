"""The chunk driver: reads a chunk, dispatches to the method, retries a batched method after CUDA OOM."""

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from artify.chunks import plan_chunks, write_chunks
from artify.settings import defaults
from artify.stylize import stylize_chunk
from artify.video import read_frames, save_frames


@pytest.fixture
def chunk_inputs(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (6, 16, 24, 3), dtype=np.uint8)
    save_frames(tmp_path / "frames.npy", frames, len(frames))
    write_chunks(plan_chunks(6, 6, 1), tmp_path / "chunks.tsv")
    pd.DataFrame({"frame": range(6), "w0": 1.0}).to_csv(tmp_path / "schedule.tsv", sep="\t", index=False)
    (tmp_path / "kf").mkdir()
    cv2.imwrite(str(tmp_path / "kf" / "k.png"), frames[0])
    pd.DataFrame({"keyframe": [0], "file": ["k.png"]}).to_csv(tmp_path / "keyframes.tsv", sep="\t", index=False)
    return tmp_path


def run_chunk(d, settings, **kwargs):
    stylize_chunk(d / "frames.npy", d / "chunks.tsv", 0, d / "schedule.tsv", d / "keyframes.tsv", d / "kf",
                  d / "out.npy", settings, **kwargs)


def test_batched_method_retries_with_half_the_batch_after_out_of_memory(chunk_inputs, monkeypatch):
    import artify.methods.arbitrary as arbitrary

    batches = []

    def fake_frames(model, frames, weights, keyframes, settings, device, **kwargs):
        batches.append(settings["batch_frames"])
        if settings["batch_frames"] > 2:
            yield frames[0]
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        yield from (255 - f for f in frames)

    monkeypatch.setattr(arbitrary, "network_for", lambda settings, device, decoder=None: None)
    monkeypatch.setattr(arbitrary, "stylize_frames", fake_frames)
    run_chunk(chunk_inputs, defaults() | {"method": "arbitrary", "batch_frames": 8, "temporal": False,
                                          "device": "cpu"})
    assert batches == [8, 4, 2]
    out = read_frames(chunk_inputs / "out.npy")
    assert np.array_equal(out, 255 - read_frames(chunk_inputs / "frames.npy"))


def test_temporal_chunk_without_flows_is_refused(chunk_inputs):
    with pytest.raises(ValueError, match="flow file"):
        run_chunk(chunk_inputs, defaults() | {"device": "cpu"})
    assert not (chunk_inputs / "out.npy").exists()
