"""The content video's stages (rules of video.smk but detect_cuts): probe, plan the chunks and spans, decode a
span's frames, assemble the stylized chunks into the output video.

Light on purpose: none of them imports torch (planning sizes spans for the device without it, see
`artify.devices`), so a short job's per-video stages start fast.
"""
from __future__ import annotations

import json
from pathlib import Path

from artify.devices import auto_device
from artify.media.assemble import assemble
from artify.media.chunks import chunk_files, extract_frames, plan_chunks, write_chunks
from artify.media.video import VideoMeta, probe, processing_size
from artify.quality.sizing import auto_span_frames
from artify.settings import Settings


def run_probe(video, out_json) -> VideoMeta:
    """The video's exact fps, size, rotation, frame count and audio -> meta.json (and a summary on stdout)."""
    meta = probe(video)
    meta.save(out_json)
    print(json.dumps({**meta.__dict__, "keyframes": len(meta.keyframes), "seeks": len(meta.seeks)}))
    return meta


def run_plan_chunks(meta_json, out_tsv, settings: Settings) -> list:
    """The job's chunks and spans -> chunks.tsv; span_frames 0 sizes the spans (`job_span_frames`)."""
    meta = VideoMeta.load(meta_json)
    span_frames = settings.span_frames or job_span_frames(meta, settings)
    chunks = plan_chunks(meta.frames, settings.chunk_frames, settings.chunk_overlap, settings.max_frames,
                         span_frames, meta.keyframes)
    write_chunks(chunks, out_tsv)
    print(f"{len(chunks)} chunks over {chunks[-1].stop} frames, in {chunks[-1].span + 1} spans of at most "
          f"{span_frames} frames")
    return chunks


def job_span_frames(meta: VideoMeta, settings: Settings) -> int:
    """span_frames: 0: spans sized for the method on the device the stylization will run on (auto: this
    machine's, as pick_device decides), at the job's processing size (`auto_span_frames`)."""
    device = auto_device(settings.device)
    total = min(meta.frames, settings.max_frames) if settings.max_frames else meta.frames
    span = auto_span_frames(total, settings.chunk_frames, settings.method, device,
                            *processing_size(meta.width, meta.height, settings.size))
    print(f"span_frames 0: {span} frames a span for method {settings.method} on {device}")
    return span


def run_extract_frames(video, meta_json, chunks_tsv, span: int, out_dir, settings: Settings) -> int:
    """One span's frames at the processing size -> a folder of one .npy per chunk."""
    meta = VideoMeta.load(meta_json)
    n = extract_frames(video, chunks_tsv, span, processing_size(meta.width, meta.height, settings.size), meta,
                       out_dir)
    print(f"span {span}: {n} frames decoded")
    return n


def run_assemble(meta_json, chunks_tsv, stylized, out, settings: Settings, content=None) -> int:
    """The stylized chunks (files, or span folders standing for their chunk files in order: a feature film's
    thousands of chunk paths would not fit in one shell command) -> the H.264 video, overlaps cross-faded,
    the content's audio muxed."""
    files = [f for p in map(Path, stylized) for f in (chunk_files(p) if p.is_dir() else [p])]
    n = assemble(meta_json, chunks_tsv, files, out, content=content, crf=settings.crf, audio=settings.audio)
    print(f"{n} frames -> {out}")
    return n
