"""Feature-length input: how planning and per-job costs scale with the length of the video.

    python -m bench.long plan [--minutes 12,24,120] [--method gatys]
    python -m bench.long fixed [--methods gatys,segmented,arbitrary] [--startup-only]
    python -m bench.long overhead [--minutes 10] [--size 256] [--demo] [--cores 1]

plan: for each length, a 128x72 24-fps testsrc2 clip with a tone (made here with ffmpeg), one job of the
default config on it; the content side is prepared (probe, plan_chunks: `snakemake results/J/chunks.tsv`), then
`snakemake -n` is timed: chunks, spans, jobs of the dry run by rule, and seconds, with seconds per 1000 jobs
(constant when planning is linear).
fixed: per method on the CPU, the fixed cost of one stylization job (a process that starts, imports what
`artify stylize-span` imports, loads the model and pays the network's first-call costs) against its seconds per frame (spans of 1 and k identical
chunks through `artify stylize-span`: the difference is k - 1 chunks' work).
overhead: the arbitrary method through the whole pipeline on one core (wall time and job times add up)
against the stylization's own time (the span jobs' seconds on their chunks, from their logs), with the peaks
of temporary disk (frames, flows) and of memory: run it at two lengths to see them stay flat.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ARTIFY_SHARED_DATA", REPO.parent / "shared" / "data"))


def make_clip(path: Path, seconds: float, size: str = "128x72", fps: int = 24) -> Path:
    """A testsrc2 clip with a 440 Hz tone, H.264 + AAC, made once (kept when it exists)."""
    from artify.media.video import ffmpeg_exe

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp.{path.name}")
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
                        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=22050:duration={seconds}",
                        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k",
                        "-shortest", "-f", "mp4", str(tmp)], check=True)
        os.replace(tmp, path)
    return path


def snakemake(workdir: Path, *args: str, profile: Path | None = None, env: dict | None = None):
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"), *args, "--directory",
           str(workdir), "--configfile", str(REPO / "config/config.yaml"), "--config", f"jobs={workdir / 'jobs.tsv'}"]
    cmd += ["--profile", str(profile)] if profile else ["--cores", "1"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc, seconds


def job_stats(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count."""
    table = output.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def write_job(workdir: Path, content: Path, style: Path, method: str, **settings) -> None:
    row = {"job": "long", "content": str(content), "style": str(style), "method": method, **settings}
    (workdir / "jobs.tsv").write_text("\t".join(row) + "\n" + "\t".join(map(str, row.values())) + "\n")


def prepared(root: Path, minutes: float, method: str, style: Path, **settings) -> Path:
    """A working directory whose job has its meta.json and chunks.tsv: what a dry run needs to see every job."""
    clip = make_clip(root / f"testsrc2_{minutes:g}min.mp4", minutes * 60)
    workdir = root / f"{method}_{minutes:g}min"
    workdir.mkdir(parents=True, exist_ok=True)
    write_job(workdir, clip, style, method, **settings)
    snakemake(workdir, "results/long/chunks.tsv")
    return workdir


def cmd_plan(a) -> int:
    from artify.media.chunks import read_chunks

    style = Path(a.style)
    rows = []
    for minutes in [float(m) for m in a.minutes.split(",")]:
        workdir = prepared(Path(a.root), minutes, a.method, style)
        plan = read_chunks(workdir / "results/long/chunks.tsv")
        _, start = snakemake(workdir, "results/long/chunks.tsv", "-n", "--quiet", "rules")  # nothing to plan
        proc, seconds = snakemake(workdir, "-n", "--quiet", "rules")
        stats = job_stats(proc.stdout)
        rows.append((minutes, len(plan), plan[-1].span + 1, stats.get("total", 0), seconds, start))
        print(f"{minutes:g} min: {len(plan)} chunks, {plan[-1].span + 1} spans, {stats.get('total')} jobs, "
              f"dry run {seconds:.1f} s (with nothing to plan {start:.1f} s)  {stats}", flush=True)
    print(f"\nplanning (`snakemake -n`, method {a.method}, 128x72 24 fps testsrc2 with a tone; this machine, "
          f"load {os.getloadavg()[0]:.1f})")
    print(f"{'input':>8} {'chunks':>7} {'spans':>6} {'jobs':>6} {'dry run s':>10} {'nothing to plan s':>18} "
          f"{'ms per job beyond':>18}")
    for minutes, chunks, spans, jobs, seconds, start in rows:
        print(f"{minutes:>6g} m {chunks:>7} {spans:>6} {jobs:>6} {seconds:>10.1f} {start:>18.1f} "
              f"{1000 * (seconds - start) / jobs:>18.1f}")
    return 0


