"""The cost of a job from its Snakemake benchmark files: seconds per output frame and peak memory per stage.

Light on purpose (no torch): the stage_times rule and the benchmark script import only this.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from artify.atomic import atomic_write_text
from artify.methods.registry import METHODS, needs


def json_float(x) -> float | None:
    """Plain float for JSON; NaN (undefined) becomes None."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def read_benchmark(path) -> dict:
    """One Snakemake benchmark file -> {"s": wall seconds, "max_rss": peak resident MB (NaN if not measured)}.

    Snakemake writes a header line and one line per repeat (s, h:m:s, max_rss, max_vms, ..., cpu_time); a job
    too short to be sampled has "-" or "NA" for the memory columns. Repeats are averaged (s) or maxed (rss).
    """
    table = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
    if "s" not in table.columns or table.empty:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column or no rows)")
    rss = pd.to_numeric(table["max_rss"], errors="coerce") if "max_rss" in table.columns else pd.Series([np.nan])
    return {"s": float(pd.to_numeric(table["s"]).mean()), "max_rss": float(rss.max()) if rss.notna().any()
            else float("nan")}


def stage_times(benchmark_files, frames: int, out_tsv=None) -> pd.DataFrame:
    """Seconds per output frame and peak memory of each stage of one job, from its Snakemake benchmark files.

    A file's stage is its folder (benchmarks/{rule}/{job}[_{chunk}].tsv); the chunks of a stage add up.
    Columns: stage, jobs (files), seconds, seconds_per_frame (seconds / frames), max_rss_mb (the largest of
    the stage's jobs; NaN when none was sampled). Written as TSV when out_tsv is given.
    """
    if frames < 1:
        raise ValueError(f"stage times need the number of frames (>= 1), got {frames}")
    rows: dict[str, dict] = {}
    for path in benchmark_files:
        stage = Path(path).parent.name
        b = read_benchmark(path)
        row = rows.setdefault(stage, {"stage": stage, "jobs": 0, "seconds": 0.0, "rss": []})
        row["jobs"] += 1
        row["seconds"] += b["s"]
        if not math.isnan(b["max_rss"]):
            row["rss"].append(b["max_rss"])
    table = pd.DataFrame([{"stage": r["stage"], "jobs": r["jobs"], "seconds": r["seconds"],
                           "max_rss_mb": max(r["rss"]) if r["rss"] else float("nan")} for r in rows.values()],
                         columns=["stage", "jobs", "seconds", "max_rss_mb"])
    table.insert(3, "seconds_per_frame", table["seconds"] / frames)
    if out_tsv is not None:
        atomic_write_text(out_tsv, table.to_csv(sep="\t", index=False))
    return table


def cost_metrics(stage_table: pd.DataFrame) -> dict:
    """metrics.json's cost keys from `stage_times`: per-stage and total seconds per frame, peak memory (MB)."""
    per_stage = {r.stage: {"seconds_per_frame": json_float(r.seconds_per_frame), "seconds": json_float(r.seconds),
                           "jobs": int(r.jobs), "max_rss_mb": json_float(r.max_rss_mb)}
                 for r in stage_table.itertuples()}
    rss = stage_table["max_rss_mb"].dropna()
    return {"seconds_per_frame": json_float(stage_table["seconds_per_frame"].sum()),
            "peak_memory_mb": json_float(rss.max()) if len(rss) else None,
            "stages": per_stage}


# ---------------------------------------------------------------------------------------- sizing the spans

# What one job of a per-span stage costs, at 256x144 (scaled by the pixels at other sizes): seconds before its
# chunks' own work (process start, imports, model load, the network's first-call costs) and seconds per frame.
# The stylization's are each method's own (`Method.costs` in artify.methods.registry); here the other per-span
# stages'. cpu: measured with `python -m bench.long fixed` (CPU seconds, one thread, on the shared 2-core
#   development VM; the pipeline's default settings): start-up 2.7-3.0 s for every method, 4.0 s for a whole
#   arbitrary job by difference of 1- and 3-chunk spans of 48 frames; per frame gatys 13.9 s, segmented 26.4 s,
#   arbitrary 0.055 s (the pretrained Magenta network with its flow blend, reading and writing the frames;
#   AdaIN's width-0.5 decoder costs 0.37 s). Rounded up to 5 s fixed.
# cuda: estimated, not measured (no GPU was available): fixed = 5 s + 3 s of CUDA start-up; per frame from the
#   methods' arithmetic on a current datacenter GPU, with reading and writing the frames. Flow (OpenCV DIS)
#   and the motion segmenter run on the CPU either way (their figures only size time limits).
STAGE_COSTS = {
    "cpu": {"flow": (3.0, 0.02), "segment": (3.0, 0.1)},
    "cuda": {"flow": (3.0, 0.02), "segment": (8.0, 0.1)},
}
FIXED_SHARE = 0.05  # a span's fixed cost is meant to be at most this share of its work: half the 10 % limit
SPREAD_SPANS = 16  # a short video is cut into this many spans (jobs that can run at once) where it can ...
LONG_SPAN = 960  # ... up to spans of this many frames (40 s at 24 fps: a few hundred jobs for a feature film)
SPAN_BYTES = 4 << 30  # most bytes of extracted frames one span holds on disk (spans of a fast method on a GPU)


