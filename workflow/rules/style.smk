# Style source in (a video, an image or a folder of images), per-frame style weights out.


rule detect_scenes:
    input:
        style_source,
    output:
        "results/{job}/scenes.tsv",
    params:
        options=options("detect_scenes"),
    # Every chunk's stylization waits on the style branch: run it before per-chunk work.
    priority: 4
    log:
        "logs/detect_scenes/{job}.log",
    benchmark:
        "benchmarks/detect_scenes/{job}.tsv"
    conda:
        "../../envs/style.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "{ARTIFY} detect-scenes {input:q} -o {output:q} {params.options} > {log:q} 2>&1"


rule select_keyframes:
    input:
        style=style_source,
        scenes="results/{job}/scenes.tsv",
    output:
        table="results/{job}/keyframes.tsv",
        frames=directory("results/{job}/keyframes"),
        sheet=report(
            "results/{job}/keyframes.png",
            caption="../report/keyframes.rst",
            category="Style",
            labels={"job": "{job}", "figure": "keyframes"},
        ),
    params:
        options=options("select_keyframes"),
    # Every chunk's stylization waits on the style branch: run it before per-chunk work.
    priority: 4
    log:
        "logs/select_keyframes/{job}.log",
    benchmark:
        "benchmarks/select_keyframes/{job}.tsv"
    conda:
        "../../envs/style.yaml"
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "{ARTIFY} select-keyframes {input.style:q} --scenes {input.scenes:q} --out-dir {output.frames:q}"
        " --contact-sheet {output.sheet:q} -o {output.table:q} {params.options} > {log:q} 2>&1"


rule plan_schedule:
    input:
        keyframes="results/{job}/keyframes.tsv",
        meta="results/{job}/meta.json",
        cuts="results/{job}/cuts.tsv",
    output:
        table="results/{job}/schedule.tsv",
        plot=report(
            "results/{job}/schedule.png",
            caption="../report/schedule.rst",
            category="Style",
            labels={"job": "{job}", "figure": "schedule"},
        ),
    params:
        options=options("plan_schedule"),
    # Every chunk's stylization waits on the style branch: run it before per-chunk work.
    priority: 4
    log:
        "logs/plan_schedule/{job}.log",
    benchmark:
        "benchmarks/plan_schedule/{job}.tsv"
    conda:
        "../../envs/style.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "{ARTIFY} plan-schedule --keyframes {input.keyframes:q} --meta {input.meta:q} --cuts {input.cuts:q}"
        " --plot {output.plot:q}"
        " -o {output.table:q} {params.options} > {log:q} 2>&1"
