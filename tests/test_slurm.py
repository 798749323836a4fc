"""On a real SLURM: a one-node cluster on localhost (tests/slurm/cluster.py) runs the tiny end-to-end config
with the project's SLURM profile (workflow/profiles/slurm).

Checked: the SLURM run's stylized chunks equal the local run's frame for frame (the CPU path is
deterministic); each span's extraction, flow and stylization were one sbatch job (a group job) asking for
a GPU, and no other job asked for one; a failing job makes Snakemake fail and shows the job's log. Needs Debian's slurmctld, slurmd,
slurm-client and munge and root: skipped without them, failed under CI=true (`make test` installs them).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, require_shared
from tests.slurm.cluster import LocalSlurm, SlurmUnavailable, check_available

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
PARTITION = "artify"
# two chunks, one span each (two group jobs)
TINY = {"max_frames": 8, "size": 64, "chunk_frames": 4, "chunk_overlap": 1, "span_frames": 5, "iterations": 3,
        "warm_iterations": 2}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        check_available()
    except SlurmUnavailable as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the SLURM test cannot run: {e}")
        pytest.skip(str(e))
    with LocalSlurm(tmp_path_factory.mktemp("slurm"), partition=PARTITION, gpus=2, gpu_type="fake") as c:
        yield c


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    """The project's SLURM profile with its site settings filled in for the test cluster, as a user would."""
    settings = yaml.safe_load(PROFILE.read_text())
    assert settings["executor"] == "slurm"
    settings["default-resources"]["slurm_partition"] = PARTITION
    settings.setdefault("set-resources", {}).setdefault("stylize_chunk", {})["gpu_model"] = "fake"
    settings["slurm-status-command"] = "squeue"  # no accounting database here: sacct cannot answer
    directory = tmp_path_factory.mktemp("profile")
    (directory / "config.yaml").write_text(yaml.safe_dump(settings))
    return directory


class Run:
    """A Snakemake process started in the background (the three runs of this module overlap in time:
    the SLURM runs spend most of their time waiting between status checks)."""

    def __init__(self, cluster, workdir: Path, *args, snakefile: Path = REPO / "Snakefile", slurm=True):
        self.cluster, self.workdir = cluster, workdir
        self.cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir), *args]
        if slurm:
            self.cmd += ["--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5"]
        env = dict(cluster.env)
        # the jobs run with sbatch --export=ALL: the venv's python first on their PATH as well
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        env["ARTIFY_PROGRESS"] = "0"
        self.out = open(workdir.parent / f"{workdir.name}.snakemake.out", "w+")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=self.out, stderr=subprocess.STDOUT, text=True, env=env,
                                     start_new_session=True)
        self.returncode = self.seconds = None
        self.output = ""

    def wait(self, timeout: float = 600) -> "Run":
        if self.returncode is None:
            try:
                self.returncode = self.proc.wait(timeout=max(1.0, timeout - (time.monotonic() - self.t0)))
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGINT)  # Snakemake cancels its SLURM jobs on SIGINT
                self.proc.wait(timeout=60)
                raise
            finally:
                self.seconds = self.seconds or time.monotonic() - self.t0
                self.out.seek(0)
                self.output = self.out.read()
                self.out.close()
        return self

    def check(self) -> "Run":
        self.wait()
        if self.returncode != 0:
            raise AssertionError(f"snakemake failed ({' '.join(self.cmd)}):\n{self.output[-8000:]}\n"
                                 f"{self.cluster.logs()}")
        return self


def pipeline_args(workdir: Path) -> list[str]:
    # the stylized video: every stage from probe to assemble (evaluation and reports would add minutes of
    # SLURM status polling and nothing this module checks)
    return ["results/tiny/stylized.mp4", "--configfile", str(REPO / "config/config.yaml"),
            "--config", f"jobs={workdir / 'jobs.tsv'}"]


def write_jobs(workdir: Path) -> None:
    content = require_shared("videos", "adain_cutBunny.mp4")
    style = require_shared("styles", "udnie.jpg")
    header = ["job", "content", "style", "method", *TINY]
    row = ["tiny", str(content), str(style), "gatys", *map(str, TINY.values())]
    (workdir / "jobs.tsv").write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")


THROWAWAY = """
rule on_gpu:
    output: "gpu.txt"
    threads: 1
    resources: gpu=1, mem_mb=100, runtime=5
    shell: "echo CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-none}} SLURM_JOB_ID=${{SLURM_JOB_ID:-none}} > {output}"

rule broken:
    output: "broken.txt"
    log: "logs/broken.log"
    resources: mem_mb=100, runtime=5
    shell: "echo 'artify test: this job fails on purpose' > {log}; exit 3"
"""