def fixed_cost_span(root: Path, clip: Path, style: Path, method: str, chunks: int, frames: int, size: int) -> Path:
    """A span of `chunks` identical chunks of `frames` frames of `clip` at `size` px (no overlap, one style, flows
    and masks made once and copied): the inputs of `artify stylize-span` for `method`."""
    import cv2
    import torch

    from artify.media.chunks import Chunk, write_chunks
    from artify.methods.arbitrary import adain_decoder
    from artify.stages.segment import segment_chunk
    from artify.settings import Settings
    from artify.media.spans import chunk_path
    from artify.stages.flow import flow_chunk
    from artify.media.video import load_image, probe, processing_size, read_frames, save_frames

    d = root / f"{method}_{chunks}"
    shutil.rmtree(d, ignore_errors=True)
    (d / "frames").mkdir(parents=True)
    (d / "kf").mkdir()
    meta = probe(clip)
    picture = read_frames(clip, 0, frames, processing_size(meta.width, meta.height, size))
    write_chunks([Chunk(i, i * frames, i * frames, (i + 1) * frames, 0) for i in range(chunks)], d / "chunks.tsv")

    cv2.imwrite(str(d / "kf" / "k0.png"), cv2.cvtColor(load_image(style, size), cv2.COLOR_RGB2BGR))
    (d / "keyframes.tsv").write_text("file\nk0.png\n")
    (d / "schedule.tsv").write_text("frame\tw0\n" + "".join(f"{i}\t1.0\n" for i in range(chunks * frames)))
    settings = Settings()
    for i in range(chunks):
        save_frames(chunk_path(d / "frames", i, ".npy"), picture, len(picture))
    flow_chunk(chunk_path(d / "frames", 0, ".npy"), chunk_path(d / "flows", 0, ".npz"), settings, threads=1)
    if method == "segmented":
        segment_chunk(chunk_path(d / "frames", 0, ".npy"), chunk_path(d / "masks", 0, ".npz"), settings, threads=1)
    for kind in ("flows", "masks"):
        for i in range(1, chunks):
            if (d / kind).is_dir():
                shutil.copy(chunk_path(d / kind, 0, ".npz"), chunk_path(d / kind, i, ".npz"))
    if method == "arbitrary":  # an untrained decoder of the default width: a trained one costs the same
        torch.manual_seed(0)
        torch.save(adain_decoder(settings.train_width).state_dict(), d / "decoder.pth")
    return d


def time_span(d: Path, method: str) -> tuple[float, float]:
    """Wall and CPU seconds of `artify stylize-span` over the span in `d` (one thread, device cpu)."""
    import resource

    args = [sys.executable, "-m", "artify", "stylize-span", str(d / "frames"), "--chunks", str(d / "chunks.tsv"),
            "--span", "0", "--schedule", str(d / "schedule.tsv"), "--keyframes", str(d / "keyframes.tsv"),
            "--keyframe-dir", str(d / "kf"), "--flows", str(d / "flows"), "--threads", "1", "-o", str(d / "out"),
            "--method", method, "--device", "cpu"]
    if method == "segmented":
        args += ["--masks", str(d / "masks")]
    if method == "arbitrary":
        args += ["--decoder", str(d / "decoder.pth")]
    env = dict(os.environ, ARTIFY_PROGRESS="0", PYTHONPATH=str(REPO))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"stylize-span failed:\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


