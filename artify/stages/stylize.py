"""The stylize stage (rule stylize_chunk): a span's chunks of frames x the schedule's weights -> the job's method
(`artify.methods.registry`) -> lossless stylized chunks (one .npy each), resumable chunk by chunk
(`artify.media.spans`). `stylize_chunk` is the chunk driver; `stylize_span` runs it over a span in one process."""
from __future__ import annotations

import functools
import os
from dataclasses import replace
from pathlib import Path

import torch

from artify.devices import DeviceError, pick_device, set_threads
from artify.flow import load_flows
from artify.masks.segment import load_masks
from artify.media.chunks import read_chunks
from artify.media.pixels import NonFiniteError
from artify.media.spans import chunk_path, key_of, run_span, settings_key, stage_chunks
from artify.media.video import MediaError, read_frames, save_frames
from artify.methods.registry import NEEDS, Shot, method_for, needs
from artify.progress import progress
from artify.settings import Settings
from artify.style.cuts import load_cuts, reliable_fractions, shot_starts, shots
from artify.style.keyframes import load_keyframe_images
from artify.style.schedule import StyleSchedule


def _per_file(load):
    """load(path, *args), remembered by this process while the file is unchanged (path, size, mtime): a span's
    chunks (`stylize_span`) read the plan, the schedule and the keyframes once (models
    are shared by their own caches: features.vgg19, arbitrary.network_for)."""
    remembered = functools.lru_cache(maxsize=4)(lambda path, stamp, *args: load(path, *args))

    def get(path, *args):
        stat = os.stat(path)
        return remembered(str(path), (stat.st_size, stat.st_mtime_ns), *args)

    return get


_plan = _per_file(read_chunks)
_schedule = _per_file(StyleSchedule.load)
_keyframes = _per_file(load_keyframe_images)


