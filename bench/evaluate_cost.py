"""What `evaluate` costs, and how far its cheaper figures lie from the full ones (eval_size, eval_frames).

    python -m bench.evaluate_cost agreement [--out DIR] [--frames 12] [--size 640] [--sample 4]
    python -m bench.evaluate_cost cost --workdir DIR --job JOB [--before REPO] [--prefix 8] [--runs before,after]

agreement: real clips from ../shared/data stylized once per (clip, method) by the pipeline (Snakemake, in
--out, reused when there) at --size, where the eval_size cap bites; gatys and segmented with their fastest
settings (few iterations: this measures the metrics, not the methods). Each output is evaluated twice, at
its full size on every frame (eval_size 0, eval_frames 0) and at the default eval_size on every frame; the
sampled figures are the means over `evenly_spaced` frames of those per-frame tables (the sampled frames'
values are the every-frame ones: tests/test_evaluate.py checks it), at the default eval_frames and at
--sample, which bites on clips this short. Prints each figure full against cheap (relative difference)
and whether every ranking between the jobs on one clip is kept.

cost: times `artify evaluate` on a finished job of a Snakemake work directory, as the pipeline runs it, in a
process of its own (wall, CPU and peak memory from os.wait4): --before (another checkout, e.g. main's, run
with its own code) on the first --prefix frames (it is linear in frames), this checkout on the prefix and
on every frame; against the job's stylize stage (its benchmark files), per frame.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ARTIFY_SHARED_DATA", REPO.parent / "shared" / "data"))
CLIPS = ("adain_cutBunny.mp4", "moviepy_chaplin.mp4", "ccpl_content.avi")
# the jobs on each clip: the three methods, and the arbitrary one frame by frame (a fourth to rank, cheap)
METHODS = {"gatys": {"method": "gatys"}, "arbitrary": {"method": "arbitrary"}, "segmented": {"method": "segmented"},
           "arbitrary-perframe": {"method": "arbitrary", "temporal": False}}
FAST = {"iterations": 10, "warm_iterations": 3}  # gatys and segmented: few iterations (this measures the metrics)
FIGURES = [("warp_error.short", "warping error (1)"), ("warp_error.long", "warping error (10)"),
           ("flicker", "flicker"), ("style_distance", "style distance"),
           ("content_distance", "content distance"), ("ssim", "SSIM")]


def _snakemake(workdir: Path, targets: list[str], cores: int) -> None:
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe) if exe.exists() else "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(REPO / "config/config.yaml"), "--config", f"jobs={workdir / 'jobs.tsv'}",
           "--cores", str(cores), "--quiet", "progress", "--", *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, ARTIFY_PROGRESS="0"))
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def _job_args(workdir: Path, job: str) -> dict:
    """The files `evaluate` reads for a finished job of a work directory, and its processing size."""
    row = pd.read_csv(workdir / "jobs.tsv", sep="\t").set_index("job").loc[job]
    r = workdir / "results" / job
    return {"content": row["content"], "stylized": r / "stylized.mp4", "meta": r / "meta.json",
            "schedule": r / "schedule.tsv", "keyframes": r / "keyframes.tsv", "keyframe_dir": r / "keyframes",
            "size": int(row["size"])}


def _value(metrics: dict, key: str):
    for part in key.split("."):
        metrics = metrics.get(part) if isinstance(metrics, dict) else None
    return metrics


# ------------------------------------------------------------------------------------------------ agreement

def stylize_all(out: Path, frames: int, size: int, cores: int, run: bool = True, clips=CLIPS) -> list[dict]:
    """Every (clip, method) job stylized once in `out` (Snakemake skips what is there); run False: only
    those already stylized there (e.g. while a run goes on)."""
    style = SHARED / "styles" / "starry_night.jpg"
    jobs = [{"job": f"{Path(c).stem}-{m}", "clip": Path(c).stem, "kind": m, "content": str(SHARED / "videos" / c),
             "style": str(style), "size": size, "max_frames": frames, "temporal": True, **FAST, **settings}
            for c in clips for m, settings in METHODS.items()]  # arbitrary reads no iterations
    missing = [j["content"] for j in jobs if not Path(j["content"]).is_file()] + ([] if style.is_file() else [style])
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no such file (set ARTIFY_SHARED_DATA)")
    out.mkdir(parents=True, exist_ok=True)
    if not run:
        return [j for j in jobs if (out / "results" / j["job"] / "stylized.mp4").is_file()]
    pd.DataFrame([{k: v for k, v in j.items() if k not in ("clip", "kind")} for j in jobs]).to_csv(
        out / "jobs.tsv", sep="\t", index=False)
    print(f"stylizing {len(jobs)} jobs ({frames} frames at {size} px) in {out} ...", flush=True)
    _snakemake(out, [f"results/{j['job']}/stylized.mp4" for j in jobs], cores)
    return jobs


def evaluated(out: Path, job: str, variant: str, settings) -> pd.DataFrame:
    """The per-frame table of `job` evaluated with `settings`, kept in out/eval (made once)."""
    from artify.quality.evaluate import evaluate_job

    tsv = out / "eval" / f"{job}.{variant}.tsv"
    if not tsv.is_file():
        a = _job_args(out, job)
        t = time.perf_counter()
        evaluate_job(a["content"], a["stylized"], a["meta"], a["schedule"], a["keyframes"], a["keyframe_dir"],
                     out / "eval" / f"{job}.{variant}.json", tsv, size=a["size"], device="cpu", settings=settings)
        print(f"  {job} {variant}: {time.perf_counter() - t:.0f} s", flush=True)
    return pd.read_csv(tsv, sep="\t")


def sampled(per_frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """The table as `eval_frames: count` gives it: the sampled columns only on `evenly_spaced` frames."""
    from artify.quality.evaluate import SAMPLED, evenly_spaced

    keep = np.zeros(len(per_frame), bool)
    keep[evenly_spaced(len(per_frame), count)] = True
    t = per_frame.copy()
    for column in SAMPLED:
        t.loc[~keep, column] = np.nan
    return t


def agreement(out: Path, frames: int, size: int, sample: int, cores: int, run: bool = True,
              clips=CLIPS) -> pd.DataFrame:
    from artify.quality.evaluate import metrics_from_frames
    from artify.settings import Settings

    defaults = Settings()
    jobs = stylize_all(out, frames, size, cores, run, clips)
    rows = []
    for j in jobs:
        full = evaluated(out, j["job"], "full", Settings(eval_size=0, eval_frames=0))
        capped = evaluated(out, j["job"], "capped", Settings(eval_size=defaults.eval_size, eval_frames=0))
        variants = {"full": full, f"{defaults.eval_size} px": capped,
                    f"{defaults.eval_size} px, {defaults.eval_frames} frames": sampled(capped, defaults.eval_frames),
                    f"full size, {sample} frames": sampled(full, sample),
                    f"{defaults.eval_size} px, {sample} frames": sampled(capped, sample)}
        for variant, table in variants.items():
            m = metrics_from_frames(table)
            rows += [{"clip": j["clip"], "method": j["kind"], "variant": variant, "figure": title,
                      "value": _value(m, key)} for key, title in FIGURES]
    return pd.DataFrame(rows)


def agreement_tables(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(relative difference of each cheap figure to the full one, per job; rankings between the jobs on one
    clip kept or not, per figure and variant)."""
    full = rows[rows["variant"] == "full"].set_index(["clip", "method", "figure"])["value"]
    cheap = rows[rows["variant"] != "full"].copy()
    cheap["full"] = [full[c, m, f] for c, m, f in zip(cheap["clip"], cheap["method"], cheap["figure"])]
    cheap["rel_diff"] = cheap["value"] / cheap["full"] - 1
    ranks = []
    for (variant, figure, clip), g in cheap.groupby(["variant", "figure", "clip"], sort=False):
        if len(g) < 2:  # one job on the clip: nothing to rank
            continue
        ranks.append({"variant": variant, "figure": figure, "clip": clip,
                      "kept": list(g.sort_values("full")["method"]) == list(g.sort_values("value")["method"])})
    return cheap, pd.DataFrame(ranks)