STARTUP = """
import sys, time
import torch
torch.set_num_threads(1)
import artify.cli, artify.stages.stylize  # what `artify stylize-span` imports before its first chunk
method, decoder, h, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = torch.rand(8 if method == "arbitrary" else 1, 3, h, w)
if method == "arbitrary":
    from artify.methods.arbitrary import network_for
    from artify.settings import Settings
    net = network_for(Settings(), "cpu", decoder)
    def step():  # the default network (Magenta): a batch through the transformer with one style vector
        with torch.no_grad():
            if hasattr(net, "predict"):
                net(x, net.predict(torch.rand(1, 3, 256, 256)).expand(len(x), -1))
            else:
                net(x, *net.style_stats(x[:1]))
else:
    import artify.methods.gatys
    if method == "segmented":
        import artify.methods.segmented, artify.masks.segment
    from artify.features import vgg19
    model = vgg19("cpu")
    x.requires_grad_(True)
    def step():  # one optimiser evaluation: features forward and backward
        out = model(x, ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu4_2"])
        sum(v.mean() for v in out.values()).backward()
times = []
for _ in range(2):  # the first call also pays one-off costs (kernel selection, allocation): part of the fixed cost
    t = time.process_time()
    step()
    times.append(time.process_time() - t)
print(times[1])
"""


def startup(method: str, decoder: Path, size: tuple[int, int], repeats: int) -> tuple[float, float]:
    """Wall and CPU seconds of a Python process that starts, imports what a stylize-span job imports, loads the
    method's model and runs its network twice on a frame of `size`, less two steady calls of the network: the
    fixed cost of one job (median of `repeats`)."""
    import resource
    import statistics

    env = dict(os.environ, PYTHONPATH=str(REPO))
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", STARTUP, method, str(decoder), str(size[1]), str(size[0])],
                              check=True, env=env, capture_output=True, text=True)
        steady = float(proc.stdout.split()[-1])
        walls.append(time.perf_counter() - t0 - 2 * steady)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime - 2 * steady)
    return statistics.median(walls), statistics.median(cpus)


def cmd_fixed(a) -> int:
    """Fixed cost: a process that starts, imports and loads the model (`startup`). Work: spans of 1 and k
    identical chunks through `artify stylize-span`, t(k) = F + k C: seconds per frame C / frames (and
    F = t(1) - C, the fixed cost as the difference shows it: noisy where C is large)."""
    root = Path(a.root) / "fixed"
    k = a.chunks
    rows = []
    for method in a.methods.split(","):
        small = fixed_cost_span(root, Path(a.clip), Path(a.style), method, 1, a.frames, a.size)
        from artify.media.video import read_frames

        h, w = read_frames(small / "frames" / "0000.npy").shape[1:3]
        fixed = startup(method, small / "decoder.pth", (w, h), a.repeats)
        print(f"{method}: start, imports, model load, first call {fixed[0]:.2f} s wall / {fixed[1]:.2f} s CPU",
              flush=True)
        if a.startup_only:
            rows.append((method, fixed, None, None))
            continue
        large = fixed_cost_span(root, Path(a.clip), Path(a.style), method, k, a.frames, a.size)
        t1, tk = time_span(small, method), time_span(large, method)
        per_chunk = [(tk[i] - t1[i]) / (k - 1) for i in range(2)]
        rows.append((method, fixed, [c / a.frames for c in per_chunk], [t1[i] - per_chunk[i] for i in range(2)]))
        print(f"{method}: 1 chunk {t1[0]:.1f} s wall / {t1[1]:.1f} s CPU, {k} chunks {tk[0]:.1f} / {tk[1]:.1f}",
              flush=True)
    print(f"\nfixed cost of one stylize-span job (process start, imports, model load) against its work: CPU, 1 "
          f"thread, {a.size} px, chunks of {a.frames} frames; one run (load {os.getloadavg()[0]:.1f})")
    print(f"{'method':<10} {'fixed s wall/CPU':>18} {'s/frame wall/CPU':>18} {'frames: fixed <= 10 %':>22} "
          f"{'24-frame chunk alone':>21} {'fixed by difference':>20}")
    for method, fixed, per_frame, by_difference in rows:
        if per_frame is None:
            print(f"{method:<10} {fixed[0]:>8.2f} / {fixed[1]:<7.2f}")
            continue
        need = fixed[1] / (0.1 * per_frame[1]) if per_frame[1] > 0 else float("inf")
        alone = fixed[1] / (fixed[1] + 24 * per_frame[1])
        print(f"{method:<10} {fixed[0]:>8.2f} / {fixed[1]:<7.2f} {per_frame[0]:>8.3f} / {per_frame[1]:<7.3f} "
              f"{need:>22.0f} {100 * alone:>19.1f} % {by_difference[0]:>8.2f} / {by_difference[1]:<7.2f}")
    print("(CPU seconds are this process's own, steadier than wall time on a shared machine; '24-frame chunk "
          "alone': the fixed cost's share of a job that did one default chunk, as before spans)")
    return 0


