"""Join the stylized chunks into the final video: cross-fade overlaps, exact fps and count, original audio."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from artify.media.chunks import chunk_number, read_chunks
from artify.media.video import MP4_AUDIO, MediaError, VideoMeta, probe, write_frames_h264
from artify.settings import MAX_OVERLAP


def blend_overlap(previous_tail: np.ndarray, current_head: np.ndarray) -> np.ndarray:
    """Linear cross-fade from the previous chunk's frames to the current chunk's over an overlap of n
    frames: frame k (from 0) is (k+1)/(n+1) the current chunk's, rounded to nearest.

    In 16-bit integers (exact for n <= MAX_OVERLAP, the bound of the chunk_overlap setting): 4.5 ms a 720p
    frame against 15 ms in float32.
    """
    n = len(current_head)
    if n > MAX_OVERLAP:
        raise ValueError(f"an overlap of {n} frames is too long to blend (at most {MAX_OVERLAP})")
    k = np.arange(1, n + 1, dtype=np.uint16)[:, None, None, None]
    mixed = previous_tail.astype(np.uint16) * (n + 1 - k) + current_head.astype(np.uint16) * k
    mixed += (n + 1) // 2
    mixed //= n + 1
    return mixed.astype(np.uint8)


def assembled_frames(chunks_tsv, chunk_files: list):
    """Yield the output frames in order, read from the stylized chunks' .npy files (memory-mapped: only an
    overlap's worth of frames is held in memory).

    Chunk i's first `lead = start - read_start` frames show the same input frames as the previous chunk's
    last `lead` core frames; those are replaced by a cross-fade from the previous chunk to this one.
    """
    chunks = read_chunks(chunks_tsv)
    if len(chunks) != len(chunk_files):
        raise ValueError(f"{chunks_tsv}: {len(chunks)} chunks planned but {len(chunk_files)} stylized files given")
    leads = [c.start - c.read_start for c in chunks] + [0]
    held = None  # the previous chunk's last core frames, to blend with this chunk's lead
    for i, (c, path) in enumerate(zip(chunks, chunk_files)):
        frames = _chunk_frames(path, c)
        lead, tail = leads[i], leads[i + 1]
        if lead:
            yield from blend_overlap(held, frames[:lead])
        yield from frames[lead: len(frames) - tail]
        held = frames[len(frames) - tail:]


def _chunk_frames(path, c):
    """A stylized chunk's frames, memory-mapped, checked against its plan: its length, and its number where its
    name gives one (interior chunks all have one length, so only the name tells a file given out of order)."""
    path = Path(path)
    if chunk_number(path) not in (None, c.chunk):
        raise MediaError(f"{path}: is chunk {chunk_number(path)}'s file, given where the plan has chunk {c.chunk} "
                         f"(chunk files out of order)")
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    try:
        frames = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise MediaError(f"{path}: not a stylized chunk (.npy frames): {e}") from None
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise MediaError(f"{path}: not a stylized chunk: {frames.dtype} {frames.shape}, want uint8 (N, H, W, 3)")
    if len(frames) != c.stop - c.read_start:
        raise MediaError(f"{path}: has {len(frames)} frames, chunk {c.chunk} needs {c.stop - c.read_start}")
    return frames


def assemble(meta_json, chunks_tsv, chunk_files: list, out, content=None, *, crf: int, audio: str) -> int:
    """Write the final H.264 video at quality `crf` with the content video's audio as `audio` says (the
    assemble stage's settings): copied from `content` straight into the output (no intermediate audio file),
    in its place against the picture (frame 0 is at the probe's `start`); returns the number of frames
    written."""
    meta = VideoMeta.load(meta_json)
    chunks = read_chunks(chunks_tsv)
    n_frames = chunks[-1].stop
    fps = Fraction(meta.fps)
    if audio == "required" and not meta.audio:
        raise MediaError(f"{meta.path}: has no audio stream, and the config says audio: required")
    use_audio = audio != "none" and meta.audio
    if use_audio and content is None:
        raise ValueError("the content has audio but the content video was not given")
    write_frames_h264(out, assembled_frames(chunks_tsv, chunk_files), fps, crf=crf,
                      audio=content if use_audio else None,
                      audio_copy=(meta.audio_codec in MP4_AUDIO), duration=n_frames / fps,
                      audio_start=Fraction(meta.start))
    check_written(out, n_frames, fps)
    return n_frames


def check_written(path, frames: int, fps: Fraction) -> None:
    """Probe what was written and compare it with the plan: a muxer that dropped frames, a duration limit
    that cut the video short or a wrong rate must fail here, not reach the viewer. A wrong file is removed."""
    written = probe(path)
    problems = []
    if written.frames != frames:
        problems.append(f"{written.frames} frames written, {frames} planned")
    if Fraction(written.fps) != fps:
        problems.append(f"written at {written.fps} fps, planned {fps}")
    if problems:
        Path(path).unlink(missing_ok=True)
        raise MediaError(f"{path}: {'; '.join(problems)}; the file was removed")