def print_agreement(rows: pd.DataFrame) -> None:
    cheap, ranks = agreement_tables(rows)
    pd.set_option("display.width", 200)
    print("\nfull-size, every-frame figures (outputs at their processing size):")
    print(rows[rows["variant"] == "full"].pivot_table(index=["clip", "method"], columns="figure", values="value",
                                                      sort=False).to_string(float_format="{:.4g}".format))
    for variant, g in cheap.groupby("variant", sort=False):
        print(f"\n{variant}: relative difference to the full figure (cheap / full - 1)")
        table = g.pivot_table(index=["clip", "method"], columns="figure", values="rel_diff", sort=False)
        print(table.to_string(float_format="{:+.2%}".format))
        kept = ranks[ranks["variant"] == variant] if len(ranks) else pd.DataFrame(columns=["kept", "figure", "clip"])
        lost = kept[~kept["kept"]]
        print(f"  largest |difference| {g['rel_diff'].abs().max():.2%}; rankings between the jobs of a clip kept: "
              f"{int(kept['kept'].sum())} of {len(kept)}"
              + ("" if lost.empty else " (lost: " + ", ".join(f"{r.figure} on {r.clip}" for r in lost.itertuples())
                 + ")"))


# ----------------------------------------------------------------------------------------------------- cost

def _run_measured(cmd: list[str], env: dict, cwd: Path) -> dict:
    """Run cmd in a process of its own: wall seconds, CPU seconds (user + system) and peak RSS (MB)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def time_evaluate(repo: Path, a: dict, stylized: Path, out: Path) -> dict:
    """`artify evaluate` of one stylized video with the code of checkout `repo`, as the pipeline runs it (in
    that checkout: `python -m` puts the working directory first on the path)."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    a = {k: Path(v).resolve() if k != "size" else v for k, v in a.items()}
    stylized = stylized.resolve()
    cmd = [sys.executable, "-m", "artify", "evaluate", str(stylized), "--content", str(a["content"]),
           "--meta", str(a["meta"]), "--schedule", str(a["schedule"]), "--keyframes", str(a["keyframes"]),
           "--keyframe-dir", str(a["keyframe_dir"]), "--per-frame", str(out / "per-frame.tsv"),
           "--size", str(a["size"]), "--device", "cpu", "-o", str(out / "metrics.json")]
    env = dict(os.environ, PYTHONPATH=str(repo), ARTIFY_PROGRESS="0")
    return _run_measured(cmd, env, repo)


