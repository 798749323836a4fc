"""The chunk driver: reads a chunk, dispatches to the method, retries a batched method after CUDA OOM."""

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from artify.media.chunks import plan_chunks, write_chunks
from artify.settings import Settings
from artify.stages.stylize import stylize_chunk
from artify.media.video import read_frames, save_frames


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
        batches.append(settings.batch_frames)
        if settings.batch_frames > 2:
            yield frames[0]
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        yield from (255 - f for f in frames)

    monkeypatch.setattr(arbitrary, "network_for", lambda settings, device, decoder=None: None)
    monkeypatch.setattr(arbitrary, "stylize_frames", fake_frames)
    run_chunk(chunk_inputs, Settings(method="arbitrary", batch_frames=8, temporal=False, device="cpu"))
    assert batches == [8, 4, 2]
    out = read_frames(chunk_inputs / "out.npy")
    assert np.array_equal(out, 255 - read_frames(chunk_inputs / "frames.npy"))


def test_temporal_chunk_without_flows_is_refused(chunk_inputs):
    with pytest.raises(ValueError, match="flow file"):
        run_chunk(chunk_inputs, Settings(device="cpu"))
    assert not (chunk_inputs / "out.npy").exists()


def _nan_from_call(n):
    """A stand-in for gatys.optimise whose n-th call (from 0) gives a NaN picture: a diverged frame."""
    calls = [0]

    def optimise(model, image, *args, **kwargs):
        calls[0] += 1
        out = image.detach().clone()
        if calls[0] - 1 == n:
            out[..., 0, 0] = float("nan")
        return out, 1

    return optimise


def _masks_for(method, d) -> dict:
    """The masks argument a chunk of `method` needs: a box of foreground for segmented."""
    from artify.masks.segment import save_masks

    if method != "segmented":
        return {}
    masks = np.zeros((6, 16, 24), np.float32)
    masks[:, 4:12, 6:18] = 1
    save_masks(d / "masks.npz", masks)
    return {"masks": d / "masks.npz"}


@pytest.mark.parametrize("method", ["gatys", "segmented"])
def test_a_method_without_batches_is_not_retried_after_out_of_memory(chunk_inputs, monkeypatch, method):
    """gatys and segmented optimise a frame at a time: halving batch_frames, which they do not read, would only
    fail again (segmented was tried four times)."""
    import artify.methods.gatys as gatys
    from artify.devices import DeviceError

    calls = []

    def optimise(*args, **kwargs):
        calls.append(1)
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(gatys, "optimise", optimise)
    with pytest.raises(DeviceError, match=f"out of CPU memory stylizing chunk 0 at 24x16 with method {method}; "
                                          f"lower `size`"):
        run_chunk(chunk_inputs, Settings(method=method, temporal=False, device="cpu"), **_masks_for(method, chunk_inputs))
    assert len(calls) == 1
    assert not (chunk_inputs / "out.npy").exists()


# gatys optimises frame t in call t; segmented makes frame t's foreground in call 2t, its background in 2t + 1
@pytest.mark.parametrize("method, call", [("gatys", 2), ("segmented", 4), ("segmented", 5)])
def test_a_non_finite_frame_fails_the_chunk_naming_job_chunk_and_frame_and_leaves_no_file(
        chunk_inputs, monkeypatch, method, call):
    import artify.methods.gatys as gatys
    from artify.media.pixels import NonFiniteError

    settings = Settings(method=method, temporal=False, device="cpu", coarse_to_fine=False)
    monkeypatch.setattr(gatys, "optimise", _nan_from_call(call))
    with pytest.raises(NonFiniteError, match=r"job myjob, chunk 0, frame 2: non-finite"):
        run_chunk(chunk_inputs, settings, job="myjob", **_masks_for(method, chunk_inputs))
    assert not (chunk_inputs / "out.npy").exists()
    assert not list(chunk_inputs.glob(".tmp*"))


def test_the_arbitrary_method_names_the_frame_of_a_non_finite_batch(chunk_inputs, monkeypatch):
    from artify.methods.magenta import MagentaNet
    from artify.media.pixels import NonFiniteError

    real = MagentaNet.forward

    def forward(self, frames, style, steady=None):  # frame 4 of the chunk (the second batch's second) goes NaN
        out = real(self, frames, style, steady).clone()
        if len(frames) == 3 and forward.calls == 1:
            out[1] = float("nan")
        forward.calls += 1
        return out
    forward.calls = 0

    monkeypatch.setattr(MagentaNet, "forward", forward)
    settings = Settings(method="arbitrary", batch_frames=3, temporal=False, device="cpu", precision="float32")
    with pytest.raises(NonFiniteError, match=r"job myjob, chunk 0, frame 4: the network's output is non-finite"):
        run_chunk(chunk_inputs, settings, job="myjob")
    assert not (chunk_inputs / "out.npy").exists()


def test_the_command_line_reports_a_non_finite_frame_in_one_line(chunk_inputs, monkeypatch, capsys):
    import artify.methods.gatys as gatys
    from artify.cli import main

    monkeypatch.setattr(gatys, "optimise", _nan_from_call(4))
    d = chunk_inputs
    code = main(["stylize-chunk", str(d / "frames.npy"), "--chunks", str(d / "chunks.tsv"), "--chunk", "0",
                 "--job", "demo", "--schedule", str(d / "schedule.tsv"), "--keyframes", str(d / "keyframes.tsv"),
                 "--keyframe-dir", str(d / "kf"), "--temporal", "false", "--device", "cpu",
                 "--coarse-to-fine", "false", "-o", str(d / "out.npy")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("artify")]  # not the progress bar
    assert code == 2 and len(err) == 1 and "job demo, chunk 0, frame 4" in err[0], err
    assert not (d / "out.npy").exists()
