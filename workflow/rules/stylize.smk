# One GPU-capable job per chunk: frames x schedule -> method -> lossless stylized chunk (kept, so an
# interrupted run resumes from the chunks already done).


rule stylize_chunk:
    input:
        frames="results/{job}/chunks/frames_{chunk}.mkv",
        meta="results/{job}/meta.json",
        chunks="results/{job}/chunks.tsv",
        schedule="results/{job}/schedule.tsv",
        keyframes="results/{job}/keyframes.tsv",
        keyframe_dir="results/{job}/keyframes",
    output:
        "results/{job}/chunks/stylized_{chunk}.mkv",
    params:
        options=options("stylize_chunk"),
    threads: 2
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
        "{ARTIFY} stylize-chunk {input.frames:q} --meta {input.meta:q} --chunks {input.chunks:q}"
        " --chunk {wildcards.chunk} --schedule {input.schedule:q} --keyframes {input.keyframes:q}"
        " --keyframe-dir {input.keyframe_dir:q} --threads {threads} -o {output:q} {params.options}"
        " > {log:q} 2>&1"
