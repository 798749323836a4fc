"""A span's chunks in one process: one job per span and stage, resumable chunk by chunk.

The span (chunks.py) is the unit of work of every per-chunk stage: one extraction, one flow, one segmentation
and one stylization job each. A job's fixed costs (process start, imports, model load: seconds) are paid once
per span instead of once per chunk, and a long video makes a few hundred jobs, not tens of thousands.

The chunk stays the unit of stylization (its own temporal start, overlaps cross-faded in assemble) and of
resuming. Snakemake removes a job's outputs before running it again, so a span job puts each finished chunk
in a partial folder beside its output (`.{name}.partial`, which Snakemake does not know), with the key of
everything that chunk was made from: the stage's settings and the bytes of its inputs. A rerun after a kill
reuses the chunks whose key still matches and makes the rest (so a changed setting or input redoes them);
the complete folder then becomes the output by one rename.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from artify.media.chunks import Chunk, chunk_frames_path, span_chunks
from artify.atomic import OWNER_FILE, atomic_write_text, claim_folder, remove_own_folder
from artify.methods.weights import is_url
from artify.settings import FILE_SETTINGS, Settings


def chunk_path(folder, chunk: int, suffix: str) -> Path:
    """A chunk's file in a span folder (the extracted frames: `chunk_frames_path`, suffix .npy)."""
    return chunk_frames_path(folder, chunk).with_suffix(suffix)


def file_digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def settings_key(settings: Settings, stage: str) -> str:
    """The key of what `stage`'s settings give a chunk: their values and the bytes of each local file they name
    (`FILE_SETTINGS`; a URL's download is named by its URL and checksum setting). Made once per span job: one
    read of, say, a SAM checkpoint, which the job reads again just after to load it. A file that is missing
    is keyed by its name; the stage that needs it says it is missing."""
    values = settings.stage_values(stage)
    files = [Path(values[k]) for k in FILE_SETTINGS if values.get(k) and not is_url(values[k])]
    return key_of(values, *(f for f in files if f.is_file()))


def key_of(*parts) -> str:
    """One key of settings (JSON-able values, e.g. `Settings.stage_values`) and files (their bytes); None parts
    are skipped."""
    h = hashlib.sha256()
    for part in parts:
        if part is None:
            continue
        text = f"file:{file_digest(part)}" if isinstance(part, Path) else json.dumps(part, sort_keys=True)
        h.update(text.encode() + b"\0")
    return h.hexdigest()


def partial_folder(out_dir) -> Path:
    """Where a span job keeps its finished chunks until the span is complete."""
    out_dir = Path(out_dir)
    return out_dir.with_name(f".{out_dir.name}.partial")


def stage_chunks(chunks_tsv, span: int, out_dir, stage: str) -> list[Chunk]:
    """The chunks of `span` for `stage` (`chunks.span_chunks`: the partial folders `stage` left for spans an
    older plan had are removed)."""
    return span_chunks(chunks_tsv, span, out_dir, stage, r"\.(\d+)\.partial")


def run_span(chunks: list[Chunk], out_dir, suffix: str, make: Callable[[Chunk, Path, Path], None],
             key: Callable[[Chunk, Path], str], stage: str) -> tuple[int, int]:
    """make(chunk, partial folder, file) writes each chunk's file (atomically) into the partial folder, unless
    the partial folder holds it already under the same key(chunk, partial folder); then the folder becomes
    `out_dir`, replacing a folder there only if `stage` made it (`artify.atomic.remove_own_folder`; the partial
    folder, a name of artify's own, carries the stage's mark). Returns (chunks made, chunks reused)."""
    out_dir = Path(out_dir)
    partial = claim_folder(partial_folder(out_dir), stage)
    names = {chunk_path(partial, c.chunk, suffix).name for c in chunks} | {OWNER_FILE}
    for stray in partial.iterdir():  # other chunks' files (the plan changed), half-written temporary files
        if stray.name not in names and stray.name.removesuffix(".key") not in names:
            stray.unlink() if stray.is_file() else shutil.rmtree(stray)
    made, work, cpu = 0, 0.0, 0.0
    for c in chunks:
        path = chunk_path(partial, c.chunk, suffix)
        stamp = path.with_name(path.name + ".key")
        wanted = key(c, partial)
        if path.is_file() and stamp.is_file() and stamp.read_text() == wanted:
            continue
        stamp.unlink(missing_ok=True)
        t0, c0 = time.perf_counter(), time.process_time()
        make(c, partial, path)
        work, cpu = work + time.perf_counter() - t0, cpu + time.process_time() - c0
        atomic_write_text(stamp, wanted)
        made += 1
    for stamp in partial.glob("*.key"):
        stamp.unlink()
    remove_own_folder(out_dir, stage)
    os.replace(partial, out_dir)
    # the chunks' own seconds: the job's benchmark time less this is what the job cost beyond its chunks
    print(f"{out_dir}: {made} chunks made in {work:.3f} s ({cpu:.3f} s CPU), {len(chunks) - made} reused from an "
          f"interrupted run", flush=True)
    return made, len(chunks) - made


