"""Chunk parallelism: the stylization stage with one worker against two, on the same chunks.

    .venv/bin/python -m bench.parallel_chunks [--chunks 4] [--size 128] [--iterations 20]

Prepares one job's chunks once (probe, plan, extract, keyframes, schedule; frames kept with --notemp),
then reruns only the stylize_chunk jobs, each with one thread (--set-threads stylize_chunk=1), under
`--cores 1` and under `--cores 2`, and prints the wall times, the sum of the jobs' own seconds (from the
benchmark files) and the speedup. CPU only (device cpu), so the two runs do the same arithmetic.
Refuses to run on a busy machine (1-minute load above --max-load) unless --force: the figure would be
the other processes' as much as ours.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str) -> float:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(REPO / "config/config.yaml"), "--config", f"jobs={workdir / 'jobs.tsv'}",
           "--notemp", "--quiet", "rules", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, ARTIFY_PROGRESS="0"))
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"snakemake failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def job_seconds(workdir: Path) -> list[float]:
    out = []
    for f in sorted((workdir / "benchmarks/stylize_chunk").glob("*.tsv")):
        with open(f) as fh:
            out.append(float(next(csv.DictReader(fh, delimiter="\t"))["s"]))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--content", default=str(REPO.parent / "shared/data/videos/adain_cutBunny.mp4"))
    p.add_argument("--style", default=str(REPO.parent / "shared/data/styles/udnie.jpg"))
    p.add_argument("--chunks", type=int, default=4)
    p.add_argument("--chunk-frames", type=int, default=4)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warm-iterations", type=int, default=10)
    p.add_argument("--workdir", help="keep the runs here (default: a temporary folder)")
    p.add_argument("--max-load", type=float, default=0.5)
    p.add_argument("--force", action="store_true", help="run even on a busy machine")
    a = p.parse_args(argv)

    load = os.getloadavg()[0]
    if load > a.max_load and not a.force:
        sys.exit(f"machine busy (1-minute load {load:.2f} > {a.max_load}): not measuring; --force to run anyway")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs at least 2 CPU cores")

    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="artify-bench-chunks-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # one chunk per span, so one stylize_chunk job per chunk: jobs are per span (artify/media/spans.py)
    settings = {"max_frames": a.chunks * a.chunk_frames, "size": a.size, "chunk_frames": a.chunk_frames,
                "chunk_overlap": 1, "span_frames": a.chunk_frames + 1, "iterations": a.iterations,
                "warm_iterations": a.warm_iterations, "device": "cpu"}
    header = ["job", "content", "style", "method", *settings]
    row = ["bench", a.content, a.style, "gatys", *map(str, settings.values())]
    (workdir / "jobs.tsv").write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")

    print(f"preparing {a.chunks} chunks of {a.chunk_frames} frames at {a.size} px in {workdir} ...", flush=True)
    snakemake(workdir, "--cores", "2", "--omit-from", "stylize_chunk")
    print(f"load before timing: {os.getloadavg()[0]:.2f}", flush=True)

    results = {}
    for cores in (1, 2):
        wall = snakemake(workdir, "--cores", str(cores), "--set-threads", "stylize_chunk=1",
                         "--forcerun", "stylize_chunk", "--until", "stylize_chunk")
        jobs = job_seconds(workdir)
        results[cores] = wall
        print(f"--cores {cores}: stylize stage {wall:6.1f} s wall (incl. Snakemake start-up), "
              f"{len(jobs)} jobs, {sum(jobs):6.1f} s summed job time ({', '.join(f'{s:.1f}' for s in jobs)})",
              flush=True)
    print(f"speedup --cores 2 vs --cores 1: {results[1] / results[2]:.2f}x  (load after: {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
