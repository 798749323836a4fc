# Artify: video-to-video style transfer. Thin on purpose: configuration, validation, rules, targets.
# Usage: snakemake --cores all   (see README.md and config/README.md)
from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/video.smk"
include: "workflow/rules/style.smk"
include: "workflow/rules/stylize.smk"
include: "workflow/rules/arbitrary.smk"
include: "workflow/rules/propagate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand("results/{job}/stylized.mp4", job=JOBS),
        expand("results/{job}/metrics.json", job=JOBS),
        REPORT_TARGETS,
    default_target: True