def watch(proc: subprocess.Popen, temp_dirs: list[Path], every: float = 0.5) -> dict:
    """Until proc ends: peak bytes under temp_dirs (the temp() frames and flows) and peak resident memory of
    proc's whole process tree, sampled every `every` seconds."""
    import psutil

    peak = {"temp_mb": 0.0, "tree_rss_mb": 0.0, "snakemake_cpu": 0.0}
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            times = root.cpu_times()
            peak["snakemake_cpu"] = times.user + times.system  # Snakemake's own process, not its jobs
        except psutil.Error:
            pass
        size = 0
        for d in temp_dirs:
            for dirpath, _, files in os.walk(d):
                for f in files:
                    try:
                        size += os.path.getsize(os.path.join(dirpath, f))
                    except OSError:
                        pass
        rss = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak["temp_mb"] = max(peak["temp_mb"], size / 1e6)
        peak["tree_rss_mb"] = max(peak["tree_rss_mb"], rss / 1e6)
        time.sleep(every)
    return peak


def span_work(workdir: Path, rule: str) -> tuple[float, float]:
    """Wall and CPU seconds the span jobs of `rule` spent on their chunks (run_span's line in each log)."""
    wall = cpu = 0.0
    for log in (workdir / "logs" / rule).glob("*.log"):
        for w, c in re.findall(r"chunks made in ([0-9.]+) s \(([0-9.]+) s CPU\)", log.read_text()):
            wall, cpu = wall + float(w), cpu + float(c)
    return wall, cpu


