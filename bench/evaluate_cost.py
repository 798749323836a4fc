"""What `evaluate` costs, and how far its cheaper figures lie from the full ones (eval_size, eval_frames).

    python -m bench.evaluate_cost agreement [--out DIR] [--frames 12] [--size 640] [--sample 4]
    python -m bench.evaluate_cost cost --workdir DIR --job JOB [--before REPO] [--prefix 8]
        [--runs pipeline,before,uncapped,after-prefix,after]

agreement: real clips from ../shared/data stylized once per (clip, method) by the pipeline (Snakemake, in
--out; a job's stylized.mp4 there is reused) at --size, where the eval_size cap bites; gatys and segmented
with few iterations (this measures the metrics, not the methods). Each output is evaluated twice, at
its full size on every frame (eval_size 0, eval_frames 0) and at the default eval_size on every frame; the
sampled figures are the means over `evenly_spaced` frames of those per-frame tables (the sampled frames'
values are the every-frame ones: tests/test_evaluate.py checks it), at the default eval_frames and at
--sample, which bites on clips this short. Prints each figure full against cheap (relative difference)
and whether every ranking between the jobs on one clip is kept.

cost: evaluate of a finished job of a Snakemake work directory against the job's stylize stage (CPU
seconds, which a loaded machine does not inflate as it does wall time). `pipeline`: the job's own evaluate
run, from its Snakemake benchmark (the run that also stylized: one run, both stages). The others time
`artify evaluate` as the pipeline runs it, in a process of its own (wall, CPU and peak memory from
os.wait4): --before (another checkout, e.g. main's, run with its own code) and `uncapped` (this checkout
at full size on every frame) on the first --prefix frames (their cost is linear in frames), this checkout's
defaults on the prefix and on every frame (peak memory on both: flat or not).
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
# gatys and segmented with the fewest iterations (this measures the metrics, not the methods); still 290-410
# CPU seconds a 12-frame gatys job at 640 px on a 2-core CPU, segmented (gatys on each region) twice that
FAST = {"iterations": 3, "warm_iterations": 1}
# the jobs on each clip: the three methods, and the arbitrary one frame by frame (a fourth to rank, cheap)
METHODS = {"gatys": {"method": "gatys"}, "arbitrary": {"method": "arbitrary"}, "segmented": {"method": "segmented"},
           "arbitrary-perframe": {"method": "arbitrary", "temporal": False}}
FIGURES = [("warp_error.short", "warping error (1)"), ("warp_error.long", "warping error (10)"),
           ("flicker", "flicker"), ("style_distance", "style distance"),
           ("content_distance", "content distance"), ("ssim", "SSIM")]


def _snakemake(workdir: Path, targets: list[str], cores: int) -> None:
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe) if exe.exists() else "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(REPO / "config/config.yaml"), "--config", f"jobs={workdir / 'jobs.tsv'}",
           "--cores", str(cores), "--rerun-incomplete", "--quiet", "progress", "--", *targets]
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
    todo = [f"results/{j['job']}/stylized.mp4" for j in jobs
            if not (out / "results" / j["job"] / "stylized.mp4").is_file()]
    print(f"stylizing {len(todo)} of {len(jobs)} jobs ({frames} frames at {size} px) in {out} ...", flush=True)
    if todo:  # one finished is reused as it is (a code change since does not restyle it: this measures metrics)
        _snakemake(out, todo, cores)
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
                    f"full size, {sample} frames": sampled(full, sample),
                    f"{defaults.eval_size} px, {sample} frames": sampled(capped, sample)}
        if 0 < defaults.eval_frames < len(capped):  # the defaults sample this clip (else they are "512 px")
            variants[f"{defaults.eval_size} px, {defaults.eval_frames} frames"] = sampled(capped, defaults.eval_frames)
        for variant, table in variants.items():
            m = metrics_from_frames(table)
            rows += [{"clip": j["clip"], "method": j["kind"], "variant": variant, "figure": title,
                      "value": _value(m, key)} for key, title in FIGURES]
    return pd.DataFrame(rows)


def swapped_pairs(g: pd.DataFrame) -> list[str]:
    """The pairs of jobs (rows of one clip, figure and variant) whose order the cheap figure reverses, each
    with how far apart their full figures are."""
    rows = list(g.itertuples())
    return [f"{a.method} / {b.method} ({abs(a.full / b.full - 1):.1%} apart)" for i, a in enumerate(rows)
            for b in rows[i + 1:] if (a.full - b.full) * (a.value - b.value) < 0]


def agreement_tables(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(relative difference of each cheap figure to the full one, per job; rankings between the jobs on one
    clip kept or not, per figure and variant, with the pairs swapped)."""
    full = rows[rows["variant"] == "full"].set_index(["clip", "method", "figure"])["value"]
    cheap = rows[rows["variant"] != "full"].copy()
    cheap["full"] = [full[c, m, f] for c, m, f in zip(cheap["clip"], cheap["method"], cheap["figure"])]
    cheap["rel_diff"] = cheap["value"] / cheap["full"] - 1
    ranks = []
    for (variant, figure, clip), g in cheap.groupby(["variant", "figure", "clip"], sort=False):
        if len(g) < 2:  # one job on the clip: nothing to rank
            continue
        swapped = swapped_pairs(g)
        ranks.append({"variant": variant, "figure": figure, "clip": clip, "kept": not swapped,
                      "pairs": len(g) * (len(g) - 1) // 2, "pairs_swapped": len(swapped),
                      "swapped": "; ".join(swapped)})
    return cheap, pd.DataFrame(ranks, columns=["variant", "figure", "clip", "kept", "pairs", "pairs_swapped",
                                               "swapped"])