def job_cost(stage: str, device: str, pixels: int) -> tuple[float, float]:
    """(fixed seconds, seconds per frame) of one job of `stage` (a method, "flow" or "segment") on `device`
    (cpu or cuda) at `pixels` pixels a frame."""
    fixed, per_frame = METHODS[stage].costs[device] if stage in METHODS else STAGE_COSTS[device][stage]
    return fixed, per_frame * pixels / (256 * 144)


def auto_span_frames(total: int, chunk_frames: int, method: str, device: str, width: int, height: int) -> int:
    """Frames per span for `span_frames: 0`: long enough that the stylization job's fixed cost stays under
    FIXED_SHARE of its work; otherwise SPREAD_SPANS spans of a short video (parallel jobs), spans of
    LONG_SPAN frames on a long one (jobs linear in the length, temporary frames flat); at most SPAN_BYTES of
    frames (a fast method on a GPU may not quite amortise its fixed cost on very large frames then)."""
    fixed, per_frame = job_cost(method, device, width * height)
    amortised = math.ceil(fixed / (FIXED_SHARE * per_frame))
    spread = min(math.ceil(total / SPREAD_SPANS), LONG_SPAN)
    return max(chunk_frames, min(max(amortised, spread), SPAN_BYTES // (width * height * 3)))


def span_runtime_minutes(stage: str, device: str, frames: int, size: int) -> int:
    """A generous time limit for one span job (cluster `runtime`): three times the estimate at `size` x `size`
    pixels (no frame of a `size` long side is larger), plus ten minutes."""
    fixed, per_frame = job_cost(stage, device, size * size)
    return math.ceil(3 * (fixed + frames * per_frame) / 60) + 10


# ----------------------------------------------------------------------------- which benchmark files a job costs

# The rules whose benchmark files make up a job's cost: once per job, and once per span.
JOB_STAGES = ("probe", "detect_cuts", "plan_chunks", "detect_scenes", "select_keyframes", "plan_schedule", "assemble")
SPAN_STAGES = ("extract_frames", "flow_chunk", "segment_chunk", "stylize_chunk")


def benchmark_files(job: str, jobs: dict[str, dict], deflickered: dict[str, str], spans: Callable[[str], list[int]],
                    trained_as: Callable[[str], str], root: str = "benchmarks") -> list[str]:
    """The Snakemake benchmark files ({root}/{rule}/{job}[_{span}].tsv) of every stage that made
    results/{job}/stylized.mp4, for `stage_times`.

    jobs: the workflow's jobs ({job: settings}); deflickered: {deflicker baseline: the per-frame job it filters}
    (a deflicker baseline costs that job's stages and its own deflicker run); spans(job): the span numbers of a
    job's plan (chunks.tsv); trained_as(job): the job whose name a trained decoder is made under (a per-frame
    baseline shares its job's). Flow and mask files count only for jobs whose method needs them.
    """
    if job in deflickered:
        return benchmark_files(deflickered[job], jobs, deflickered, spans, trained_as, root) + [
            f"{root}/deflicker/{job}.tsv"]
    needed = needs(jobs[job])  # artify.methods.registry: what the job's method needs with its settings
    files = [f"{root}/{rule}/{job}.tsv" for rule in JOB_STAGES]
    if "decoder" in needed:
        files.append(f"{root}/train_arbitrary/{trained_as(job)}.tsv")
    if "shot_networks" in needed:  # method propagate: its keyframes and per-shot training
        files.append(f"{root}/train_propagate/{trained_as(job)}.tsv")
    skipped = {"flow_chunk": "flows" not in needed, "segment_chunk": "masks" not in needed}
    for rule in SPAN_STAGES:
        if not skipped.get(rule):
            files += [f"{root}/{rule}/{job}_{s:04d}.tsv" for s in spans(job)]
    return files
