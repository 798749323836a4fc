"""Benchmarks of the whole pipeline, one command: `make bench` (or `python -m bench.pipeline`).

Runs Snakemake on a small real clip in a temporary directory at two processing sizes and prints, from
that one run each (so the figures compare as ratios):
  1. seconds per output frame and peak memory of every stage, at both sizes, from the benchmark files;
  2. the pipeline's overhead: wall time of the whole Snakemake run against the sum of its rule times
     (jobs run one at a time for this, so the two are comparable; target <= 10 %);
  3. extract+assemble against one bare ffmpeg command doing the same (decode, scale, encode H.264 with the
     same CRF, audio): the I/O stages of the same run, and the same commands over whole clips, with the
     extracted frames written as stylize_chunk writes its output as the "stylized" chunks (target >= 0.8x
     the bare command's speed); beside it, ffmpeg alone in two steps through a raw file on disk, the floor of
     any design that keeps lossless frames between decoding and encoding.

    python -m bench.pipeline [--frames 24] [--sizes 128,256] [--clip PATH] [--io-clips PATH,...] [--style PATH]
                           [--keep DIR] [--io-only]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import pandas as pd

from artify.quality.cost import read_benchmark

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ARTIFY_SHARED_DATA", REPO.parent / "shared" / "data"))
IO_STAGES = ("probe", "plan_chunks", "extract_frames", "assemble")


def _snakemake_exe() -> str:
    exe = Path(sys.executable).with_name("snakemake")
    return str(exe) if exe.exists() else "snakemake"


def run_pipeline(workdir: Path, clip: Path, style: Path, frames: int, size: int, cores: int,
                 settings: dict) -> dict:
    """One Snakemake run of one job; returns wall seconds, the per-rule benchmark table and frames."""
    workdir.mkdir(parents=True, exist_ok=True)
    job = {"job": f"bench{size}", "content": str(clip), "style": str(style), "method": "gatys",
           "max_frames": frames, "size": size, **settings}
    (workdir / "jobs.tsv").write_text("\t".join(job) + "\n" + "\t".join(map(str, job.values())) + "\n")
    cmd = [_snakemake_exe(), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(REPO / "config/config.yaml"), "--config", f"jobs={workdir / 'jobs.tsv'}",
           "--cores", str(cores),
           # one job at a time, so the wall time and the sum of rule times measure the same work
           "--resources", "bench_serial=1", "--default-resources", "bench_serial=1", "--quiet", "progress"]
    env = dict(os.environ, ARTIFY_PROGRESS="0")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    rows = []
    for path in sorted(glob.glob(str(workdir / "benchmarks" / "*" / "*.tsv"))):
        b = read_benchmark(path)
        rows.append({"stage": Path(path).parent.name, "file": Path(path).name, "s": b["s"], "max_rss": b["max_rss"]})
    return {"wall": wall, "table": pd.DataFrame(rows), "frames": frames, "size": size, "workdir": workdir}


def per_stage(run: dict) -> pd.DataFrame:
    t = run["table"].groupby("stage", sort=False).agg(jobs=("s", "size"), s=("s", "sum"), max_rss=("max_rss", "max"))
    t["s_per_frame"] = t["s"] / run["frames"]
    return t


def bare_ffmpeg(clip: Path, frames: int | None, size: tuple[int, int], crf: int, out: Path) -> float:
    """Seconds of one ffmpeg command that does what extract+assemble do: decode, scale, H.264, audio."""
    from artify.media.video import ffmpeg_exe

    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-i", str(clip), "-map", "0:v:0", "-map", "0:a:0?"]
    if frames:
        args += ["-frames:v", str(frames)]
    args += ["-vf", f"scale={size[0]}:{size[1]}:flags=bicubic", "-c:v", "libx264", "-crf", str(crf),
             "-preset", "medium", "-pix_fmt", "yuv420p", "-c:a", "copy", "-shortest", str(out)]
    t = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - t


def two_step_ffmpeg(clip: Path, size: tuple[int, int], crf: int, workdir: Path) -> float:
    """Seconds of the least any design with lossless frames on disk between decoding and encoding can do:
    ffmpeg alone decodes and scales to one raw RGB file, then encodes that file with the clip's audio."""
    from artify.media.video import ffmpeg_exe, probe

    raw, ff = workdir / "frames.rgb", [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y"]
    w, h = size
    t = time.perf_counter()
    subprocess.run([*ff, "-i", str(clip), "-map", "0:v:0", "-vf", f"scale={w}:{h}:flags=bicubic,format=rgb24",
                    "-f", "rawvideo", str(raw)], check=True)
    fps = probe(clip).fps
    subprocess.run([*ff, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", fps, "-i", str(raw),
                    "-i", str(clip), "-map", "0:v", "-map", "1:a:0?", "-c:v", "libx264", "-crf", str(crf),
                    "-preset", "medium", "-pix_fmt", "yuv420p", "-c:a", "copy", "-shortest",
                    str(workdir / "two_step.mp4")], check=True)
    seconds = time.perf_counter() - t
    raw.unlink()
    return seconds


def io_commands(clip: Path, size: int, workdir: Path, crf: int, chunk_frames: int, chunk_overlap: int,
                span_frames: int) -> tuple[float, dict, float]:
    """Seconds of the pipeline's own commands for probe, chunks, extraction and assembly (with the audio)
    over the whole clip, run one after another as the rules run them (per command: total seconds and count),
    and the start-up of one such command. The stylized chunks given to assemble are the extracted frames,
    saved as stylize_chunk saves its output (not timed: that is stylize_chunk's work)."""
    from artify.media.chunks import chunk_frames_path, read_chunks
    from artify.media.video import read_frames, save_frames

    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), ARTIFY_PROGRESS="0")
    art = [sys.executable, "-m", "artify"]
    meta, chunks = workdir / "meta.json", workdir / "chunks.tsv"

    commands: dict[str, list] = {}

    def run(*args):
        t0 = time.perf_counter()
        subprocess.run([*art, *map(str, args)], check=True, capture_output=True, env=env)
        entry = commands.setdefault(args[0], [0.0, 0])
        entry[0] += time.perf_counter() - t0
        entry[1] += 1

    run("probe", clip, "-o", meta)
    run("plan-chunks", "--meta", meta, "-o", chunks, "--chunk-frames", chunk_frames, "--chunk-overlap", chunk_overlap,
        "--span-frames", span_frames)
    plan = read_chunks(chunks)
    for span in sorted({c.span for c in plan}):
        run("extract-frames", clip, "--meta", meta, "--chunks", chunks, "--span", span, "-o", workdir / f"span{span}",
            "--size", size)
    files = []
    for c in plan:
        files.append(workdir / f"stylized_{c.chunk:04d}.npy")
        frames = read_frames(chunk_frames_path(workdir / f"span{c.span}", c.chunk))
        save_frames(files[-1], frames, len(frames))
    run("assemble", *files, "--meta", meta, "--chunks", chunks, "--content", clip, "-o", workdir / "out.mp4",
        "--crf", crf)
    total = sum(t for t, _ in commands.values())
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import artify.media.chunks, artify.media.assemble, artify.cli"], check=True, env=env)
    startup = time.perf_counter() - t0
    return total, commands, startup


