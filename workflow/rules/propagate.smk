# Method propagate (artify/methods/propagate.py): each shot's keyframes stylized by the keyframe method and a
# small network trained on them, once per job (a `{job}.perframe` baseline shares its job's: `baseline_of`).
# One rule per job whose work is cached per keyframe (keyframe_NNNNNN.npz) and per shot (shot_NNNNNN.pt) in
# results/{job}/propagate/: a rerun for changed settings redoes only the keyframes and shots whose inputs
# changed, and a killed training resumes from its own settings' state (shot_NNNNNN.pt.state.pt). The rule's
# output, shots.tsv, is written last; rule stylize_chunk only applies the networks it lists.


rule train_propagate:
    input:
        frames=span_folders("frames"),
        chunks="results/{job}/chunks.tsv",
        cuts="results/{job}/cuts.tsv",
        schedule="results/{job}/schedule.tsv",
        keyframes="results/{job}/keyframes.tsv",
        keyframe_dir="results/{job}/keyframes",
    output:
        "results/{job}/propagate/shots.tsv",
    params:
        options=options("train_propagate"),
    threads: 2
    log:
        "logs/train_propagate/{job}.log",
    benchmark:
        "benchmarks/train_propagate/{job}.tsv"
    conda:
        "../../envs/stylize.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 240 * attempt,
        gpu=gpu_count,  # 1 unless the job's device is cpu
    shell:
        "{ARTIFY} train-propagate {input.frames:q} --chunks {input.chunks:q} --cuts {input.cuts:q}"
        " --schedule {input.schedule:q} --keyframes {input.keyframes:q} --keyframe-dir {input.keyframe_dir:q}"
        " --threads {threads} -o {output:q} {params.options} > {log:q} 2>&1"
