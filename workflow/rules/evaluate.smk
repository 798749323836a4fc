# Quality numbers of the result: warping error of output and input (the floor), style and content distance.


rule evaluate:
    input:
        stylized="results/{job}/stylized.mp4",
        content=content_video,
        meta="results/{job}/meta.json",
        schedule="results/{job}/schedule.tsv",
        keyframes="results/{job}/keyframes.tsv",
        keyframe_dir="results/{job}/keyframes",
    output:
        metrics="results/{job}/metrics.json",
        per_frame="results/{job}/per_frame.tsv",
    params:
        size=lambda wildcards: JOBS[wildcards.job]["size"],
        device=lambda wildcards: JOBS[wildcards.job]["device"],
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
        " --per-frame {output.per_frame:q} --size {params.size} --device {params.device}"
        " -o {output.metrics:q} > {log:q} 2>&1"