def _fmt(x, digits=3) -> str:
    return "-" if x is None or pd.isna(x) else f"{x:.{digits}g}"


def main(argv=None) -> int:
    from artify.settings import defaults
    from artify.media.video import probe, processing_size

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=str(SHARED / "videos" / "adain_cutBunny.mp4"))
    p.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    p.add_argument("--io-clips", default=str(SHARED / "videos" / "moviepy_big_buck_bunny_0_30.webm"),
                   help="more clips (comma-separated) for the whole-clip extract+assemble timing")
    p.add_argument("--frames", type=int, default=24, help="frames of the clip stylized per size")
    p.add_argument("--sizes", default="128,256", help="two processing sizes (long side)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--iterations", type=int, default=None, help="override the gatys iterations (default: config)")
    p.add_argument("--keep", help="keep the work directories here instead of a temporary directory")
    p.add_argument("--io-only", action="store_true", help="only the whole-clip extract+assemble timing (no "
                   "Snakemake runs: a minute instead of a quarter of an hour)")
    a = p.parse_args(argv)
    clip, style = Path(a.clip), Path(a.style)
    for f in (clip, style):
        if not f.is_file():
            print(f"artify bench: error: {f}: no such file (set --clip/--style or ARTIFY_SHARED_DATA)", file=sys.stderr)
            return 2
    sizes = [int(s) for s in a.sizes.split(",")]
    d = defaults()
    settings = {"chunk_frames": 12, "chunk_overlap": 2}
    if a.iterations:
        settings |= {"iterations": a.iterations}
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="artify-bench-"))
    try:
        runs = []
        for size in [] if a.io_only else sizes:
            print(f"running the pipeline on {a.frames} frames of {clip.name} at {size} px ...", flush=True)
            runs.append(run_pipeline(root / f"size{size}", clip, style, a.frames, size, a.cores, settings))
        meta = probe(clip)
        print("timing extract+assemble against bare ffmpeg ...", flush=True)
        io = []
        for run in runs:
            wh = processing_size(meta.width, meta.height, run["size"])
            st = per_stage(run)
            ours = sum(float(st.loc[s, "s"]) for s in IO_STAGES if s in st.index)
            bare = bare_ffmpeg(clip, a.frames, wh, d["crf"], root / f"bare{run['size']}.mp4")
            io.append((f"{a.frames} frames at {wh[0]}x{wh[1]}, in the run above", ours, bare, None))
        details = []
        io_clips = [clip] + [Path(c) for c in a.io_clips.split(",") if c]
        for n, io_clip in enumerate(io_clips):
            m = probe(io_clip)
            for size in (max(sizes), max(m.width, m.height)):
                wh = processing_size(m.width, m.height, size)
                ours, commands, startup = io_commands(io_clip, size, root / f"io{n}_{size}", d["crf"], d["chunk_frames"],
                                                      d["chunk_overlap"], d["span_frames"])
                bare = bare_ffmpeg(io_clip, None, wh, d["crf"], root / f"bare{n}_{size}.mp4")
                floor = two_step_ffmpeg(io_clip, wh, d["crf"], root / f"io{n}_{size}")
                label = f"{io_clip.name}, whole: {m.frames} frames at {wh[0]}x{wh[1]}"
                io.append((label, ours, bare, floor))
                details.append((label, commands, startup))
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)

    if runs:
        tables = [per_stage(r) for r in runs]
        stages = list(dict.fromkeys(s for t in tables for s in t.index))
        print(f"\nArtify benchmark: {clip.name}, {a.frames} frames, style {style.name}, gatys, {a.cores} cores, "
              f"torch threads per job as the rules set them\n")
        head = f"{'stage':<18}" + "".join(f"{f's/frame @{s}':>14}" for s in sizes) + f"{'ratio':>8}" + "".join(
            f"{f'peak MB @{s}':>14}" for s in sizes)
        print(head)
        print("-" * len(head))
        for s in stages + ["total"]:
            vals = [float(t["s_per_frame"].sum()) if s == "total" else (t.loc[s, "s_per_frame"] if s in t.index else None)
                    for t in tables]
            rss = [t["max_rss"].max() if s == "total" else (t.loc[s, "max_rss"] if s in t.index else None) for t in tables]
            ratio = vals[1] / vals[0] if len(vals) > 1 and vals[0] and vals[1] is not None else None
            print(f"{s:<18}" + "".join(f"{_fmt(v):>14}" for v in vals) + f"{_fmt(ratio):>8}" + "".join(
                f"{_fmt(r, 4):>14}" for r in rss))
        print(f"(ratio: s/frame at {sizes[-1]} px over s/frame at {sizes[0]} px; peak MB: max_rss of the stage's "
              f"largest job)\n")
        print("pipeline overhead (wall time of the whole snakemake run vs the sum of its rule times, one job at a time)")
        for r in runs:
            rules = float(r["table"]["s"].sum())
            over = (r["wall"] - rules) / rules
            verdict = "ok" if over <= 0.10 else "above the 10 % target"
            print(f"  {r['size']:>4} px: wall {r['wall']:.1f} s, rules {rules:.1f} s, overhead {over * 100:+.1f} %  "
                  f"({verdict})")
    print(f"\nextract+assemble ({', '.join(IO_STAGES)}) vs one bare ffmpeg command "
          f"(decode, scale, libx264 crf {d['crf']} preset medium, audio copy)")
    for label, ours, bare, floor in io:
        speed = bare / ours
        verdict = "ok" if speed >= 0.8 else "below the 0.8x target"
        two_step = f"; ffmpeg in two steps through a raw file {floor:.2f} s, ours {floor / ours:.2f}x its speed" \
            if floor else ""
        print(f"  {label}: ours {ours:.2f} s, ffmpeg {bare:.2f} s, speed {speed:.2f}x ffmpeg's  ({verdict}){two_step}")
    print("  (two steps: ffmpeg decodes and scales to one raw RGB file, then encodes it with the audio: the least "
          "a design that keeps lossless frames on disk between the two can take)")
    print("\nwhere the whole-clip time goes (seconds, commands):")
    for label, commands, startup in details:
        parts = ", ".join(f"{name} {t:.2f} ({k})" for name, (t, k) in commands.items())
        print(f"  {label}: {parts}; one command's start-up {startup:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
