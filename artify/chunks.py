"""Split the content video into chunks: the unit of parallel stylization and of caching.

Chunk i owns the core frames [start, stop). It is stylized from `read_start = start - overlap` so that
assemble can cross-fade the overlap with the previous chunk's last frames: a boundary is then a
short blend, not a jump.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pandas as pd

from artify.video import MediaError, atomic_write_text, probe, run_ffmpeg, tmp_path


def plan_chunks(n_frames: int, chunk_frames: int = 24, chunk_overlap: int = 4, max_frames: int = 0) -> pd.DataFrame:
    """Frame ranges of every chunk: columns chunk, read_start, start, stop (stop exclusive)."""
    if chunk_frames < 2:
        raise ValueError(f"chunk_frames must be at least 2, got {chunk_frames}")
    if not 0 <= chunk_overlap < chunk_frames:
        raise ValueError(f"chunk_overlap must be in [0, chunk_frames), got {chunk_overlap}")
    total = min(n_frames, max_frames) if max_frames > 0 else n_frames
    if total <= 0:
        raise ValueError("the content video has no frames to process")
    rows = []
    for i, start in enumerate(range(0, total, chunk_frames)):
        stop = min(start + chunk_frames, total)
        rows.append({"chunk": i, "read_start": max(0, start - chunk_overlap), "start": start, "stop": stop})
    # A last chunk shorter than the overlap would be all blend: fold it into the one before.
    if len(rows) > 1 and rows[-1]["stop"] - rows[-1]["start"] <= chunk_overlap:
        last = rows.pop()
        rows[-1]["stop"] = last["stop"]
    return pd.DataFrame(rows, columns=["chunk", "read_start", "start", "stop"])


def write_chunks(chunks: pd.DataFrame, path) -> None:
    atomic_write_text(path, chunks.to_csv(sep="\t", index=False))


def read_chunks(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


def extract_chunk(video, chunks_tsv, chunk: int, size: tuple[int, int], fps: Fraction, out) -> int:
    """Decode one chunk's frames [read_start, stop) at the processing size into a lossless FFV1 file.

    ffmpeg transcodes directly (no frames through Python). Seeking to half a frame before read_start
    makes the first frame exactly read_start for constant-frame-rate video; the count is checked after.
    """
    row = read_chunks(chunks_tsv).set_index("chunk").loc[chunk]
    n = int(row.stop - row.read_start)
    tmp = tmp_path(out)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    args = ["-hide_banner", "-nostdin", "-y"]
    if row.read_start > 0:
        args += ["-ss", f"{float((int(row.read_start) - Fraction(1, 2)) / fps):.6f}"]
    args += ["-i", str(video), "-map", "0:v:0", "-frames:v", str(n), "-vf",
             f"setpts=PTS-STARTPTS,scale={size[0]}:{size[1]}:flags=bicubic,format=rgb24",
             # passthrough: never duplicate or drop a frame to fit a rate (the seek leaves a half-frame offset)
             "-fps_mode", "passthrough", "-c:v", "ffv1", "-level", "3", "-pix_fmt", "bgr0", "-f", "matroska", str(tmp)]
    try:
        run_ffmpeg(args, video)
        got = probe(tmp).frames
        if got != n:
            raise MediaError(f"{video}: chunk {chunk} should have {n} frames from frame {row.read_start}, got {got}")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return n