def agreement_markdown(rows: pd.DataFrame) -> str:
    """The agreement tables as markdown: the full figures, then per cheap variant each job's relative
    difference to them and the rankings kept."""
    cheap, ranks = agreement_tables(rows)
    full = rows[rows["variant"] == "full"].pivot_table(index=["clip", "method"], columns="figure", values="value",
                                                       sort=False)
    text = ["Full-size, every-frame figures (each output at its processing size):", "",
            full.reset_index().to_markdown(index=False, floatfmt=".4g")]
    for variant, g in cheap.groupby("variant", sort=False):
        table = g.pivot_table(index=["clip", "method"], columns="figure", values="rel_diff", sort=False)
        kept = ranks[ranks["variant"] == variant]
        lost = kept[~kept["kept"]]
        text += ["", f"{variant}: relative difference to the full figure (cheap / full - 1)", "",
                 table.map(lambda x: f"{x:+.1%}").reset_index().to_markdown(index=False), "",
                 f"Largest |difference| {g['rel_diff'].abs().max():.1%}. Rankings between the jobs of a clip kept: "
                 f"{int(kept['kept'].sum())} of {len(kept)} (pairs of jobs in order: "
                 f"{int(kept['pairs'].sum() - kept['pairs_swapped'].sum())} of {int(kept['pairs'].sum())})"
                 + ("." if lost.empty else "; lost: " + ", ".join(
                     f"{r.figure} on {r.clip} ({r.swapped})" for r in lost.itertuples()) + ".")]
    return "\n".join(text) + "\n"


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