def run_arbitrary(workdir: Path, content: Path, style: Path, size: int, cores: int, network: str = "magenta",
                  decoder: Path | None = None, **settings) -> dict:
    """The arbitrary method through the whole pipeline to stylized.mp4, watched; returns wall, rule and
    chunk-work seconds and peaks. network magenta: the pretrained network (the default); adain: `decoder`, or
    without one an untrained decoder of the default width (it costs what a trained one costs, but its pictures
    are nearly black)."""
    from artify.quality.cost import read_benchmark

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    if network == "adain":
        import torch

        from artify.methods.arbitrary import adain_decoder
        from artify.settings import defaults

        if decoder is None:
            torch.manual_seed(0)
            decoder = workdir / "decoder.pth"
            torch.save(adain_decoder(defaults()["train_width"]).state_dict(), decoder)
        settings["adain_decoder"] = decoder
    write_job(workdir, content, style, "arbitrary", size=size, device="cpu", arbitrary_network=network, **settings)
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"), "results/long/stylized.mp4",
           "--directory", str(workdir), "--configfile", str(REPO / "config/config.yaml"), "--config",
           f"jobs={workdir / 'jobs.tsv'}", "--cores", str(cores), "--quiet", "all"]
    import resource

    log = open(workdir / "snakemake.out", "w")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, ARTIFY_PROGRESS="0"))
    peak = watch(proc, [workdir / "results/long" / d for d in ("frames", "flows")])
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # every process of the run, each reaped by its parent
    peak["tree_cpu"] = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    log.close()
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}: {(workdir / 'snakemake.out').read_text()[-3000:]}")
    import pandas as pd

    rules = {}
    for path in (workdir / "benchmarks").glob("*/*.tsv"):
        b = read_benchmark(path)
        cpu = pd.read_csv(path, sep="\t")["cpu_time"].mean()  # the job's process tree, user + system
        r = rules.setdefault(path.parent.name, {"s": 0.0, "cpu": 0.0, "jobs": 0, "rss": 0.0})
        r["s"] += b["s"]
        r["cpu"] += 0.0 if cpu != cpu else float(cpu)
        r["jobs"] += 1
        r["rss"] = max(r["rss"], 0.0 if b["max_rss"] != b["max_rss"] else b["max_rss"])
    from artify.media.chunks import read_chunks

    plan = read_chunks(workdir / "results/long/chunks.tsv")
    return {"wall": wall, "rules": rules, "stylize": span_work(workdir, "stylize_chunk"),
            "flow": span_work(workdir, "flow_chunk"), "frames": plan[-1].stop, "chunks": len(plan),
            "spans": plan[-1].span + 1, **peak}


def report_run(label: str, r: dict, cores: int) -> None:
    """Overhead = what the run cost beyond the stylization's own time (the stylize span jobs' seconds on their
    chunks), as wall time (cores x wall: a core idle while others work counts) and as CPU time (every job's
    and Snakemake's own CPU: what contention from other processes on the machine does not change)."""
    rules, rules_cpu = sum(v["s"] for v in r["rules"].values()), sum(v["cpu"] for v in r["rules"].values())
    (own, own_cpu), (flow, flow_cpu) = r["stylize"], r["flow"]
    # CPU of the whole run from the kernel's accounting of every process (Snakemake's benchmark cpu_time is
    # sampled and misses short-lived children)
    spent, spent_cpu = cores * r["wall"], r["tree_cpu"]
    print(f"\n{label}: {r['frames']} frames, {r['chunks']} chunks in {r['spans']} spans; wall {r['wall']:.1f} s "
          f"x {cores} cores; CPU of every process {r['tree_cpu']:.1f} s; jobs {rules:.1f} s ({rules_cpu:.1f} s CPU as "
          f"Snakemake's benchmarks sample it), Snakemake itself {r['snakemake_cpu']:.1f} s CPU")
    for name, v in sorted(r["rules"].items(), key=lambda kv: -kv[1]["s"]):
        print(f"    {name:<18} {v['jobs']:>4} jobs {v['s']:>9.1f} s {v['cpu']:>9.1f} s CPU  peak {v['rss']:>7.0f} MB")
    print(f"  the stylization's own time (stylize span jobs' seconds on their chunks) {own:.1f} s ({own_cpu:.1f} s "
          f"CPU); the flows' {flow:.1f} s ({flow_cpu:.1f} s CPU)")
    for name, base, base_cpu in (("stylization", own, own_cpu), ("stylization + flows", own + flow, own_cpu + flow_cpu)):
        print(f"  overhead vs {name}: wall {100 * (spent / base - 1):+.1f} %, CPU {100 * (spent_cpu / base_cpu - 1):+.1f} %")
    print(f"  stylize span jobs beyond their chunks (start, imports, model): {r['rules']['stylize_chunk']['s'] - own:.1f} s "
          f"over {r['rules']['stylize_chunk']['jobs']} jobs")
    print(f"  peaks: temporary frames+flows on disk {r['temp_mb']:.1f} MB; resident memory of snakemake and its "
          f"jobs together {r['tree_rss_mb']:.0f} MB; largest job {max(v['rss'] for v in r['rules'].values()):.0f} MB")


