"""Which Snakemake benchmark files make up a job's cost (`artify.quality.cost.stage_times` reads them): the
workflow's rule names, once per job and once per span. The rules' input functions call `benchmark_files`."""
from __future__ import annotations

from typing import Callable

from artify.methods.registry import needs

# The rules whose benchmark files make up a job's cost: once per job, and once per span.
JOB_STAGES = ("probe", "detect_cuts", "plan_chunks", "detect_scenes", "select_keyframes", "plan_schedule", "assemble")
SPAN_STAGES = ("extract_frames", "flow_chunk", "segment_chunk", "stylize_chunk")
# Method propagate's rules, once per job whose networks a job applies (its own, or a per-frame baseline's job's)
PROPAGATE_STAGES = ("propagate_keyframes", "train_propagate")


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
    if "shot_networks" in needed:  # method propagate: its keyframes, then its per-shot training
        files += [f"{root}/{rule}/{trained_as(job)}.tsv" for rule in PROPAGATE_STAGES]
    skipped = {"flow_chunk": "flows" not in needed, "segment_chunk": "masks" not in needed}
    for rule in SPAN_STAGES:
        if not skipped.get(rule):
            files += [f"{root}/{rule}/{job}_{s:04d}.tsv" for s in spans(job)]
    return files
