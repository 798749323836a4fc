"""The segment stage (rule segment_chunk): a span's chunks of frames -> their stable foreground masks, for the
segmented method; each chunk's foreground share logged and tabled for the metrics."""
from __future__ import annotations

from pathlib import Path

from artify.atomic import atomic_write_text
from artify.devices import set_threads
from artify.masks.segment import foreground_share, load_masks, make_segmenter, save_masks, say_foreground, \
    segment_frames
from artify.media.spans import chunk_path, key_of, run_span, settings_key, stage_chunks
from artify.media.video import read_frames
from artify.settings import Settings
from artify.style.cuts import load_cuts, shot_starts


def segment_chunk(frames_video, out, settings: Settings, device="cpu", threads: int | None = None,
                  segmenter=None, shot_starts: list[int] | None = None):
    """A chunk's frames -> its stable foreground masks (.npz); returns them. segmenter: one made by
    `make_segmenter` for these settings, shared by a span's chunks (default: a new one). shot_starts: where
    the content's shots start among the chunk's frames (`artify.style.cuts.shot_starts`)."""
    set_threads(threads)
    masks = segment_frames(read_frames(frames_video), settings, device, segmenter, shot_starts)
    save_masks(out, masks)
    return masks


def run_segment_chunk(frames_video, out, settings: Settings, device="cpu", threads: int | None = None):
    """`segment_chunk` of one chunk, its foreground share logged (a warning where it found no subject)."""
    masks = segment_chunk(frames_video, out, settings, device, threads)
    say_foreground(frames_video, foreground_share(masks))
    return masks


def report_foreground(masks_dir, chunks, out=None) -> list[float]:
    """Each chunk's foreground share from its mask file in `masks_dir` (a span's folder), logged and, given
    `out`, written there (TSV: chunk, frames, foreground), which evaluate carries into metrics.json."""
    rows, shares = ["chunk\tframes\tforeground"], []
    for c in chunks:
        masks = load_masks(chunk_path(masks_dir, c.chunk, ".npz"))
        shares.append(foreground_share(masks))
        say_foreground(f"chunk {c.chunk}", shares[-1])
        rows.append(f"{c.chunk}\t{len(masks)}\t{shares[-1]:.6f}")
    if out is not None:
        atomic_write_text(out, "\n".join(rows) + "\n")
    return shares


def segment_span(frames_dir, chunks_tsv, span: int, out_dir, settings: Settings, device, threads: int | None = None,
                 cuts=None, foreground=None):
    """`segment_chunk` for every chunk of a span, with one segmenter (SAM loaded once); cuts: the content's
    cuts.tsv (masks are not carried across a cut). Logs each chunk's foreground share (a warning where it found
    no subject) and, given `foreground` (a TSV path), writes them there (`report_foreground`)."""
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
