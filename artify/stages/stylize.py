"""The stylize stage (rule stylize_chunk): a span's chunks of frames, through the job's method, -> lossless
stylized chunks (one .npy each), resumable chunk by chunk (`artify.media.spans`)."""
from __future__ import annotations

from pathlib import Path

from artify.media.spans import chunk_path, key_of, run_span, settings_key, stage_chunks
from artify.methods.stylize import stylize_chunk
from artify.settings import Settings


def stylize_span(frames_dir, chunks_tsv, span: int, schedule_tsv, keyframes_tsv, keyframe_dir, out_dir,
                 settings: Settings, threads: int | None = None, flows_dir=None, previous_dir=None, decoder=None,
                 masks_dir=None, job: str | None = None, cuts=None):
    """`stylize_chunk` for every chunk of a span in this one process (the model, the schedule and the
    plan loaded once): frames_dir/NNNN.npy (+ flows_dir/NNNN.npz, masks_dir/NNNN.npz) -> out_dir/NNNN.npy.

    previous_dir: the previous span's output, for settings.chunk_chain (its last chunk starts this span's
    first); inside the span each chunk continues from the one before.
    job: the job's name, for messages (default: the folder above out_dir's, as results/{job}/stylized/NNNN).
    cuts: the content's cuts.tsv (`artify.style.cuts`).
    """
    chunks = stage_chunks(chunks_tsv, span, out_dir, "stylize-span")
    keyframe_files = [Path(keyframes_tsv), *sorted(p for p in Path(keyframe_dir).iterdir() if p.is_file())]
    shared = key_of(settings_key(settings, "stylize_chunk"), *keyframe_files, Path(schedule_tsv),
                    Path(decoder) if decoder else None, Path(cuts) if cuts else None)
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
                      job=job, cuts=cuts)

    def key(c, partial):
        return key_of(shared, tuple(c), *(Path(p) if p else None for p in inputs(c, partial)))

    return run_span(chunks, out_dir, ".npy", make, key, "stylize-span")
