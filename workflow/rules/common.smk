# Loads and validates config + jobs table before any work; helpers that turn a job's settings into
# each stage's command-line options (so a changed setting reruns exactly the stages that read it).
import functools
import os
import shlex
import sys

sys.path.insert(0, workflow.basedir)  # the artify library lives beside the Snakefile

from artify.config import ConfigError, load_jobs, load_schema, validate_config
from artify.methods.registry import needs  # what a job's method needs (flows, masks, a trained decoder)
from artify.settings import stage_options

_schemas = os.path.join(workflow.basedir, "workflow", "schemas")
try:
    validate_config(config, load_schema(os.path.join(_schemas, "config.schema.yaml")), "config")
    JOBS = load_jobs(
        config["jobs"],
        config,
        load_schema(os.path.join(_schemas, "jobs.schema.yaml")),
        load_schema(os.path.join(_schemas, "config.schema.yaml")),
    )
except ConfigError as e:
    raise WorkflowError(f"invalid configuration: {e}") from None

# Baselines (config `baselines`): `{job}.perframe` (same settings, temporal: false) joins JOBS and runs like
# any job; `{job}.deflicker` is that output through ffmpeg's deflicker (rule deflicker), evaluated like a job.
from artify.quality.baselines import add_baselines, comparison_groups

try:
    JOBS, BASELINES, DEFLICKERED = add_baselines(JOBS)
except ConfigError as e:
    raise WorkflowError(f"invalid configuration: {config['jobs']}: {e}") from None
EVALUATED = [*JOBS, *DEFLICKERED]  # every job that gets metrics.json
COMPARISONS = comparison_groups(JOBS, DEFLICKERED)  # content stem -> the evaluated jobs on that content
# the jobs that the assemble rule makes (a deflicker baseline's stylized.mp4 comes from rule deflicker)
ASSEMBLED_JOB = r"(?![^/]*\.deflicker(?:/|$))[A-Za-z0-9][A-Za-z0-9_.-]*"


def described_by(job):
    """The JOBS entry whose content, meta, schedule, keyframes and settings describe an evaluated job."""
    return DEFLICKERED.get(job, job)


def described(name):
    """Input function: results/{J}/name of the job J that describes the evaluated job (itself, or for a
    deflicker baseline the per-frame job it filters)."""
    return lambda wildcards: f"results/{described_by(wildcards.job)}/{name}"


def evaluated_content(wildcards):
    """The content video of an evaluated job (for a deflicker baseline, that of the job it filters)."""
    return JOBS[described_by(wildcards.job)]["content"]


_PERFRAME_OF = {b["perframe"]: j for j, b in BASELINES.items() if b["perframe"] != j}


def baseline_of(job):
    """The job a `{job}.perframe` baseline was derived from (itself for any other job): what they share,
    e.g. a trained decoder, is made once, under this name."""
    return _PERFRAME_OF.get(job, job)

# Rules run the library through its command line, with the Python that runs Snakemake (so its
# environment's packages), or under --use-conda with the python of the rule's conda env.
from snakemake.settings.types import DeploymentMethod

_python = "python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method else sys.executable
ARTIFY = "PYTHONPATH={}${{PYTHONPATH:+:$PYTHONPATH}} {} -m artify".format(
    shlex.quote(workflow.basedir), shlex.quote(_python)
)

wildcard_constraints:
    job="[A-Za-z0-9][A-Za-z0-9_.-]*",
    chunk="[0-9]+",
    span="[0-9]+",


def job(wildcards):
    return JOBS[wildcards.job]


def options(stage):
    """params: function giving `stage`'s options for a job, as one shell-quoted string."""
    return lambda wildcards: shlex.join(stage_options(stage, JOBS[wildcards.job]))


def content_video(wildcards):
    return JOBS[wildcards.job]["content"]


def style_source(wildcards):
    return JOBS[wildcards.job]["style"]


@functools.lru_cache(maxsize=None)
def _read_plan(path, stamp):
    from collections import Counter

    from artify.media.chunks import read_chunks

    chunks = read_chunks(path)
    frames = Counter()
    for c in chunks:
        frames[c.span] += c.stop - c.read_start
    return chunks, dict(frames)


def read_plan(path):
    """(the chunks of a chunks.tsv (artify.media.chunks.Chunk), frames read by each span), once per version of the
    file: input and resource functions run for every job, and re-reading or re-scanning a feature film's plan
    each time made planning quadratic."""
    stat = os.stat(path)
    return _read_plan(path, (stat.st_size, stat.st_mtime_ns))


def chunk_plan(wildcards):
    """After the plan_chunks checkpoint: the job's chunks."""
    return read_plan(checkpoints.plan_chunks.get(job=wildcards.job).output[0])[0]


def span_ids(wildcards):
    return sorted({c.span for c in chunk_plan(wildcards)})


def span_folders(stage):
    """Input function: results/{job}/{stage}/NNNN, one folder per span (a span's chunks, NNNN.npy inside)."""
    return lambda wildcards: [f"results/{wildcards.job}/{stage}/{s:04d}" for s in span_ids(wildcards)]


def span_runtime(stage):
    """resources: runtime (minutes) of one span job of `stage` (a method, "flow" or "segment"), from its frames
    and artify.quality.cost's estimates (GPU figures unless the job's device is cpu: such jobs ask for a GPU), x attempt."""
    from artify.quality.cost import span_runtime_minutes

    def runtime(wildcards, attempt):
        settings, plan = JOBS[wildcards.job], f"results/{wildcards.job}/chunks.tsv"
        if not os.path.exists(plan):  # a span asked for by name before its plan exists (it is made first)
            return 60 * attempt
        frames = read_plan(plan)[1][int(wildcards.span)]
        kind = settings["method"] if stage == "method" else stage
        device = "cpu" if settings["device"] == "cpu" else "cuda"
        return span_runtime_minutes(kind, device, frames, settings["size"]) * attempt

    return runtime


def span_group(wildcards):
    """group: a span's extraction, flow, masks and stylization are one cluster job (one sbatch, not four);
    local runs ignore groups. (A group job asks for the largest of its jobs' GPUs and memory, and their runtimes
    summed: the jobs of one span run one after the other.)"""
    return f"span_{wildcards.job}_{wildcards.span}"


def frames_group(wildcards):
    """group of extract_frames: its span's (span_group), except where the job's stylization applies networks
    trained on the whole job's frames (method propagate): those rules, outside every span's group, need the
    frames before any span is stylized, and Snakemake refuses a group whose job depends on one outside it that
    depends on the group again (on a cluster, and in a dry run), so the frames are decoded in jobs of their own."""
    return None if "shot_networks" in needs(JOBS[wildcards.job]) else span_group(wildcards)


def gpu_count(wildcards):
    return 1 if JOBS[wildcards.job]["device"] in ("auto", "cuda") else 0