def time_evaluate(repo: Path, a: dict, stylized: Path, out: Path, options: tuple[str, ...] = ()) -> dict:
    """`artify evaluate` of one stylized video with the code of checkout `repo`, as the pipeline runs it (in
    that checkout: `python -m` puts the working directory first on the path), with extra `options`."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    a = {k: Path(v).resolve() if k != "size" else v for k, v in a.items()}
    stylized = stylized.resolve()
    cmd = [sys.executable, "-m", "artify", "evaluate", str(stylized), "--content", str(a["content"]),
           "--meta", str(a["meta"]), "--schedule", str(a["schedule"]), "--keyframes", str(a["keyframes"]),
           "--keyframe-dir", str(a["keyframe_dir"]), "--per-frame", str(out / "per-frame.tsv"),
           "--size", str(a["size"]), "--device", "cpu", *options, "-o", str(out / "metrics.json")]
    env = dict(os.environ, PYTHONPATH=str(repo), ARTIFY_PROGRESS="0")
    return _run_measured(cmd, env, repo)


def prefix_video(stylized: Path, frames: int, out: Path) -> Path:
    """The first `frames` frames of a stylized video, losslessly (what evaluate costs is linear in frames)."""
    from artify.media.video import probe, read_frames, write_frames_h264

    if not out.is_file():
        fps = probe(stylized).fps
        write_frames_h264(out, read_frames(stylized, 0, frames), fps, crf=0)
    return out


def _benchmarks(workdir: Path, rule: str, job: str) -> dict[str, pd.DataFrame]:
    """Snakemake's benchmark lines of `rule` for `job`, by file stem ({job} or {job}_{span}): columns s (wall),
    cpu_time, max_rss."""
    files = sorted((workdir / "benchmarks" / rule).glob(f"{job}.tsv")) + sorted(
        (workdir / "benchmarks" / rule).glob(f"{job}_[0-9]*.tsv"))
    if not files:
        raise FileNotFoundError(f"{workdir}/benchmarks/{rule}: no benchmark of job {job}")
    return {f.stem: pd.read_csv(f, sep="\t") for f in files}


def stylize_cost(workdir: Path, job: str) -> dict:
    """The stylize stage's seconds and CPU seconds, and the frames they stylized (core frames of the spans
    benchmarked: all of them once the job is done, fewer while it runs or where it was stopped)."""
    from artify.media.chunks import read_chunks

    spans = _benchmarks(workdir, "stylize_chunk", job)
    done = {int(stem.rsplit("_", 1)[1]) for stem in spans}
    b = pd.concat(spans.values())
    frames = sum(c.stop - c.start for c in read_chunks(workdir / "results" / job / "chunks.tsv") if c.span in done)
    return {"frames": frames, "spans": len(spans), "wall_s": float(b["s"].sum()), "cpu_s": float(b["cpu_time"].sum())}


# the timed runs of `cost`: (label, extra evaluate options, on the prefix or on every frame)
RUNS = {"before": ((), "prefix"), "uncapped": (("--eval-size", "0", "--eval-frames", "0"), "prefix"),
        "after-prefix": ((), "prefix"), "after": ((), "all")}


def cost(workdir: Path, job: str, before: Path | None, prefix: int,
         runs_wanted=("pipeline", "before", "after-prefix", "after"), stylized: Path | None = None) -> pd.DataFrame:
    """evaluate's cost against the stylize stage's, per frame and in all. Rows: `pipeline` (the job's own
    evaluate run, from its benchmark file: the one run that also stylized), `before` (checkout --before on
    the prefix), `uncapped` (this checkout at full size on every frame, eval_size and eval_frames 0, on the
    prefix), `after-prefix` and `after` (this checkout's defaults on the prefix and on every frame).
    stylized: a video of the stylized one's shape (frames, size) timed in its place, e.g. the input while the
    job is still stylizing: what evaluate does does not depend on the pixels (the same decoding, flows and
    VGG passes)."""
    from artify.media.video import probe

    a = _job_args(workdir, job)
    if stylized is not None:
        a["stylized"] = stylized
    n = probe(a["stylized"]).frames
    stylize = stylize_cost(workdir, job)
    print(f"stylize_chunk of {job}: {stylize['spans']} spans, {stylize['frames']} frames: "
          f"{stylize['cpu_s']:.0f} CPU s ({stylize['cpu_s'] / stylize['frames']:.2f} a frame), "
          f"{stylize['wall_s']:.0f} s wall", flush=True)
    bench = workdir / "bench-evaluate"
    short = prefix_video(a["stylized"], prefix, bench / f"{Path(a['stylized']).stem}-first{prefix}.mp4") \
        if prefix < n else a["stylized"]
    runs = []
    if "pipeline" in runs_wanted:
        b = pd.concat(_benchmarks(workdir, "evaluate", job).values())
        runs.append(("pipeline", n, {"wall_s": float(b["s"].sum()), "cpu_s": float(b["cpu_time"].sum()),
                                     "peak_mb": float(b["max_rss"].max())}))
    for label, (options, frames) in RUNS.items():
        repo = before if label == "before" else REPO
        if repo is None or label not in runs_wanted:
            continue
        video, count = (short, min(prefix, n)) if frames == "prefix" else (a["stylized"], n)
        print(f"timing evaluate ({label}, {repo} {' '.join(options)}) on {count} frames ...", flush=True)
        runs.append((label, count, time_evaluate(repo, a, video, bench / f"{label}-{count}", options)))
    per_frame = stylize["cpu_s"] / stylize["frames"]
    return pd.DataFrame([{"code": label, "frames": count, **r, "cpu_s/frame": r["cpu_s"] / count,
                          "x stylize (cpu)": r["cpu_s"] / count / per_frame,
                          "x stylize (wall)": r["wall_s"] / count / (stylize["wall_s"] / stylize["frames"])}
                         for label, count, r in runs])


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
    co.add_argument("--prefix", type=int, default=8, help="frames of the before, uncapped and after-prefix runs")
    co.add_argument("--stylized", help="time evaluate on this video instead of the job's stylized.mp4 (same "
                    "frames and size; e.g. its input while the job is still stylizing)")
    co.add_argument("--runs", default="pipeline,before,after-prefix,after",
                    help="which: pipeline (the job's own evaluate benchmark), " + ", ".join(RUNS))
    a = p.parse_args(argv)
    if a.what == "agreement":
        rows = agreement(Path(a.out), a.frames, a.size, a.sample, a.cores, run=not a.finished,
                         clips=a.clips.split(","))
        rows.to_csv(Path(a.out) / "agreement.tsv", sep="\t", index=False)
        text = agreement_markdown(rows)
        (Path(a.out) / "agreement.md").write_text(text)
        print(text)
    else:
        runs = cost(Path(a.workdir), a.job, Path(a.before) if a.before else None, a.prefix, a.runs.split(","),
                    Path(a.stylized) if a.stylized else None)
        print(runs.to_string(index=False, float_format="{:.3g}".format))
        print(json.dumps(runs.to_dict("records")), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
