"""Join the stylized chunks into the final video: cross-fade overlaps, exact fps and count, original audio."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from artify.chunks import read_chunks
from artify.video import MP4_AUDIO, MediaError, VideoMeta, read_frames, write_frames_h264


def blend_overlap(previous_tail: np.ndarray, current_head: np.ndarray) -> np.ndarray:
    """Linear cross-fade from the previous chunk's frames to the current chunk's over the overlap."""
    n = len(current_head)
    alpha = (np.arange(1, n + 1, dtype=np.float32) / (n + 1))[:, None, None, None]
    mixed = (1 - alpha) * previous_tail.astype(np.float32) + alpha * current_head.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def assembled_frames(chunks_tsv, chunk_videos: list):
    """Yield the output frames in order, holding at most two chunks in memory.

    Chunk i's first `lead = start - read_start` frames show the same input frames as the previous chunk's
    last `lead` core frames; those are replaced by a cross-fade from the previous chunk to this one.
    """
    chunks = read_chunks(chunks_tsv)
    if len(chunks) != len(chunk_videos):
        raise ValueError(f"{chunks_tsv}: {len(chunks)} chunks planned but {len(chunk_videos)} stylized files given")
    held = None  # the previous chunk's core frames, not yet yielded
    for row, path in zip(chunks.itertuples(), chunk_videos):
        frames = read_frames(path)
        expected = row.stop - row.read_start
        if len(frames) != expected:
            raise MediaError(f"{path}: has {len(frames)} frames, chunk {row.chunk} needs {expected}")
        lead = row.start - row.read_start
        if held is not None:
            yield from held[: len(held) - lead]
            if lead:
                yield from blend_overlap(held[len(held) - lead:], frames[:lead])
        held = frames[lead:]
    if held is not None:
        yield from held


def assemble(meta_json, chunks_tsv, chunk_videos: list, out, audio_file=None, crf: int = 18,
             audio: str = "auto") -> int:
    """Write the final H.264 video (+ audio); returns the number of frames written."""
    meta = VideoMeta.load(meta_json)
    chunks = read_chunks(chunks_tsv)
    n_frames = int(chunks["stop"].iloc[-1])
    fps = Fraction(meta.fps)
    if audio == "required" and not meta.audio:
        raise MediaError(f"{meta.path}: has no audio stream, and the config says audio: required")
    use_audio = audio != "none" and meta.audio
    if use_audio and audio_file is None:
        raise ValueError("the content has audio but no extracted audio file was given")
    write_frames_h264(out, assembled_frames(chunks_tsv, chunk_videos), fps, crf=crf,
                      audio=audio_file if use_audio else None,
                      audio_copy=(meta.audio_codec in MP4_AUDIO), duration=n_frames / fps)
    return n_frames
