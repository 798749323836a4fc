# Quality numbers of the result: warping error of output and input (the floor), style and content distance,
# flicker (at the size and on the frames the job's eval_size and eval_frames give), and the cost (seconds per
# frame, peak memory) from the benchmark files; the deflicker baseline.
from types import SimpleNamespace

from artify.quality.cost import benchmark_files


def described(name):
    """Input function: results/{J}/name of the job J that describes the evaluated job (itself, or for a
    deflicker baseline the per-frame job it filters)."""
    return lambda wildcards: f"results/{described_by(wildcards.job)}/{name}"


def evaluated_content(wildcards):
    return JOBS[described_by(wildcards.job)]["content"]


def plan_spans(job):
    """The span numbers of a job's plan (after the plan_chunks checkpoint)."""
    return span_ids(SimpleNamespace(job=job))


def stage_benchmarks(wildcards):
    """The benchmark files of every stage that made results/{job}/stylized.mp4 (artify.quality.cost.benchmark_files)."""
    return benchmark_files(wildcards.job, JOBS, DEFLICKERED, plan_spans, baseline_of)


rule stage_times:
    input:
        chunks=described("chunks.tsv"),
        benchmarks=stage_benchmarks,
    output:
        "results/{job}/stage_times.tsv",
    log:
        "logs/stage_times/{job}.log",
    benchmark:
        "benchmarks/stage_times/{job}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "{ARTIFY} stage-times {input.benchmarks:q} --chunks {input.chunks:q} -o {output:q} > {log:q} 2>&1"


rule deflicker:
    input:
        lambda wildcards: f"results/{DEFLICKERED[wildcards.job + '.deflicker']}/stylized.mp4",
    output:
        "results/{job}.deflicker/stylized.mp4",
    params:
        options=options("deflicker"),
        crf=lambda wildcards: JOBS[wildcards.job]["crf"],
    log:
        "logs/deflicker/{job}.deflicker.log",
    benchmark:
        "benchmarks/deflicker/{job}.deflicker.tsv"
    conda:
        "../../envs/video.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    shell:
        "{ARTIFY} deflicker {input:q} --crf {params.crf} -o {output:q} {params.options} > {log:q} 2>&1"


def foreground_tables(wildcards):
    """Method segmented: the foreground share of each span's chunks (rule segment_chunk), for metrics.json."""
    job = described_by(wildcards.job)
    if "masks" not in needs(JOBS[job]):
        return []
    return [f"results/{job}/foreground/{s:04d}.tsv" for s in plan_spans(job)]


rule evaluate:
    input:
        stylized="results/{job}/stylized.mp4",
        content=evaluated_content,
        meta=described("meta.json"),
        schedule=described("schedule.tsv"),
        keyframes=described("keyframes.tsv"),
        keyframe_dir=described("keyframes"),
        stage_times="results/{job}/stage_times.tsv",
        foreground=foreground_tables,
    output:
        metrics=report(
            "results/{job}/metrics.json",
            caption="../report/metrics.rst",
            category="Metrics",
            labels={"job": "{job}", "figure": "metrics.json"},
        ),
        per_frame=report(
            "results/{job}/per-frame.tsv",
            caption="../report/per_frame_tsv.rst",
            category="Metrics",
            labels={"job": "{job}", "figure": "per-frame.tsv"},
        ),
    params:
        size=lambda wildcards: JOBS[described_by(wildcards.job)]["size"],
        device=lambda wildcards: JOBS[described_by(wildcards.job)]["device"],
        options=lambda wildcards: shlex.join(stage_options("evaluate", JOBS[described_by(wildcards.job)])),
    threads: 2
    log:
        "logs/evaluate/{job}.log",
    benchmark:
        "benchmarks/evaluate/{job}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{ARTIFY} evaluate {input.stylized:q} --content {input.content:q} --meta {input.meta:q}"
        " --schedule {input.schedule:q} --keyframes {input.keyframes:q} --keyframe-dir {input.keyframe_dir:q}"
        " --per-frame {output.per_frame:q} --stage-times {input.stage_times:q} --size {params.size}"
        " --device {params.device} --foreground {input.foreground:q} {params.options}"
        " -o {output.metrics:q} > {log:q} 2>&1"
