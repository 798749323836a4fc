# Per span (a run of chunks: artify/media/spans.py): optical flow on the input frames (temp), masks (segmented),
# then one GPU-capable stylization job whose lossless chunks are kept, so an interrupted run resumes from the
# chunks already done. One process per span and stage pays the imports and the model load once for all its
# chunks. On a cluster a span's jobs are one group job (`span_group`: one submission).

rule flow_chunk:
    input:
        frames="results/{job}/frames/{span}",
        chunks="results/{job}/chunks.tsv",
    output:
        temp(directory("results/{job}/flows/{span}")),
    params:
        options=options("flow_chunk"),
    group: span_group
    priority: 2
    threads: 1
    log:
        "logs/flow_chunk/{job}_{span}.log",
    benchmark:
        "benchmarks/flow_chunk/{job}_{span}.tsv"
    conda:
        "../../envs/stylize.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=span_runtime("flow"),
    shell:
        "{ARTIFY} flow-span {input.frames:q} --chunks {input.chunks:q} --span {wildcards.span} --threads {threads}"
        " -o {output:q} {params.options} > {log:q} 2>&1"


rule segment_chunk:
    input:
        frames="results/{job}/frames/{span}",
        chunks="results/{job}/chunks.tsv",
        cuts="results/{job}/cuts.tsv",
    output:
        masks=temp(directory("results/{job}/masks/{span}")),
        foreground="results/{job}/foreground/{span}.tsv",  # each chunk's foreground share, for metrics.json
    params:
        options=options("segment_chunk"),
        device=lambda wildcards: JOBS[wildcards.job]["device"],
    group: span_group
    priority: 2
    threads: 1
    log:
        "logs/segment_chunk/{job}_{span}.log",
    benchmark:
        "benchmarks/segment_chunk/{job}_{span}.tsv"
    conda:
        "../../envs/stylize.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        runtime=span_runtime("segment"),
        gpu=lambda wildcards: 1 if JOBS[wildcards.job]["sam_checkpoint"] and JOBS[wildcards.job]["device"] != "cpu" else 0,
    shell:
        "{ARTIFY} segment-span {input.frames:q} --chunks {input.chunks:q} --span {wildcards.span}"
        " --cuts {input.cuts:q} --device {params.device} --threads {threads} --foreground {output.foreground:q}"
        " -o {output.masks:q} {params.options} > {log:q} 2>&1"


def stylize_extra_inputs(wildcards):
    """Flows when the job is temporal; the previous span's result when chunks are chained."""
    extra, settings = {}, JOBS[wildcards.job]
    needed = needs(settings)  # artify.methods.registry: what the job's method needs with these settings
    if "flows" in needed:
        extra["flows"] = f"results/{wildcards.job}/flows/{wildcards.span}"
    if settings["chunk_chain"] and int(wildcards.span) > 0:
        extra["previous"] = f"results/{wildcards.job}/stylized/{int(wildcards.span) - 1:04d}"
    if "masks" in needed:
        extra["masks"] = f"results/{wildcards.job}/masks/{wildcards.span}"
    if "decoder" in needed:
        extra["decoder"] = f"resources/models/{baseline_of(wildcards.job)}/decoder.pth"  # rule train_arbitrary
    if "shot_networks" in needed:
        extra["shot_networks"] = f"results/{baseline_of(wildcards.job)}/propagate/shots.tsv"  # rule train_propagate
    return extra


rule stylize_chunk:
    input:
        unpack(stylize_extra_inputs),
        frames="results/{job}/frames/{span}",
        chunks="results/{job}/chunks.tsv",
        schedule="results/{job}/schedule.tsv",
        keyframes="results/{job}/keyframes.tsv",
        keyframe_dir="results/{job}/keyframes",
        cuts="results/{job}/cuts.tsv",
    output:
        directory("results/{job}/stylized/{span}"),
    params:
        options=options("stylize_chunk"),
        extra=lambda wildcards, input: " ".join(
            f"--{name.replace('_', '-')} {shlex.quote(input[name])}"
            for name in ("flows", "previous", "decoder", "masks", "shot_networks") if name in input.keys()
        ),
    group: span_group
    priority: 3
    # One thread per span job: spans scale across cores better than torch threads within one, and a
    # one-core job can always take a free core ahead of new extractions (see the priorities).
    threads: 1
    retries: 2  # a job killed for memory or time comes back with attempt-scaled mem_mb/runtime
    log:
        "logs/stylize_chunk/{job}_{span}.log",
    benchmark:
        "benchmarks/stylize_chunk/{job}_{span}.tsv"
    conda:
        "../../envs/stylize.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=span_runtime("method"),
        gpu=gpu_count,
    shell:
        "{ARTIFY} stylize-span {input.frames:q} --chunks {input.chunks:q} --span {wildcards.span} --job {wildcards.job}"
        " --schedule {input.schedule:q} --keyframes {input.keyframes:q} --keyframe-dir {input.keyframe_dir:q}"
        " --cuts {input.cuts:q}"
        " {params.extra} --threads {threads} -o {output:q} {params.options} > {log:q} 2>&1"