def flow_span(frames_dir, chunks_tsv, span: int, out_dir, settings: Settings, threads: int | None = None):
    """`flow.flow_chunk` for every chunk of a span: frames_dir/NNNN.npy -> out_dir/NNNN.npz."""
    from artify.flow import flow_chunk

    def make(c, _, path):
        flow_chunk(chunk_path(frames_dir, c.chunk, ".npy"), path, settings, threads)

    chunks = stage_chunks(chunks_tsv, span, out_dir, "flow-span")
    shared = settings_key(settings, "flow_chunk")
    return run_span(chunks, out_dir, ".npz", make,
                    lambda c, _: key_of(shared, Path(chunk_path(frames_dir, c.chunk, ".npy"))), "flow-span")


def segment_span(frames_dir, chunks_tsv, span: int, out_dir, settings: Settings, device, threads: int | None = None,
                 cuts=None, foreground=None):
    """`segment.segment_chunk` for every chunk of a span, with one segmenter (SAM loaded once); cuts: the
    content's cuts.tsv (masks are not carried across a cut). Logs each chunk's foreground share (a warning
    where it found no subject) and, given `foreground` (a TSV path), writes them there (`segment.report_foreground`)."""
    from artify.style.cuts import load_cuts, shot_starts
    from artify.masks.segment import make_segmenter, report_foreground, segment_chunk

    segmenter = []
    cut_frames = load_cuts(cuts) if cuts else []

    def make(c, _, path):
        if not segmenter:
            segmenter.append(make_segmenter(settings, device))
        segment_chunk(chunk_path(frames_dir, c.chunk, ".npy"), path, settings, device, threads, segmenter[0],
                      shot_starts(cut_frames, c.read_start, c.stop))

    chunks = stage_chunks(chunks_tsv, span, out_dir, "segment-span")
    shared = settings_key(settings, "segment_chunk")
    counts = run_span(chunks, out_dir, ".npz", make,
                      lambda c, _: key_of(shared, Path(chunk_path(frames_dir, c.chunk, ".npy")),
                                          Path(cuts) if cuts else None), "segment-span")
    report_foreground(out_dir, chunks, foreground)
    return counts


def stylize_span(frames_dir, chunks_tsv, span: int, schedule_tsv, keyframes_tsv, keyframe_dir, out_dir,
                 settings: Settings, threads: int | None = None, flows_dir=None, previous_dir=None, decoder=None,
                 masks_dir=None, job: str | None = None, cuts=None, shot_networks=None):
    """`stylize.stylize_chunk` for every chunk of a span in this one process (the model, the schedule and the
    plan loaded once): frames_dir/NNNN.npy (+ flows_dir/NNNN.npz, masks_dir/NNNN.npz) -> out_dir/NNNN.npy.

    previous_dir: the previous span's output, for settings.chunk_chain (its last chunk starts this span's
    first); inside the span each chunk continues from the one before.
    job: the job's name, for messages (default: the folder above out_dir's, as results/{job}/stylized/NNNN).
    cuts: the content's cuts.tsv (`artify.style.cuts`).
    """
    from artify.methods.stylize import stylize_chunk

    chunks = stage_chunks(chunks_tsv, span, out_dir, "stylize-span")
    keyframe_files = [Path(keyframes_tsv), *sorted(p for p in Path(keyframe_dir).iterdir() if p.is_file())]
    shared = key_of(settings_key(settings, "stylize_chunk"), *keyframe_files, Path(schedule_tsv),
                    Path(decoder) if decoder else None, Path(cuts) if cuts else None,
                    Path(shot_networks) if shot_networks else None)
    job = job or Path(out_dir).resolve().parent.parent.name

    def inputs(c, partial):
        def of(folder, suffix):
            return chunk_path(folder, c.chunk, suffix) if folder else None

        previous = None
        if settings.chunk_chain and c.chunk > 0:
            previous = chunk_path(partial if c is not chunks[0] else previous_dir, c.chunk - 1, ".npy")
            if c is chunks[0] and previous_dir is None:
                raise ValueError(f"chunk_chain: chunk {c.chunk} needs the previous span's output (--previous)")
        return of(frames_dir, ".npy"), of(flows_dir, ".npz"), of(masks_dir, ".npz"), previous

    def make(c, partial, path):
        frames, flows, masks, previous = inputs(c, partial)
        stylize_chunk(frames, chunks_tsv, c.chunk, schedule_tsv, keyframes_tsv, keyframe_dir, path, settings,
                      threads=threads, flows=flows, previous_chunk=previous, decoder=decoder, masks=masks,
                      job=job, cuts=cuts, shot_networks=shot_networks)

    def key(c, partial):
        return key_of(shared, tuple(c), *(Path(p) if p else None for p in inputs(c, partial)))

    return run_span(chunks, out_dir, ".npy", make, key, "stylize-span")