@pytest.fixture(scope="module")
def runs(cluster, profile, tmp_path_factory):
    """Three Snakemake runs at once: the tiny config locally and on SLURM, and a throwaway workflow on SLURM
    (no Artify code: a GPU rule and a failing rule, --keep-going so the GPU rule finishes either way)."""
    base = tmp_path_factory.mktemp("runs")
    local, remote, throwaway = base / "local", base / "slurm", base / "throwaway"
    for d in (local, remote, throwaway):
        d.mkdir()
    for d in (local, remote):
        write_jobs(d)
    (throwaway / "Snakefile").write_text(THROWAWAY)
    started = {
        "throwaway": Run(cluster, throwaway, "gpu.txt", "broken.txt", "--keep-going", "--profile", str(profile),
                         snakefile=throwaway / "Snakefile"),
        "slurm": Run(cluster, remote, *pipeline_args(remote), "--profile", str(profile), "--jobs", "4"),
        "local": Run(cluster, local, *pipeline_args(local), "--cores", "2", slurm=False),
    }
    t0 = time.monotonic()
    while any(run.proc.poll() is None for run in started.values()) and time.monotonic() - t0 < 600:
        for run in started.values():
            if run.seconds is None and run.proc.poll() is not None:
                run.seconds = time.monotonic() - run.t0
        time.sleep(0.5)
    for run in started.values():
        run.wait()
    print(f"\nSLURM test runs: " + ", ".join(f"{k} {r.seconds:.0f} s" for k, r in started.items())
          + f"; all three {time.monotonic() - t0:.0f} s")
    return started


def test_gpu_job_and_failing_job(cluster, runs):
    """A gpu=1 rule runs in a SLURM job with a GPU; a failing job fails the run and its log is shown."""
    run = runs["throwaway"].wait()
    cuda, job_id = (run.workdir / "gpu.txt").read_text().split()
    assert cuda == "CUDA_VISIBLE_DEVICES=0" and job_id != "SLURM_JOB_ID=none"

    assert run.returncode != 0
    assert "Error in rule broken" in run.output
    assert "artify test: this job fails on purpose" in run.output, run.output[-4000:]  # the log's text, not its path
    assert not (run.workdir / "broken.txt").exists()
    states = {j["Comment"]: j["JobState"] for j in cluster.jobs() if j.get("WorkDir") == str(run.workdir)}
    assert states == {"rule_on_gpu": "COMPLETED", "rule_broken": "FAILED"}, states


def chunk_frames(workdir: Path) -> dict[str, "object"]:
    from artify.media.video import read_frames

    files = sorted((workdir / "results/tiny/stylized").glob("*/*.npy"))
    return {f.name: read_frames(f) for f in files}


def test_tiny_pipeline_on_slurm_equals_local_run(cluster, runs):
    import numpy as np

    local, remote = runs["local"].check().workdir, runs["slurm"].check().workdir
    # outputs and logs land in the working directory, not in the repository
    assert (remote / "results/tiny/stylized.mp4").is_file() and (remote / "logs/stylize_chunk").is_dir()
    ours, theirs = chunk_frames(remote), chunk_frames(local)
    assert ours.keys() == theirs.keys() and [f.split(".")[0] for f in ours] == ["0000", "0001"]
    for name in ours:
        assert ours[name].shape == theirs[name].shape and np.array_equal(ours[name], theirs[name]), name
    for small in ("meta.json", "chunks.tsv", "schedule.tsv", "keyframes.tsv"):
        assert (remote / "results/tiny" / small).read_bytes() == (local / "results/tiny" / small).read_bytes(), small


def test_each_span_was_one_submission_asking_slurm_for_a_gpu(cluster, runs):
    from artify.media.chunks import read_chunks

    remote = runs["slurm"].check().workdir
    jobs = [j for j in cluster.jobs() if j.get("WorkDir") == str(remote)]
    # a span's group job is named span_{job}_{span} followed by its rules
    names = [j["Comment"].removeprefix("rule_").split("_wildcards_")[0] for j in jobs]
    spans = read_chunks(remote / "results/tiny/chunks.tsv")[-1].span + 1
    groups = sorted(n for n in names if n.startswith("span_"))
    assert groups == [f"span_tiny_{s:04d}_extract_frames_flow_chunk_stylize_chunk" for s in range(spans)], names
    # every other rule's job went through sbatch on its own, from this working directory
    assert sorted(n for n in names if not n.startswith("span_")) == [
        "assemble", "detect_cuts", "detect_scenes", "plan_chunks", "plan_schedule", "probe", "select_keyframes"], names
    for j, name in zip(jobs, names):
        assert j["JobState"] == "COMPLETED" and j["Partition"] == PARTITION, j
        if name.startswith("span_"):
            # the profile's gpu_model for stylize_chunk reached the group's sbatch (--gpus=fake:1): one GPU
            assert j["TresPerJob"] == "gres:gpu:fake:1", j
        else:
            assert "gpu" not in j.get("TresPerJob", ""), j
