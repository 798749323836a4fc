"""Join the stylized chunks into the final video: cross-fade overlaps, exact fps and count, original audio."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from artify.chunks import read_chunks
from artify.video import MP4_AUDIO, MediaError, VideoMeta, probe, stream_frames, write_frames_h264


def blend_overlap(previous_tail: np.ndarray, current_head: np.ndarray, first: int = 0,
                  overlap: int | None = None) -> np.ndarray:
    """Linear cross-fade from the previous chunk's frames to the current chunk's over the overlap: frame k of
    an `overlap`-frame overlap (default: all of them given) is (k+1)/(overlap+1) the current chunk's.
    `first` is the position of the first frame given."""
    n = len(current_head)
    overlap = n if overlap is None else overlap
    alpha = (np.arange(first + 1, first + n + 1, dtype=np.float32) / (overlap + 1))[:, None, None, None]
    mixed = (1 - alpha) * previous_tail.astype(np.float32) + alpha * current_head.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def assembled_frames(chunks_tsv, chunk_videos: list):
    """Yield the output frames in order; the chunks are decoded by one ffmpeg process, and only an overlap's
    worth of frames is held in memory.

    Chunk i's first `lead = start - read_start` frames show the same input frames as the previous chunk's
    last `lead` core frames; those are replaced by a cross-fade from the previous chunk to this one.
    """
    chunks = read_chunks(chunks_tsv)
    if len(chunks) != len(chunk_videos):
        raise ValueError(f"{chunks_tsv}: {len(chunks)} chunks planned but {len(chunk_videos)} stylized files given")
    frames = stream_frames(chunk_videos)
    leads = [c.start - c.read_start for c in chunks] + [0]
    held: list = []  # the previous chunk's last core frames, to blend with this chunk's lead
    for i, c in enumerate(chunks):
        n, lead, tail = c.stop - c.read_start, leads[i], leads[i + 1]
        new_held = []
        for k in range(n):
            frame = next(frames, None)
            if frame is None:
                raise _count_error(chunks, chunk_videos)
            if k < lead:
                frame = blend_overlap(held[k][None], frame[None], k, lead)[0]
            if k >= n - tail:  # the next chunk's lead shows these frames too: blended there
                new_held.append(frame)
            else:
                yield frame
        held = new_held
    if next(frames, None) is not None:
        raise _count_error(chunks, chunk_videos)


def _count_error(chunks, chunk_videos) -> MediaError:
    """The first stylized chunk whose frame count is not its plan's (counted file by file: only on failure)."""
    for c, path in zip(chunks, chunk_videos):
        got = probe(path).frames
        if got != c.stop - c.read_start:
            return MediaError(f"{path}: has {got} frames, chunk {c.chunk} needs {c.stop - c.read_start}")
    return MediaError(f"{Path(chunk_videos[0]).parent}: the stylized chunks do not add up to the planned frames")


def assemble(meta_json, chunks_tsv, chunk_videos: list, out, audio_file=None, crf: int = 18,
             audio: str = "auto") -> int:
    """Write the final H.264 video (+ audio); returns the number of frames written."""
    meta = VideoMeta.load(meta_json)
    chunks = read_chunks(chunks_tsv)
    n_frames = chunks[-1].stop
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
