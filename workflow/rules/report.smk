# Material for people: a side-by-side video, a contact sheet and per-frame plots of every job in the jobs
# table, and one comparison table per content video (all its jobs and baselines, with ratios). Every item
# is marked for `snakemake --report` with a caption from workflow/report/.
import json


def primary_jobs():
    """The jobs of the jobs table (not the baselines derived from them)."""
    derived = {b["perframe"] for b in BASELINES.values()} | set(DEFLICKERED)
    return [j for j in JOBS if j not in derived]


def per_frame_tables(wildcards):
    """(label, per-frame.tsv) of the job first, then of its baselines."""
    tables = [(wildcards.job, f"results/{wildcards.job}/per-frame.tsv")]
    for kind, name in BASELINES.get(wildcards.job, {}).items():
        tables.append((f"{'per-frame' if kind == 'perframe' else kind} baseline", f"results/{name}/per-frame.tsv"))
    return tables


def comparison_metrics(wildcards):
    return [f"results/{job}/metrics.json" for job in COMPARISONS[wildcards.content]]


def comparison_entries(wildcards):
    """The compare command's --entries: each job of the comparison, its kind, own baselines and settings
    (the fields in which it differs from the comparison's first job)."""
    members = COMPARISONS[wildcards.content]
    kinds = {b["perframe"]: "per-frame" for b in BASELINES.values()} | {d: "deflicker" for d in DEFLICKERED}
    first = JOBS[described_by(members[0])]
    entries = []
    for job in members:
        kind = kinds.get(job, "result")
        settings = JOBS[described_by(job)]
        differ = [f"{k}={v}" for k, v in settings.items() if k not in ("content", "style", "baselines", "jobs")
                  and first.get(k) != v]
        described = f"{settings['method']}" + (f"; {', '.join(differ)}" if differ else "")
        if job in DEFLICKERED:
            described += f"; deflicker size={settings['deflicker_size']} mode={settings['deflicker_mode']}"
        entries.append({"job": job, "kind": kind, "path": f"results/{job}/metrics.json",
                        "settings": described, **BASELINES.get(job, {})})
    return shlex.quote(json.dumps(entries))


REPORT_TARGETS = [
    *expand("results/{job}/metrics.json", job=EVALUATED),
    *expand("results/{job}/{item}", job=primary_jobs(), item=["side_by_side.mp4", "contact_sheet.png",
                                                              "per-frame.png"]),
    *expand("results/comparison/{content}.{ext}", content=COMPARISONS, ext=["md", "html"]),
]


rule side_by_side:
    input:
        stylized="results/{job}/stylized.mp4",
        content=content_video,
        meta="results/{job}/meta.json",
        schedule="results/{job}/schedule.tsv",
        keyframes="results/{job}/keyframes.tsv",
        keyframe_dir="results/{job}/keyframes",
    output:
        report(
            "results/{job}/side_by_side.mp4",
            caption="../report/side_by_side.rst",
            category="Videos",
            labels={"job": "{job}", "figure": "side by side"},
        ),
    log:
        "logs/side_by_side/{job}.log",
    benchmark:
        "benchmarks/side_by_side/{job}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=1500,
        runtime=30,
    shell:
        "{ARTIFY} side-by-side {input.stylized:q} --content {input.content:q} --meta {input.meta:q}"
        " --schedule {input.schedule:q} --keyframes {input.keyframes:q} --keyframe-dir {input.keyframe_dir:q}"
        " -o {output:q} > {log:q} 2>&1"


rule contact_sheet:
    input:
        stylized="results/{job}/stylized.mp4",
        content=content_video,
        meta="results/{job}/meta.json",
    output:
        report(
            "results/{job}/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Frames",
            labels={"job": "{job}", "figure": "contact sheet"},
        ),
    params:
        options=options("contact_sheet"),
    log:
        "logs/contact_sheet/{job}.log",
    benchmark:
        "benchmarks/contact_sheet/{job}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{ARTIFY} contact-sheet {input.stylized:q} --content {input.content:q} --meta {input.meta:q}"
        " -o {output:q} {params.options} > {log:q} 2>&1"


rule plot_per_frame:
    input:
        tables=lambda wildcards: [path for _, path in per_frame_tables(wildcards)],
        schedule="results/{job}/schedule.tsv",
        meta="results/{job}/meta.json",
    output:
        report(
            "results/{job}/per-frame.png",
            caption="../report/per_frame.rst",
            category="Metrics",
            labels={"job": "{job}", "figure": "per-frame plots"},
        ),
    params:
        tables=lambda wildcards: shlex.join(f"{label}={path}" for label, path in per_frame_tables(wildcards)),
    log:
        "logs/plot_per_frame/{job}.log",
    benchmark:
        "benchmarks/plot_per_frame/{job}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{ARTIFY} plot-per-frame {params.tables} --schedule {input.schedule:q} --meta {input.meta:q}"
        " -o {output:q} > {log:q} 2>&1"


rule compare:
    input:
        comparison_metrics,
    output:
        markdown="results/comparison/{content}.md",
        html=report(
            "results/comparison/{content}.html",
            caption="../report/comparison.rst",
            category="Comparison",
            labels={"content": "{content}", "figure": "comparison"},
        ),
    params:
        entries=comparison_entries,
        title=lambda wildcards: shlex.quote(
            f"Comparison on {JOBS[described_by(COMPARISONS[wildcards.content][0])]['content']}"
        ),
    log:
        "logs/compare/{content}.log",
    benchmark:
        "benchmarks/compare/{content}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "{ARTIFY} compare --entries {params.entries} --title {params.title} --markdown {output.markdown:q}"
        " --html {output.html:q} > {log:q} 2>&1"