def stylize_chunk(frames_video, chunks_tsv, chunk: int, schedule_tsv, keyframes_tsv, keyframe_dir, out,
                  settings: Settings, threads: int | None = None, flows=None,
                  previous_chunk=None, decoder=None, masks=None, job: str | None = None, cuts=None,
                  shot_networks=None) -> None:
    """Stylize frames [read_start, stop) of one chunk and write them losslessly to `out` (.npy).

    A frame that stays non-finite after the method's own cautious retries fails the chunk with a
    NonFiniteError naming job, chunk and frame, and leaves no output file (`save_frames` is atomic).

    flows: the chunk's flow file (`flow_chunk`), needed when settings.temporal is true.
    previous_chunk: the previous chunk's stylized file; with settings.chunk_chain this chunk's overlap
    frames are taken from it and stylization continues from them.
    masks: method segmented: the chunk's foreground masks (`segment_chunk`).
    decoder: method arbitrary with arbitrary_network adain: the job's trained decoder.pth (rule train_arbitrary),
    when adain_decoder is empty.
    shot_networks: method propagate: the job's shots table (rule train_propagate), its networks beside it.
    cuts: the content's cuts.tsv (`artify.style.cuts`). With temporal: true the chunk is stylized shot by shot
    (`chunk_shots`): each shot as if the video started there, so nothing temporal reaches across a cut.
    """
    set_threads(threads)
    torch.manual_seed(settings.seed)
    # The same flag as use_deterministic_algorithms(True, warn_only=True), which also imports torch._inductor
    # (1.7 s of CPU a job) to set a compiler option we never use
    torch.set_deterministic_debug_mode("warn")
    device = pick_device(settings.device)
    row = next((c for c in _plan(chunks_tsv) if c.chunk == chunk), None)
    if row is None:
        raise ValueError(f"{chunks_tsv}: no chunk {chunk}")
    frames = read_frames(frames_video)
    if len(frames) != row.stop - row.read_start:
        raise MediaError(f"{frames_video}: has {len(frames)} frames, chunk {chunk} needs {row.stop - row.read_start}")
    weights = _schedule(schedule_tsv).weights_range(int(row.read_start), int(row.stop))
    keyframes = _keyframes(keyframes_tsv, keyframe_dir, settings.style_size)
    if weights.shape[1] != len(keyframes):
        raise ValueError(f"{schedule_tsv}: {weights.shape[1]} styles scheduled but {len(keyframes)} keyframes")
    method = method_for(settings.method)
    needed = needs(settings)
    given = {"flows": flows, "masks": masks, "decoder": decoder, "shot_networks": shot_networks}
    for name in sorted(needed - {"decoder"}):  # a missing decoder is explained by the method (adain_decoder)
        if given[name] is None:
            raise ValueError(f"method {method.name} with these settings needs {NEEDS[name]} (--{name})")
    flow_data = None
    if "flows" in needed:
        flow_data = load_flows(flows)
    previous = None
    lead = int(row.start - row.read_start)
    if previous_chunk is not None and lead:
        previous = list(read_frames(previous_chunk)[-lead:])
    mask_data = None
    if "masks" in needed:
        mask_data = load_masks(masks)
    pieces = chunk_shots(row, cuts, flow_data, settings)
    inputs = {name: path for name, path in given.items() if name in needed and path is not None}

    def stylized(settings):
        stylize_shot = method.stylizer(settings, device, inputs)
        for a, b in pieces:
            torch.manual_seed(settings.seed)  # each shot as if the video started there
            yield from stylize_shot(Shot(frames[a:b], weights[a:b], keyframes, int(row.read_start) + a,
                                         _slice(flow_data, a, b),
                                         previous[a:b] if previous and a < len(previous) else None,
                                         None if mask_data is None else mask_data[a:b]))

    job = job or Path(out).resolve().parent.parent.name  # results/{job}/chunks/stylized_{chunk}.npy
    while True:
        made = [0]  # frames yielded so far: the one being made when a method fails is read_start + made
        try:
            frames_made = progress(stylized(settings), f"chunk {chunk}", len(frames), every_step=True)
            save_frames(out, _counted(frames_made, made), len(frames))
            return
        except NonFiniteError as e:
            # e.frame: where a method that works in batches found it, counted from the next frame it owed
            frame = row.read_start + made[0] + (e.frame or 0)
            raise NonFiniteError(f"job {job}, chunk {chunk}, frame {frame}: {e}; no output written ({out})",
                                 frame=frame) from None
        except torch.OutOfMemoryError:
            # A batched method retries with half its batch (batch_frames); gatys and segmented (gatys on each
            # region) optimise one frame at a time, which has no smaller unit: retrying would fail alike.
            batch = settings.batch_frames
            if not method.batched or batch <= 1:
                raise DeviceError(f"{frames_video}: out of {device.type.upper()} memory stylizing chunk {chunk} at "
                                  f"{frames.shape[2]}x{frames.shape[1]} with method {settings.method}; lower `size` "
                                  f"or use a larger GPU") from None
            settings = replace(settings, batch_frames=batch // 2)
            print(f"out of GPU memory with batch_frames={batch}; retrying with {batch // 2}", flush=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def chunk_shots(row, cuts, flow_data, settings: Settings) -> list[tuple[int, int]]:
    """The chunk's frames [a, b) (counted from its read_start) shot by shot: split at the content's cuts and
    where the flow to the frame before is reliable on less than min_reliable of the frame (`artify.style.cuts`);
    one piece without temporal: true (then no frame depends on another)."""
    n = int(row.stop - row.read_start)
    if not settings.temporal:
        return [(0, n)]
    reliable = reliable_fractions(flow_data) if flow_data is not None else None
    starts = shot_starts(load_cuts(cuts) if cuts else [], int(row.read_start), int(row.stop), reliable,
                         settings.min_reliable)
    if len(starts) > 1:
        print(f"chunk {row.chunk}: shots start at frames {[int(row.read_start) + t for t in starts]}", flush=True)
    return shots(starts, n)


def stylize_span(frames_dir, chunks_tsv, span: int, schedule_tsv, keyframes_tsv, keyframe_dir, out_dir,
                 settings: Settings, threads: int | None = None, flows_dir=None, previous_dir=None, decoder=None,
                 masks_dir=None, job: str | None = None, cuts=None, shot_networks=None):
    """`stylize_chunk` for every chunk of a span in this one process (the model, the schedule and the
    plan loaded once): frames_dir/NNNN.npy (+ flows_dir/NNNN.npz, masks_dir/NNNN.npz) -> out_dir/NNNN.npy.

    previous_dir: the previous span's output, for settings.chunk_chain (its last chunk starts this span's
    first); inside the span each chunk continues from the one before.
    job: the job's name, for messages (default: the folder above out_dir's, as results/{job}/stylized/NNNN).
    cuts: the content's cuts.tsv (`artify.style.cuts`).
    shot_networks: method propagate: the job's shots table (rule train_propagate), its networks beside it.
    """
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


def _slice(arrays: dict | None, a: int, b: int) -> dict | None:
    return None if arrays is None else {k: v[a:b] for k, v in arrays.items()}


def _counted(frames, made: list):
    for frame in frames:
        yield frame
        made[0] += 1


