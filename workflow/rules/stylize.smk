# Per chunk: optical flow on the input frames (temp), then one GPU-capable stylization job whose lossless
# output is kept, so an interrupted run resumes from the chunks already done.


rule flow_chunk:
    input:
        frames_folder,
    output:
        temp("results/{job}/chunks/flow_{chunk}.npz"),
    params:
        options=options("flow_chunk"),
    priority: 2
    threads: 1
    log:
        "logs/flow_chunk/{job}_{chunk}.log",
    benchmark:
        "benchmarks/flow_chunk/{job}_{chunk}.tsv"
    conda:
        "../../envs/stylize.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    shell:
        "{ARTIFY} flow-chunk {input:q}/{wildcards.chunk}.npy --threads {threads} -o {output:q} {params.options}"
        " > {log:q} 2>&1"


rule segment_chunk:
    input:
        frames_folder,
    output:
        temp("results/{job}/chunks/masks_{chunk}.npz"),
    params:
        options=options("segment_chunk"),
        device=lambda wildcards: JOBS[wildcards.job]["device"],
    priority: 2
    threads: 1
    log:
        "logs/segment_chunk/{job}_{chunk}.log",
    benchmark:
        "benchmarks/segment_chunk/{job}_{chunk}.tsv"
    conda:
        "../../envs/stylize.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
        gpu=lambda wildcards: 1 if JOBS[wildcards.job]["sam_checkpoint"] and JOBS[wildcards.job]["device"] != "cpu" else 0,
    shell:
        "{ARTIFY} segment-chunk {input:q}/{wildcards.chunk}.npy --device {params.device} --threads {threads} -o {output:q}"
        " {params.options} > {log:q} 2>&1"


def stylize_extra_inputs(wildcards):
    """Flows when the job is temporal; the previous chunk's result when chunks are chained."""
    extra, settings = {}, JOBS[wildcards.job]
    if settings["temporal"]:
        extra["flows"] = f"results/{wildcards.job}/chunks/flow_{wildcards.chunk}.npz"
    if settings["chunk_chain"] and int(wildcards.chunk) > 0:
        extra["previous"] = f"results/{wildcards.job}/chunks/stylized_{int(wildcards.chunk) - 1:04d}.npy"
    if settings["method"] == "segmented":
        extra["masks"] = f"results/{wildcards.job}/chunks/masks_{wildcards.chunk}.npz"
    if settings["method"] == "arbitrary" and not settings["adain_decoder"]:
        extra["decoder"] = f"resources/models/{baseline_of(wildcards.job)}/decoder.pth"  # rule train_arbitrary
    return extra


rule stylize_chunk:
    input:
        unpack(stylize_extra_inputs),
        frames=frames_folder,
        chunks="results/{job}/chunks.tsv",
        schedule="results/{job}/schedule.tsv",
        keyframes="results/{job}/keyframes.tsv",
        keyframe_dir="results/{job}/keyframes",
    output:
        "results/{job}/chunks/stylized_{chunk}.npy",
    params:
        options=options("stylize_chunk"),
        extra=lambda wildcards, input: " ".join(
            f"--{name} {shlex.quote(input[name])}" for name in ("flows", "previous", "decoder", "masks") if name in input.keys()
        ),
    priority: 3
    # One thread per chunk job: chunks scale across cores better than torch threads within one, and a
    # one-core job can always take a free core ahead of new extractions (see the priorities).
    threads: 1
    retries: 2  # a job killed for memory or time comes back with attempt-scaled mem_mb/runtime
    log:
        "logs/stylize_chunk/{job}_{chunk}.log",
    benchmark:
        "benchmarks/stylize_chunk/{job}_{chunk}.tsv"
    conda:
        "../../envs/stylize.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 120 * attempt,
        gpu=gpu_count,
    shell:
        "{ARTIFY} stylize-chunk {input.frames:q}/{wildcards.chunk}.npy --chunks {input.chunks:q}"
        " --job {wildcards.job} --chunk {wildcards.chunk} --schedule {input.schedule:q} --keyframes {input.keyframes:q}"
        " --keyframe-dir {input.keyframe_dir:q} {params.extra} --threads {threads} -o {output:q}"
        " {params.options} > {log:q} 2>&1"
