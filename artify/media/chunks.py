"""Split the content video into chunks: the unit of parallel stylization and of caching.

Chunk i owns the core frames [start, stop). It is stylized from `read_start = start - overlap` so that
assemble can cross-fade the overlap with the previous chunk's last frames: a boundary is then a
short blend, not a jump.

Chunks are grouped into extraction spans: one ffmpeg decode per span writes the frames of all its
chunks. Decoding can only start at a keyframe, so extracting chunk by chunk would decode each chunk from
the keyframe before it — up to a whole GOP (often 250 frames) thrown away for every 24-frame chunk. A
span starts at a chunk boundary near a keyframe where it can, and is at most `span_frames` long, so
the frames on disk stay bounded by the span size, not the video's length.
"""
from __future__ import annotations

import bisect
import csv
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

from artify.atomic import (TMP_PREFIX, atomic_path, atomic_write_text, check_replaceable, claim_folder, owned_by,
                           remove_own_folder)
from artify.media.video import MediaError, VideoMeta, ffmpeg_exe, filter_text, frame_selection, npy_header, option_args

FIELDS = ("chunk", "read_start", "start", "stop", "span")


class Chunk(NamedTuple):
    chunk: int
    read_start: int  # first frame read (start - overlap, or 0)
    start: int  # first core frame
    stop: int  # one past the last core frame
    span: int  # the extraction span holding this chunk's frames


def plan_chunks(n_frames: int, chunk_frames: int, chunk_overlap: int, max_frames: int = 0,
                span_frames: int | None = None, keyframes: list[int] | None = None) -> list[Chunk]:
    """Frame ranges of every chunk, and the span of each (in time linear in the number of chunks).

    A span holds at most `span_frames` frames (None = the whole video in one). That is a number of frames
    already decided: the setting's 0 ("sized for the method") is resolved by the caller (the plan_chunks
    stage, with `auto_span_frames`) and refused here, so that 0 has one meaning. Where it must end is chosen
    to start the next one just after a keyframe: among the chunk boundaries that leave it between half and
    all of `span_frames` long, the last whose read_start has a keyframe less than a chunk before it;
    failing that, the last boundary that fits. (Without keyframes, spans are simply full.)
    """
    if chunk_frames < 2:
        raise ValueError(f"chunk_frames must be at least 2, got {chunk_frames}")
    if not 0 <= chunk_overlap < chunk_frames:
        raise ValueError(f"chunk_overlap must be in [0, chunk_frames), got {chunk_overlap}")
    if span_frames is not None and span_frames < 1:
        raise ValueError(f"span_frames {span_frames}: a span needs a number of frames (the setting's 0, sized for "
                         f"the method, is resolved before planning; None = one span)")
    total = min(n_frames, max_frames) if max_frames > 0 else n_frames
    if total <= 0:
        raise ValueError("the content video has no frames to process")
    ranges = chunk_ranges(total, chunk_frames, chunk_overlap)
    spans = span_numbers(ranges, total if span_frames is None else span_frames, sorted(keyframes or []), chunk_frames)
    return [Chunk(i, *r, span) for i, (r, span) in enumerate(zip(ranges, spans))]


def chunk_ranges(total: int, chunk_frames: int, chunk_overlap: int) -> list[tuple[int, int, int]]:
    """(read_start, start, stop) of each chunk: cores of `chunk_frames` tiling [0, total), each read from
    `chunk_overlap` frames earlier."""
    ranges = [[max(0, start - chunk_overlap), start, min(start + chunk_frames, total)]
              for start in range(0, total, chunk_frames)]
    # A last chunk shorter than the overlap would be all blend: fold it into the one before.
    if len(ranges) > 1 and ranges[-1][2] - ranges[-1][1] <= chunk_overlap:
        last = ranges.pop()
        ranges[-1][2] = last[2]
    return [tuple(r) for r in ranges]


def span_numbers(ranges: list[tuple[int, int, int]], limit: int, keys: list[int], chunk_frames: int) -> list[int]:
    """The span of each chunk: runs of consecutive chunks decoding at most `limit` frames, cut before a
    chunk whose read_start is less than a chunk after a keyframe where that leaves the span at least half
    full (see plan_chunks). Each span looks only at its own chunks and the next: linear in the chunks."""
    def near_key(frame):  # a keyframe k with frame - chunk_frames < k <= frame
        i = bisect.bisect_right(keys, frame)
        return i > 0 and keys[i - 1] > frame - chunk_frames

    spans, first, n = [], 0, len(ranges)
    while first < n:
        s = ranges[first][0]
        end = first + 1  # breaking before chunk `end` leaves the span ranges[end - 1] stop - s frames long
        fit = keyed = None
        while end < n and ranges[end - 1][2] - s <= limit:
            fit = end
            if ranges[end - 1][2] - s >= limit / 2 and near_key(ranges[end][0]):
                keyed = end
            end += 1
        if end < n or ranges[-1][2] - s > limit:  # the rest does not fit in this span
            end = keyed or fit or first + 1
        spans += [spans[-1] + 1 if spans else 0] * (end - first)
        first = end
    return spans


def write_chunks(chunks: list[Chunk], path) -> None:
    lines = ["\t".join(FIELDS)] + ["\t".join(str(v) for v in c) for c in chunks]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_chunks(path) -> list[Chunk]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or set(FIELDS) - set(rows[0]):
        raise ValueError(f"{path}: not a chunk plan (columns {', '.join(FIELDS)})")
    return [Chunk(*(int(r[k]) for k in FIELDS)) for r in rows]


