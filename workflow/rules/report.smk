# Material for people: a side-by-side video, a contact sheet and per-frame plots of every job in the jobs
# table, one comparison page per content video (frames, videos, plots and numbers of all its jobs and
# baselines), and a blind A/B page per content video with two jobs or more, whose answers (CSV files that
# viewers put in assessments/{content}/) are tallied into the comparison. Every item is marked for
# `snakemake --report` with a caption from workflow/report/.
import glob
import json

from artify.quality.compare import comparison_entries


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


def comparison_files(name):
    """Input function: results/{job}/{name} of every job in the comparison."""
    return lambda wildcards: [f"results/{job}/{name}" for job in COMPARISONS[wildcards.content]]


def comparison_first(wildcards):
    """The JOBS entry of the comparison's first job: the content video, and the compare/assess settings."""
    return described_by(COMPARISONS[wildcards.content][0])


ASSESSED = [content for content, members in COMPARISONS.items() if len(members) >= 2]  # have an A/B page
ANSWERS = "assessments"  # assessments/{content}/*.csv: the viewers' answers; .../keys/: every page's key


def answer_sheets(wildcards):
    return sorted(glob.glob(os.path.join(ANSWERS, glob.escape(wildcards.content), "*.csv")))


def tally_input(wildcards):
    """The comparison's tally, once viewers' answers are there."""
    return [f"results/assess/{wildcards.content}.tally.json"] if answer_sheets(wildcards) else []


def entries_json(wildcards):
    """The compare command's --entries (artify.quality.compare.comparison_entries), shell-quoted JSON."""
    return shlex.quote(json.dumps(comparison_entries(COMPARISONS[wildcards.content], JOBS, BASELINES, DEFLICKERED)))


REPORT_TARGETS = [
    *expand("results/{job}/metrics.json", job=EVALUATED),
    *expand("results/{job}/contact_sheet.png", job=primary_jobs()),
    *expand("results/{job}/{item}", job=EVALUATED, item=["side_by_side.mp4", "per-frame.png"]),
    *expand("results/comparison/{content}.{ext}", content=COMPARISONS, ext=["md", "html"]),
    *expand("results/assess/{content}.html", content=ASSESSED),
]


rule side_by_side:
    input:
        stylized="results/{job}/stylized.mp4",
        content=evaluated_content,
        meta=described("meta.json"),
        schedule=described("schedule.tsv"),
        keyframes=described("keyframes.tsv"),
        keyframe_dir=described("keyframes"),
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
        schedule=described("schedule.tsv"),
        meta=described("meta.json"),
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
        metrics=comparison_files("metrics.json"),
        videos=comparison_files("stylized.mp4"),
        per_frame=comparison_files("per-frame.tsv"),
        plots=comparison_files("per-frame.png"),
        side_by_side=comparison_files("side_by_side.mp4"),
        content=lambda wildcards: JOBS[comparison_first(wildcards)]["content"],
        meta=lambda wildcards: f"results/{comparison_first(wildcards)}/meta.json",
        tally=tally_input,
    output:
        markdown="results/comparison/{content}.md",
        html=report(
            "results/comparison/{content}.html",
            caption="../report/comparison.rst",
            category="Comparison",
            labels={"content": "{content}", "figure": "comparison"},
        ),
    params:
        entries=entries_json,
        title=lambda wildcards: shlex.quote(f"Comparison on {JOBS[comparison_first(wildcards)]['content']}"),
        options=lambda wildcards: shlex.join(stage_options("compare", JOBS[comparison_first(wildcards)])),
        tally=lambda wildcards, input: f"--tally {shlex.quote(input.tally[0])}" if input.tally else "",
        assess=lambda wildcards: (
            f"--assess-page {shlex.quote(f'results/assess/{wildcards.content}.html')}"
            if wildcards.content in ASSESSED
            else ""
        ),
        answers=lambda wildcards: shlex.quote(os.path.join(ANSWERS, wildcards.content, "")),
    log:
        "logs/compare/{content}.log",
    benchmark:
        "benchmarks/compare/{content}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{ARTIFY} compare --entries {params.entries} --title {params.title} --content {input.content:q}"
        " --meta {input.meta:q} {params.tally} {params.assess} --answers-dir {params.answers}"
        " --markdown {output.markdown:q} --html {output.html:q} {params.options} > {log:q} 2>&1"


rule assess:
    input:
        videos=comparison_files("stylized.mp4"),
        content=lambda wildcards: JOBS[comparison_first(wildcards)]["content"],
        meta=lambda wildcards: f"results/{comparison_first(wildcards)}/meta.json",
    output:
        page=report(
            "results/assess/{content}.html",
            caption="../report/assess.rst",
            category="Comparison",
            labels={"content": "{content}", "figure": "blind A/B page"},
        ),
        key="results/assess/{content}.key.json",
    params:
        videos=lambda wildcards: shlex.join(
            f"{job}=results/{job}/stylized.mp4" for job in COMPARISONS[wildcards.content]
        ),
        options=lambda wildcards: shlex.join(stage_options("assess", JOBS[comparison_first(wildcards)])),
        archive=lambda wildcards: shlex.quote(os.path.join(ANSWERS, wildcards.content, "keys")),
    log:
        "logs/assess/{content}.log",
    benchmark:
        "benchmarks/assess/{content}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    shell:
        "{ARTIFY} assess {params.videos} --content {input.content:q} --meta {input.meta:q} --key {output.key:q}"
        " --key-archive {params.archive} -o {output.page:q} {params.options} > {log:q} 2>&1"


rule tally:
    input:
        answer_sheets,
    output:
        "results/assess/{content}.tally.json",
    params:
        key_dir=lambda wildcards: shlex.quote(os.path.join(ANSWERS, wildcards.content, "keys")),
    log:
        "logs/tally/{content}.log",
    benchmark:
        "benchmarks/tally/{content}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "{ARTIFY} assess --tally {input:q} --key {params.key_dir} -o {output:q} > {log:q} 2>&1"