def prefix_video(stylized: Path, frames: int, out: Path) -> Path:
    """The first `frames` frames of a stylized video, losslessly (what evaluate costs is linear in frames)."""
    from artify.media.video import probe, read_frames, write_frames_h264

    if not out.is_file():
        fps = probe(stylized).fps
        write_frames_h264(out, read_frames(stylized, 0, frames), fps, crf=0)
    return out


def stylize_cost(workdir: Path, job: str) -> dict:
    """The stylize stage's seconds and CPU seconds per frame, from the job's benchmark files."""
    from artify.media.chunks import read_chunks

    frames = read_chunks(workdir / "results" / job / "chunks.tsv")[-1].stop
    files = sorted((workdir / "benchmarks" / "stylize_chunk").glob(f"{job}_*.tsv"))
    if not files:
        raise FileNotFoundError(f"{workdir}/benchmarks/stylize_chunk: no benchmark of job {job}")
    b = pd.concat([pd.read_csv(f, sep="\t") for f in files])  # Snakemake's columns: s (wall), cpu_time
    return {"frames": frames, "wall_s": float(b["s"].sum()) / frames, "cpu_s": float(b["cpu_time"].sum()) / frames}


def cost(workdir: Path, job: str, before: Path | None, prefix: int,
         runs_wanted=("before", "after")) -> pd.DataFrame:
    from artify.media.video import probe

    a = _job_args(workdir, job)
    n = probe(a["stylized"]).frames
    stylize = stylize_cost(workdir, job)
    print(f"stylize_chunk of {job}: {stylize['wall_s']:.2f} s a frame ({stylize['cpu_s']:.2f} CPU s) over "
          f"{stylize['frames']} frames", flush=True)
    bench = workdir / "bench-evaluate"
    short = prefix_video(a["stylized"], prefix, bench / f"first{prefix}.mp4") if prefix < n else a["stylized"]
    runs = []
    for label, repo, video, frames in [("before", before, short, min(prefix, n)), ("after", REPO, short, min(prefix, n)),
                                       ("after", REPO, a["stylized"], n)]:
        if repo is None or label not in runs_wanted:
            continue
        print(f"timing evaluate ({label}, {repo}) on {frames} frames ...", flush=True)
        r = time_evaluate(repo, a, video, bench / f"{label}-{frames}")
        runs.append({"code": label, "frames": frames, **r, "wall_s/frame": r["wall_s"] / frames,
                     "cpu_s/frame": r["cpu_s"] / frames,
                     "x stylize (wall)": r["wall_s"] / frames / stylize["wall_s"],
                     "x stylize (cpu)": r["cpu_s"] / frames / stylize["cpu_s"]})
    return pd.DataFrame(runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    ag = sub.add_parser("agreement", help="capped and sampled figures against full-size, every-frame ones")
    ag.add_argument("--out", default="bench-evaluate-agreement", help="work directory (kept and reused)")
    ag.add_argument("--frames", type=int, default=12)
    ag.add_argument("--size", type=int, default=640, help="processing size of the jobs (above eval_size)")
    ag.add_argument("--sample", type=int, default=4, help="a sample count that bites on clips this short")
    ag.add_argument("--cores", type=int, default=2)
    ag.add_argument("--finished", action="store_true", help="stylize nothing: evaluate the jobs already there")
    ag.add_argument("--clips", default=",".join(CLIPS), help="clips of ../shared/data/videos, in this order")
    co = sub.add_parser("cost", help="evaluate's time and memory against the job's stylize stage")
    co.add_argument("--workdir", required=True, help="a Snakemake work directory with the job finished")
    co.add_argument("--job", required=True)
    co.add_argument("--before", help="another checkout (e.g. main's) to time on the prefix")
    co.add_argument("--prefix", type=int, default=8, help="frames of the before run (and an after run)")
    co.add_argument("--runs", default="before,after", help="which to time: before, after or both")
    a = p.parse_args(argv)
    if a.what == "agreement":
        rows = agreement(Path(a.out), a.frames, a.size, a.sample, a.cores, run=not a.finished,
                         clips=a.clips.split(","))
        rows.to_csv(Path(a.out) / "agreement.tsv", sep="\t", index=False)
        print_agreement(rows)
    else:
        runs = cost(Path(a.workdir), a.job, Path(a.before) if a.before else None, a.prefix, a.runs.split(","))
        print(runs.to_string(index=False, float_format="{:.3g}".format))
        print(json.dumps(runs.to_dict("records")), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