def span_chunks(chunks_tsv, span: int, out_dir, stage: str, leftover: str) -> list[Chunk]:
    """The chunks of `span`, for `stage` to write into `out_dir`. First, what `stage` left beside out_dir for
    spans the plan no longer has (the temporary folders of interrupted runs of an older plan: siblings whose
    name matches the regular expression `leftover`, its group the span number) is removed."""
    plan = read_chunks(chunks_tsv)
    chunks = [c for c in plan if c.span == span]
    if not chunks:
        raise ValueError(f"{chunks_tsv}: no span {span}")
    check_replaceable(out_dir, stage)  # before the work: refused now, not after hours
    spans, folder = {c.span for c in plan}, Path(out_dir).parent
    for entry in folder.iterdir() if folder.is_dir() else ():
        found = re.fullmatch(leftover, entry.name)
        if found and int(found[1]) not in spans and owned_by(entry, stage):
            shutil.rmtree(entry)
    return chunks


def chunk_frames_path(span_dir, chunk: int) -> Path:
    """Where extract_frames puts a chunk's frames inside its span's folder."""
    return Path(span_dir) / f"{chunk:04d}.npy"


def chunk_number(path) -> int | None:
    """The chunk a span folder's file is of (its name is the chunk's number, `chunk_frames_path`), or None for a
    file not named so."""
    stem = Path(path).name.split(".", 1)[0]
    return int(stem) if stem.isascii() and stem.isdigit() else None


def chunk_files(span_dir, suffix: str = ".npy") -> list[Path]:
    """A span folder's chunk files in chunk order. By number, never by name: names are padded to four digits
    only, so from chunk 10,000 on (a film of 2 h at 30 fps) `10000.npy` sorts before `9999.npy`."""
    numbered = sorted((n, p) for p in Path(span_dir).iterdir()
                      if p.name.endswith(suffix) and (n := chunk_number(p)) is not None)
    return [p for _, p in numbered]


# Most chunks one ffmpeg process writes: each is an open file and a `trim` that sees every frame, so a span
# of thousands of chunks (a long video planned as one span, or a large `span_frames`) is cut into groups,
# each decoded from its own seek.
GROUP_CHUNKS = 64


def extract_frames(video, chunks_tsv, span: int, size: tuple[int, int], meta: VideoMeta, out_dir) -> int:
    """Decode one span's frames once, at the processing size, into one .npy file per chunk (uint8 RGB,
    overlaps repeated), in the folder `out_dir`; returns the number of frames in the span.

    One ffmpeg process scales, converts and splits the span into the chunks' frame ranges (`trim` by frame
    number) and writes each range straight into its .npy file, after the header Python wrote: the frames
    never pass through Python, which halves the time at 720p (measured, 2 cores). The frames are chosen by
    their timestamps, as every reader of the video chooses them (`artify.media.video.frame_selection`: from the
    keyframe before the span, a picture that starts late held, a variable-timing video resampled to its
    constant rate). Every file's length is checked, and the folder appears only when complete. An existing
    `out_dir` is replaced only if this stage made it (`artify.atomic.claim_folder`).
    """
    chunks = span_chunks(chunks_tsv, span, out_dir, "extract-frames", re.escape(TMP_PREFIX) + r"(\d+)")
    first, stop = chunks[0].read_start, chunks[-1].stop
    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        claim_folder(tmp, "extract-frames")
        written = {}
        for i in range(0, len(chunks), GROUP_CHUNKS):
            written |= _extract_group(video, chunks[i: i + GROUP_CHUNKS], size, meta, tmp)
        got = max(c.read_start - first + written[c.chunk] for c in chunks)
        if any(written[c.chunk] != c.stop - c.read_start for c in chunks):  # the video ended (or broke) early
            raise MediaError(f"{video}: span {span} should have {stop - first} frames from frame {first}, "
                             f"got {got}")
        remove_own_folder(out_dir, "extract-frames")
    return stop - first


def _extract_group(video, chunks: list[Chunk], size: tuple[int, int], meta: VideoMeta, folder: Path) -> dict:
    """One ffmpeg process for these consecutive chunks; returns the frames that reached each chunk's file."""
    first = chunks[0].read_start
    w, h = size
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]
    options, filters = frame_selection(meta, first, chunks[-1].stop)
    args += option_args(options)
    selected = filter_text(filters) + ","
    outs = "".join(f"[s{c.chunk}]" for c in chunks)
    graph = [f"[0:v:0]{selected}scale={w}:{h}:flags=bicubic,format=rgb24,split={len(chunks)}{outs}"]
    graph += [f"[s{c.chunk}]trim=start_frame={c.read_start - first}:end_frame={c.stop - first}[o{c.chunk}]"
              for c in chunks]
    args += ["-i", str(video), "-filter_complex", ";".join(graph)]
    files, header = {}, {}
    try:
        for c in chunks:  # the header first; ffmpeg appends the frames through the open descriptor
            files[c.chunk] = f = open(chunk_frames_path(folder, c.chunk), "wb")
            header[c.chunk] = f.write(npy_header((c.stop - c.read_start, h, w, 3)))
            f.flush()
            # passthrough: never duplicate or drop a frame to fit a rate (the seek leaves a half-frame offset)
            args += ["-map", f"[o{c.chunk}]", "-fps_mode", "passthrough", "-f", "rawvideo", f"pipe:{f.fileno()}"]
        proc = subprocess.run(args, capture_output=True, pass_fds=[f.fileno() for f in files.values()])
    finally:
        for f in files.values():
            f.close()
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise MediaError(f"{video}: ffmpeg could not decode: {err[-1] if err else 'no message'}")
    return {c.chunk: (chunk_frames_path(folder, c.chunk).stat().st_size - header[c.chunk]) // (w * h * 3)
            for c in chunks}
