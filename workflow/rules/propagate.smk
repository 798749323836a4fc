# Method propagate (artify/methods/propagate.py): each shot's keyframes stylized by the keyframe method and a
# small network trained on them, once per job (a `{job}.perframe` baseline shares its job's: `baseline_of`).
# Two rules, each with its own settings (artify/settings.py STAGES) and its own benchmark file (both count in the
# job's metrics.json): propagate_keyframes picks and stylizes the keyframes, train_propagate trains on them, so a
# change to a training setting reruns the training alone. Their work is cached in results/{job}/propagate/ per
# keyframe (keyframe_NNNNNN.npz) and per shot (shot_NNNNNN.pt): a rerun redoes only the keyframes and shots whose
# inputs changed, and a killed training resumes from its own settings' state (shot_NNNNNN.pt.state.pt). Each
# rule's table is written last: shot_keyframes.tsv lists each keyframe file with its sha256 (a keyframe stylized
# again changes it, so the training reruns); rule stylize_chunk only applies the networks shots.tsv lists.


rule propagate_keyframes:
    input:
        frames=span_folders("frames"),
        chunks="results/{job}/chunks.tsv",
        cuts="results/{job}/cuts.tsv",
        schedule="results/{job}/schedule.tsv",
        keyframes="results/{job}/keyframes.tsv",
        keyframe_dir="results/{job}/keyframes",
    output:
        "results/{job}/propagate/shot_keyframes.tsv",
    params:
        options=options("propagate_keyframes"),
    threads: 2
    log:
        "logs/propagate_keyframes/{job}.log",
    benchmark:
        "benchmarks/propagate_keyframes/{job}.tsv"
    conda:
        "../../envs/stylize.yaml"
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 240 * attempt,
        gpu=gpu_count,  # 1 unless the job's device is cpu
    shell:
        "{ARTIFY} propagate-keyframes {input.frames:q} --chunks {input.chunks:q} --cuts {input.cuts:q}"
        " --schedule {input.schedule:q} --keyframes {input.keyframes:q} --keyframe-dir {input.keyframe_dir:q}"
        " --threads {threads} -o {output:q} {params.options} > {log:q} 2>&1"


rule train_propagate:
    input:
        frames=span_folders("frames"),
        chunks="results/{job}/chunks.tsv",
        shot_keyframes="results/{job}/propagate/shot_keyframes.tsv",
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
        "{ARTIFY} train-propagate {input.frames:q} --chunks {input.chunks:q}"
        " --shot-keyframes {input.shot_keyframes:q} --threads {threads} -o {output:q} {params.options} > {log:q} 2>&1"
