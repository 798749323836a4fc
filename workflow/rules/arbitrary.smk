# The arbitrary method's AdaIN decoder, trained per job when the job asks for arbitrary_network: adain and
# configures no adain_decoder: on pairs of the job's content frames and its style keyframes (plus any
# train_images folders). On a CPU it starts only with train_on_cpu (it prints the time it expects first).
# Resumable: a killed run leaves decoder.pth.state.pt beside the output and the rerun continues from it.


def train_images(wildcards):
    return [p.strip() for p in JOBS[wildcards.job]["train_images"].split(",") if p.strip()]


rule train_arbitrary:
    input:
        content=content_video,
        keyframes="results/{job}/keyframes.tsv",
        keyframe_dir="results/{job}/keyframes",
        images=train_images,
    output:
        "resources/models/{job}/decoder.pth",
    params:
        options=options("train_arbitrary"),
        device=lambda wildcards: JOBS[wildcards.job]["device"],
        seed=lambda wildcards: JOBS[wildcards.job]["seed"],
    threads: 2
    log:
        "logs/train_arbitrary/{job}.log",
    benchmark:
        "benchmarks/train_arbitrary/{job}.tsv"
    conda:
        "../../envs/stylize.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=lambda wildcards, attempt: 240 * attempt,
        gpu=gpu_count,  # 1 unless the job's device is cpu
    shell:
        "{ARTIFY} train-arbitrary --content {input.content:q} --keyframes {input.keyframes:q}"
        " --keyframe-dir {input.keyframe_dir:q} --device {params.device} --seed {params.seed}"
        " --threads {threads} -o {output:q} {params.options} > {log:q} 2>&1"
