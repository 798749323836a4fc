"""How many SLURM jobs a long input submits: a real one-node SLURM on localhost (tests/slurm/cluster.py), the
project's SLURM profile with its site settings filled in, a testsrc2 clip of --minutes (made with ffmpeg).

    .venv/bin/python -m bench.slurm_submissions [--minutes 120] [--watch 300]

1. `snakemake --profile ... -n`: what the SLURM executor would submit for the whole job (group jobs + single
   jobs), once probe and plan_chunks have run (before that, the plan is unknown: two more submissions).
2. The same run for real, `--jobs 1000`: it submits the style side, then every span's group job as soon as
   the schedule exists; the sbatch jobs this working directory received are counted (squeue/scontrol) until
   the count stops growing or --watch seconds pass, then Snakemake is interrupted (it cancels its jobs).
Needs root and Debian's slurmctld, slurmd, slurm-client and munge (`make slurm-packages`).
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.long import SHARED, prepared  # noqa: E402
from tests.slurm.cluster import LocalSlurm  # noqa: E402


def submissions(dry_run_output: str) -> tuple[int, dict[str, int]]:
    """Group jobs, and single jobs by rule, in a SLURM dry run's listing."""
    groups = len(re.findall(r"^\[[^\]]+\] Group job ", dry_run_output, re.M))
    singles: dict[str, int] = {}
    for rule in re.findall(r"^rule (\w+):", dry_run_output, re.M):
        singles[rule] = singles.get(rule, 0) + 1
    return groups, singles


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=120)
    p.add_argument("--method", default="gatys")
    p.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    p.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "artify-bench-long"))
    p.add_argument("--watch", type=float, default=300, help="most seconds to watch the real submission")
    a = p.parse_args(argv)

    workdir = prepared(Path(a.root), a.minutes, a.method, Path(a.style))
    from artify.media.chunks import read_chunks

    plan = read_chunks(workdir / "results/long/chunks.tsv")
    print(f"{a.minutes:g} min: {len(plan)} chunks in {plan[-1].span + 1} spans", flush=True)
    with LocalSlurm(Path(tempfile.mkdtemp(prefix="artify-slurm-")), partition="artify", gpus=2,
                    gpu_type="fake") as cluster:
        settings = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
        settings["default-resources"]["slurm_partition"] = "artify"
        settings["slurm-status-command"] = "squeue"
        profile = workdir / "slurm-profile"
        profile.mkdir(exist_ok=True)
        (profile / "config.yaml").write_text(yaml.safe_dump(settings))
        env = dict(cluster.env, PATH=f"{Path(sys.executable).parent}:{cluster.env['PATH']}", ARTIFY_PROGRESS="0")
        base = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
                "--configfile", str(REPO / "config/config.yaml"), "--config", f"jobs={workdir / 'jobs.tsv'}",
                "--profile", str(profile)]

        t0 = time.perf_counter()
        dry = subprocess.run([*base, "-n"], capture_output=True, text=True, env=env)
        if dry.returncode != 0:
            sys.exit(f"dry run failed:\n{dry.stdout[-3000:]}\n{dry.stderr[-3000:]}")
        groups, singles = submissions(dry.stdout)
        print(f"dry run under the SLURM profile ({time.perf_counter() - t0:.1f} s): {groups} group jobs + "
              f"{sum(singles.values())} single jobs {singles} = {groups + sum(singles.values())} submissions "
              f"(+ probe and plan_chunks, already run here)", flush=True)

        out = open(workdir / "slurm-run.out", "w")
        proc = subprocess.Popen([*base, "--jobs", "1000", "--slurm-init-seconds-before-status-checks", "2",
                                 "results/long/stylized.mp4"], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        seen, last_change, t0 = 0, time.perf_counter(), time.perf_counter()
        try:
            while proc.poll() is None and time.perf_counter() - t0 < a.watch:
                count = len([j for j in cluster.jobs() if j.get("WorkDir") == str(workdir)])
                if count != seen:
                    seen, last_change = count, time.perf_counter()
                    print(f"  {time.perf_counter() - t0:6.1f} s: {seen} sbatch jobs from this working directory",
                          flush=True)
                elif seen > groups and time.perf_counter() - last_change > 30:
                    break
                time.sleep(2)
        finally:
            os.killpg(proc.pid, signal.SIGINT)  # Snakemake cancels the jobs it submitted
            proc.wait(timeout=120)
            out.close()
        jobs = [j for j in cluster.jobs() if j.get("WorkDir") == str(workdir)]
        names = [j["Comment"].removeprefix("rule_").split("_wildcards_")[0] for j in jobs]
        spans = [n for n in names if n.startswith("span_")]
        print(f"real submission: {len(jobs)} sbatch jobs: {len(spans)} span group jobs "
              f"({len(set(spans))} distinct) and {sorted(n for n in names if not n.startswith('span_'))}")
        subprocess.run(["scancel", "--partition", "artify"], env=cluster.env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
