"""The flow stage (rule flow_chunk): a span's chunks of frames -> their backward flows and reliable-pixel masks.

Light on purpose: with DIS (the flow the CPU methods use) the stage imports neither torch nor a GPU library;
RAFT's torch comes with `artify.raft` when it is chosen.
"""
from __future__ import annotations

from pathlib import Path

import cv2

from artify.devices import auto_device
from artify.flow import backward_flows, flow_method, save_flows
from artify.media.spans import chunk_path, key_of, run_span, settings_key, stage_chunks
from artify.media.video import read_frames
from artify.settings import Settings


def flow_chunk(frames_video, out, settings: Settings, threads: int | None = None) -> None:
    """Backward flows and reliable-pixel masks of one chunk's frames (`backward_flows` at offset 1 and the
    `long_term` offsets), for the temporal terms, with the flow the settings choose (`flow_method`)."""
    flow = flow_method(settings, auto_device(settings.device))
    if threads:
        cv2.setNumThreads(threads)
        if flow.method == "raft":
            import torch  # only here: DIS runs without torch (about 2 s of CPU to import)

            torch.set_num_threads(threads)
    offsets = [1] + [int(k) for k in settings.long_term.split(",") if k]
    frames = read_frames(frames_video)
    save_flows(out, backward_flows(frames, sorted(set(offsets)), flow))


def flow_span(frames_dir, chunks_tsv, span: int, out_dir, settings: Settings, threads: int | None = None):
    """`flow_chunk` for every chunk of a span: frames_dir/NNNN.npy -> out_dir/NNNN.npz."""

    def make(c, _, path):
        flow_chunk(chunk_path(frames_dir, c.chunk, ".npy"), path, settings, threads)

    chunks = stage_chunks(chunks_tsv, span, out_dir, "flow-span")
    shared = settings_key(settings, "flow_chunk")
    return run_span(chunks, out_dir, ".npz", make,
                    lambda c, _: key_of(shared, Path(chunk_path(frames_dir, c.chunk, ".npy"))), "flow-span")