def cmd_overhead(a) -> int:
    """The arbitrary method end to end (one core: wall and job times add up) against its own time; temp disk
    and memory peaks at two lengths."""
    from artify.demo import make_demo

    root, style = Path(a.root), Path(a.style)
    runs = []
    if a.demo:
        make_demo(root / "demo" / "content.mp4", root / "demo" / "style.mp4")
        runs.append((f"demo (3 s, its style video) at {a.size} px",
                     run_arbitrary(root / "overhead_demo", root / "demo" / "content.mp4", root / "demo" / "style.mp4",
                                   a.size, a.cores, a.network, a.decoder)))
        report_run(*runs[-1], a.cores)
    for minutes in [float(m) for m in a.minutes.split(",") if m]:
        clip = make_clip(root / f"testsrc2_{a.clip_size}_{minutes:g}min.mp4", minutes * 60, a.clip_size)
        runs.append((f"{minutes:g}-minute {a.clip_size} testsrc2 clip with a tone at {a.size} px",
                     run_arbitrary(root / f"overhead_{minutes:g}min_{a.size}", clip, style, a.size, a.cores,
                                   a.network, a.decoder)))
        report_run(*runs[-1], a.cores)
    network = ("Magenta, pretrained" if a.network == "magenta" else
               f"AdaIN, {a.decoder or 'an untrained decoder of the default width'}")
    print(f"\narbitrary method ({network}), device cpu, "
          f"--cores {a.cores}; this machine, one run")
    for label, r in runs:
        report_run(label, r, a.cores)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("plan", help="dry-run time against the input's length")
    q.add_argument("--minutes", default="12,24,120")
    q.add_argument("--method", default="gatys")
    q.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    q.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "artify-bench-long"),
                   help="clips and working directories (kept: the clips are reused)")
    q.set_defaults(func=cmd_plan)
    q = sub.add_parser("fixed", help="per-job fixed cost of stylize-span per method, CPU")
    q.add_argument("--methods", default="gatys,segmented,arbitrary")
    q.add_argument("--clip", default=str(SHARED / "videos" / "adain_cutBunny.mp4"))
    q.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    q.add_argument("--frames", type=int, default=8, help="frames per chunk")
    q.add_argument("--chunks", type=int, default=3, help="chunks of the longer span")
    q.add_argument("--size", type=int, default=256)
    q.add_argument("--repeats", type=int, default=3, help="start-up measurements per method (median)")
    q.add_argument("--startup-only", action="store_true", help="only the fixed cost, not the work per frame")
    q.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "artify-bench-long"))
    q.set_defaults(func=cmd_fixed)
    q = sub.add_parser("overhead", help="arbitrary end to end vs its own time; temp disk and memory peaks")
    q.add_argument("--minutes", default="10", help="clip lengths (made here), comma-separated; '' = none")
    q.add_argument("--clip-size", default="256x144", help="the clips' own size")
    q.add_argument("--size", type=int, default=256, help="processing size")
    q.add_argument("--demo", action="store_true", help="also the demo (3 s, its style video)")
    q.add_argument("--cores", type=int, default=1)
    q.add_argument("--network", choices=["magenta", "adain"], default="magenta", help="arbitrary_network")
    q.add_argument("--decoder", type=Path, help="--network adain: a trained decoder.pth (default: an untrained "
                                                "one, as fast)")
    q.add_argument("--style", default=str(SHARED / "styles" / "starry_night.jpg"))
    q.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "artify-bench-long"))
    q.set_defaults(func=cmd_overhead)
    a = p.parse_args(argv)
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
