# Content video in, stylized video out: probe, its cuts, chunk plan, frame extraction, assembly (with the content's
# audio).


checkpoint probe:
    input:
        content_video,
    output:
        "results/{job}/meta.json",
    log:
        "logs/probe/{job}.log",
    benchmark:
        "benchmarks/probe/{job}.tsv"
    conda:
        "../../envs/video.yaml"
    resources:
        mem_mb=500,
        runtime=10,
    shell:
        "{ARTIFY} probe {input:q} -o {output:q} > {log:q} 2>&1"


rule detect_cuts:
    input:
        video=content_video,
        meta="results/{job}/meta.json",
    output:
        "results/{job}/cuts.tsv",
    params:
        options=options("detect_cuts"),
    # The schedule and every span's stylization wait on the content's cuts: run it before per-chunk work.
    priority: 4
    log:
        "logs/detect_cuts/{job}.log",
    benchmark:
        "benchmarks/detect_cuts/{job}.tsv"
    conda:
        "../../envs/style.yaml"  # the same detection as detect_scenes
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "{ARTIFY} detect-cuts {input.video:q} --meta {input.meta:q} -o {output:q} {params.options} > {log:q} 2>&1"


checkpoint plan_chunks:
    input:
        "results/{job}/meta.json",
    output:
        "results/{job}/chunks.tsv",
    params:
        options=options("plan_chunks"),
    log:
        "logs/plan_chunks/{job}.log",
    benchmark:
        "benchmarks/plan_chunks/{job}.tsv"
    conda:
        "../../envs/stylize.yaml"  # spans are sized for the device torch will stylize on
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "{ARTIFY} plan-chunks --meta {input:q} -o {output:q} {params.options} > {log:q} 2>&1"


rule extract_frames:
    input:
        video=content_video,
        meta="results/{job}/meta.json",
        chunks="results/{job}/chunks.tsv",
        # Not read: decoding waits for the style branch, whose chain (scenes, keyframes, schedule) holds one
        # core for a while; otherwise the free core decodes span after span that nothing can stylize yet.
        after="results/{job}/schedule.tsv",
    output:
        temp(directory("results/{job}/frames/{span}")),
    params:
        options=options("extract_frames"),
    group: frames_group
    # Lowest of the per-chunk steps: a free core finishes started chunks before decoding new spans, so
    # temporary frames on disk stay a few spans' worth, however long the video.
    priority: 1
    log:
        "logs/extract_frames/{job}_{span}.log",
    benchmark:
        "benchmarks/extract_frames/{job}_{span}.tsv"
    conda:
        "../../envs/video.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    shell:
        "{ARTIFY} extract-frames {input.video:q} --meta {input.meta:q} --chunks {input.chunks:q}"
        " --span {wildcards.span} -o {output:q} {params.options} > {log:q} 2>&1"


rule assemble:
    input:
        stylized=span_folders("stylized"),
        content=content_video,  # its audio is copied into the output
        meta="results/{job}/meta.json",
        chunks="results/{job}/chunks.tsv",
    output:
        "results/{job}/stylized.mp4",
    wildcard_constraints:
        job=ASSEMBLED_JOB,
    params:
        options=options("assemble"),
    log:
        "logs/assemble/{job}.log",
    benchmark:
        "benchmarks/assemble/{job}.tsv"
    conda:
        "../../envs/video.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "{ARTIFY} assemble {input.stylized:q} --meta {input.meta:q} --chunks {input.chunks:q}"
        " --content {input.content:q} -o {output:q} {params.options} > {log:q} 2>&1"
