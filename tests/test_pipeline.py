"""End to end: Snakemake on a tiny config with a real clip and a real painting.

One workflow run is shared by the tests of this module (it takes a minute on 2 cores); each test then
asks one question of it: the output, caching, reruns after a parameter change, resuming after a kill.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from artify.media.video import load_image
from tests.conftest import REPO, require_shared
from tests.pictures import assert_job_stylized

pytestmark = pytest.mark.e2e

TINY = {"max_frames": 12, "size": 96, "chunk_frames": 5, "chunk_overlap": 1, "iterations": 30,
        "warm_iterations": 10}


def snakemake(workdir: Path, *args, check=True, **kwargs):
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(REPO / "config/config.yaml"), "--config", f"jobs={workdir / 'jobs.tsv'}",
           "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def write_jobs(workdir: Path, content: Path, style: Path, **overrides):
    settings = TINY | overrides
    header = ["job", "content", "style", "method", *settings]
    row = ["tiny", str(content), str(style), "gatys", *map(str, settings.values())]
    (workdir / "jobs.tsv").write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")


def spans(workdir: Path, job: str = "tiny") -> int:
    from artify.media.chunks import read_chunks

    return read_chunks(workdir / "results" / job / "chunks.tsv")[-1].span + 1


def planned_jobs(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count."""
    table = dry_run_output.split("Job stats:")[-1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    content = require_shared("videos", "adain_cutBunny.mp4")
    style = require_shared("styles", "starry_night.jpg")
    workdir = tmp_path_factory.mktemp("pipeline")
    write_jobs(workdir, content, style)
    snakemake(workdir)
    return workdir, content, style


def test_output_has_the_inputs_frames_fps_audio_and_is_stylized(run):
    from artify.quality.evaluate import scaled_keyframe_grams, style_distance_per_frame
    from artify.features import mix_grams
    from artify.media.video import load_image
    from artify.media.video import probe, read_frames

    workdir, content, style = run
    out = workdir / "results/tiny/stylized.mp4"
    meta = probe(out)
    assert meta.frames == TINY["max_frames"] and meta.fps == probe(content).fps == "24/1"
    assert meta.audio and meta.audio_codec == "aac"
    assert (meta.width, meta.height) == (96, 54)
    stylized = assert_job_stylized(workdir, "tiny")  # every frame a real stylized picture
    original = read_frames(content, 0, len(stylized), size=(96, 54))
    target = mix_grams(scaled_keyframe_grams([load_image(style, 96)], size=(96, 54)), [1.0])
    ours, theirs = style_distance_per_frame(stylized, target).mean(), style_distance_per_frame(original, target).mean()
    assert ours < 0.7 * theirs, (ours, theirs)
    metrics = json.loads((workdir / "results/tiny/metrics.json").read_text())
    assert set(metrics["warp_error"]) == {"short", "long"} and metrics["warp_error_input"]["short"] >= 0
    assert metrics["blank_frames"] == []
    # every rule leaves a log and a benchmark
    for rule in ("probe", "plan_chunks", "extract_frames", "flow_chunk", "stylize_chunk", "assemble", "evaluate",
                 "detect_scenes", "select_keyframes", "plan_schedule", "detect_cuts"):
        assert list((workdir / "logs" / rule).iterdir()) and list((workdir / "benchmarks" / rule).iterdir()), rule
    # frames and flows were temporary
    for temporary in ("frames", "flows"):
        assert not (workdir / "results/tiny" / temporary).exists() or not list((workdir / "results/tiny" / temporary).iterdir())


def test_second_run_has_nothing_to_do(run):
    workdir, _, _ = run
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout


def test_changing_a_stylization_parameter_reruns_only_what_follows(run):
    workdir, content, style = run
    write_jobs(workdir, content, style, style_weight=500.0)
    try:
        planned = planned_jobs(snakemake(workdir, "-n").stdout)
    finally:
        write_jobs(workdir, content, style)
    n = spans(workdir)  # one job per span and stage (3 chunks: 1 span at the default span size)
    # extract_frames and flow_chunk rerun only because their outputs are temp() and already deleted
    assert planned == {"extract_frames": n, "flow_chunk": n, "stylize_chunk": n, "assemble": 1,
                       "stage_times": 1, "evaluate": 1, "side_by_side": 1, "contact_sheet": 1, "plot_per_frame": 1,
                       "compare": 1, "all": 1}


def test_changing_only_the_flow_method_reruns_the_flow_and_what_reads_it(run):
    """flow_chunk's output is temp() and deleted by now, yet Snakemake sees its params change (checked: this
    passes as it is) and plans it again with everything that reads it."""
    workdir, content, style = run
    write_jobs(workdir, content, style, flow_method="raft")  # the default, auto, is DIS for gatys on a CPU
    try:
        planned = planned_jobs(snakemake(workdir, "-n").stdout)
    finally:
        write_jobs(workdir, content, style)
    n = spans(workdir)
    # nothing before the flow stage (probe, cuts, plan, scenes, keyframes, schedule); extract_frames only
    # because its frames are temp() and deleted
    assert planned == {"extract_frames": n, "flow_chunk": n, "stylize_chunk": n, "assemble": 1,
                       "stage_times": 1, "evaluate": 1, "side_by_side": 1, "contact_sheet": 1, "plot_per_frame": 1,
                       "compare": 1, "all": 1}


def test_metrics_say_which_flow_measured_them(run):
    from artify.devices import auto_device
    from artify.quality.evaluate import eval_flow_method

    workdir, _, _ = run
    flow = json.loads((workdir / "results/tiny/metrics.json").read_text())["flow"]
    assert flow == eval_flow_method("auto", auto_device("auto")).describe()  # DIS on a CPU, RAFT-large on CUDA


def test_changing_a_scene_parameter_reruns_style_stages_not_extraction(run):
    workdir, content, style = run
    write_jobs(workdir, content, style, merge_threshold=0.5)
    try:
        planned = planned_jobs(snakemake(workdir, "-n").stdout)
    finally:
        write_jobs(workdir, content, style)
    assert "select_keyframes" in planned and "detect_scenes" not in planned
    assert "probe" not in planned and "plan_chunks" not in planned


def test_killed_run_resumes_without_redoing_finished_chunks(tmp_path):
    """Killed while a span's job is between chunks: the rerun runs that span's job again, which keeps the
    chunks it had finished (files untouched) and stylizes the rest."""
    content = require_shared("videos", "adain_cutBunny.mp4")
    style = require_shared("styles", "starry_night.jpg")
    write_jobs(tmp_path, content, style, max_frames=15, iterations=40, warm_iterations=20)
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(REPO / "config/config.yaml"), "--config", f"jobs={tmp_path / 'jobs.tsv'}",
           "--cores", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    partial = tmp_path / "results/tiny/stylized/.0000.partial"  # the one span's chunks, as they finish

    def finished():  # chunks whose file and key are written
        return {p.name for p in partial.glob("*.npy") if p.with_name(p.name + ".key").exists()} if partial.exists() else set()

    deadline = time.time() + 600
    try:
        while time.time() < deadline and not finished():
            time.sleep(0.2)
        time.sleep(0.5)
        done = {name: (partial / name).stat().st_mtime_ns for name in finished()}
        assert done and len(done) < 3, "never caught the span between its first and its last chunk"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert spans(tmp_path) == 1
    assert not (tmp_path / "results/tiny/stylized/0000").exists()  # nothing half-done looks finished
    planned = planned_jobs(snakemake(tmp_path, "-n").stdout)
    assert planned["stylize_chunk"] == 1  # the span's job runs again ...
    snakemake(tmp_path)
    out = tmp_path / "results/tiny/stylized/0000"
    for name, mtime in done.items():  # ... without redoing its finished chunks
        assert (out / name).stat().st_mtime_ns == mtime
    assert sorted(p.name for p in out.glob("*.npy")) == ["0000.npy", "0001.npy", "0002.npy"]
    log = (tmp_path / "logs/stylize_chunk/tiny_0000.log").read_text()
    assert re.search(rf"{3 - len(done)} chunks made in [0-9.]+ s \([0-9.]+ s CPU\), {len(done)} reused", log), log[-500:]
    assert_job_stylized(tmp_path, "tiny")


def test_bad_jobs_table_stops_before_any_work(tmp_path):
    (tmp_path / "jobs.tsv").write_text("job\tcontent\tstyle\tsize\nx\ta.mp4\tb.jpg\thuge\n")
    proc = snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0
    assert f"{tmp_path / 'jobs.tsv'}: row 2: field 'size'" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_missing_content_video_is_named(tmp_path, painting):
    write_jobs(tmp_path, tmp_path / "no such clip.mp4", painting)
    proc = snakemake(tmp_path, check=False)
    assert proc.returncode != 0
    assert "no such clip.mp4" in proc.stdout + proc.stderr


def test_segmented_and_arbitrary_methods_run_through_the_pipeline(tmp_path):
    """The other two methods, wired the same way: masks per chunk for segmented; for arbitrary Magenta's
    pretrained network (nothing trained), and AdaIN with a decoder trained for the job (allowed on the CPU)."""
    from artify.media.video import probe

    content = require_shared("videos", "moviepy_chaplin.mp4")
    style = require_shared("styles", "wave.jpg")
    tiny = {"max_frames": 6, "size": 64, "chunk_frames": 3, "chunk_overlap": 1, "iterations": 5,
            "warm_iterations": 3, "train_iterations": 4, "train_size": 64, "train_batch": 2}
    header = ["job", "content", "style", "method", "arbitrary_network", "train_on_cpu", *tiny]
    jobs = {"segmented": ("segmented", "magenta", "false"), "arbitrary": ("arbitrary", "magenta", "false"),
            "adain": ("arbitrary", "adain", "true")}
    rows = [[job, str(content), str(style), *columns, *map(str, tiny.values())] for job, columns in jobs.items()]
    (tmp_path / "jobs.tsv").write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    snakemake(tmp_path, *(f"results/{job}/stylized.mp4" for job in jobs))
    for job in jobs:
        meta = probe(tmp_path / f"results/{job}/stylized.mp4")
        assert meta.frames == 6 and meta.audio
        if job != "adain":  # a decoder of 4 training iterations makes flat frames: that job checks the wiring
            assert_job_stylized(tmp_path, job)
    assert len(list((tmp_path / "logs/segment_chunk").iterdir())) == spans(tmp_path, "segmented")
    assert (tmp_path / "resources/models/adain/decoder.pth").exists()
    assert not (tmp_path / "resources/models/arbitrary").exists()  # Magenta's network trains nothing
    assert not (tmp_path / "logs/train_arbitrary/arbitrary.log").exists()


def test_propagate_trains_once_per_shot_and_a_change_retrains_only_what_it_touches(tmp_path):
    """Method propagate through the workflow: rule propagate_keyframes (each shot's keyframes, across the clip's
    cut), then rule train_propagate (one network per shot) before the stylization, each with its own benchmark
    file (the job's cost counts both); an apply-only setting retrains nothing, a training setting retrains every
    shot but does not rerun the keyframes' rule, so stylizes no keyframe again."""
    content = require_shared("videos", "adain_cutBunny.mp4")  # one cut, at frame 235
    style = require_shared("styles", "wave.jpg")
    tiny = {"size": 64, "chunk_frames": 24, "chunk_overlap": 2, "iterations": 5, "warm_iterations": 3,
            "propagate_steps": 40, "propagate_patch": 32, "propagate_batch": 8, "propagate_every": 120}
    header = ["job", "content", "style", "method", *tiny]
    row = ["prop", str(content), str(style), "propagate", *map(str, tiny.values())]
    (tmp_path / "jobs.tsv").write_text("\t".join(header) + "\n" + "\t".join(row) + "\n")
    # all 240 frames: the cut at 235 makes two shots
    snakemake(tmp_path, "results/prop/stylized.mp4")
    from artify.methods.propagate import read_shots

    shots = read_shots(tmp_path / "results/prop/propagate/shots.tsv")
    assert [(r["start"], r["stop"]) for r in shots] == [(0, 235), (235, 240)], shots
    assert all(int(r["keyframes"].split(",")[0]) == r["start"] for r in shots)
    assert_job_stylized(tmp_path, "prop")
    log = tmp_path / "logs/train_propagate/prop.log"
    assert log.read_text().count("; training") == 2
    assert all((tmp_path / f"benchmarks/{rule}/prop.tsv").is_file()
               for rule in ("propagate_keyframes", "train_propagate"))

    def rerun(*options, **changed):
        settings = tiny | changed
        row = ["prop", str(content), str(style), "propagate", *map(str, settings.values())]
        (tmp_path / "jobs.tsv").write_text("\t".join([*header[:4], *settings]) + "\n" + "\t".join(row) + "\n")
        run = snakemake(tmp_path, *options, "results/prop/stylized.mp4")
        return log.read_text(), run.stdout + run.stderr

    folder = tmp_path / "results/prop/propagate"
    stylized = sorted(p.stat().st_mtime_ns for p in folder.glob("keyframe_*.npz"))
    assert "; training" not in rerun(batch_frames=3)[0]  # apply-only
    table = (folder / "shot_keyframes.tsv").read_bytes()
    trained, said = rerun(batch_frames=3, propagate_lr=0.001)  # a training setting alone
    assert trained.count("; training") == 2
    # the keyframes' rule has no training setting among its options; Snakemake runs it again only where the
    # frames, temporary, were decoded again for the training (it then finds every keyframe made)
    why = re.search(r"rule propagate_keyframes:\n(?:\s+\w+: .*\n)*?\s+reason: (.*)", said)
    assert why is None or ("Params" not in why[1] and "results/prop/frames/" in why[1]), why[1]
    assert (folder / "shot_keyframes.tsv").read_bytes() == table
    assert sorted(p.stat().st_mtime_ns for p in folder.glob("keyframe_*.npz")) == stylized  # none stylized again
    # a dry run plans group jobs as a cluster run does: a span's group must not hold the frames the training,
    # outside it, needs before the group's stylization (Snakemake refuses such a group)
    assert "rule train_propagate:" in rerun("-n", batch_frames=3, propagate_lr=0.0005)[1]


def test_temporary_frames_stay_a_few_chunks_however_many_chunks(tmp_path):
    """Priorities make free cores finish started chunks before decoding new spans: peak temp disk follows
    the span size and the jobs in flight, not the video's length."""
    content = require_shared("videos", "adain_cutBunny.mp4")
    style = require_shared("styles", "wave.jpg")
    # spans of 2 chunks (frames 0-6, 5-12, 11-18, ...): 5 extraction jobs
    write_jobs(tmp_path, content, style, max_frames=30, size=48, chunk_frames=3, chunk_overlap=1, span_frames=8,
               iterations=3, warm_iterations=2)
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(REPO / "config/config.yaml"), "--config", f"jobs={tmp_path / 'jobs.tsv'}",
           "--cores", "2", "results/tiny/stylized.mp4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks, frames, peak = tmp_path / "results/tiny/stylized", tmp_path / "results/tiny/frames", 0
    while proc.poll() is None:
        if frames.exists():
            peak = max(peak, len(list(frames.glob("*/*.npy"))))
        time.sleep(0.1)
    assert proc.returncode == 0
    assert len(list(chunks.glob("*/*.npy"))) == 10
    assert_job_stylized(tmp_path, "tiny")
    assert len(list((tmp_path / "logs/extract_frames").iterdir())) == 5
    assert 1 <= peak <= 4, peak  # at most two spans of two chunks


def test_the_demo_through_a_style_transition_with_the_defaults(tmp_path):
    """The case that shipped black frames: the demo's own inputs, keyframes and schedule with every default
    (L-BFGS, 60 iterations, style_weight 50, temporal) at the demo's 192 px, a chunk starting cold at frame
    20, inside the cross-fade from the first style to the second (a mixed schedule row). The old optimiser went
    to NaN on such a frame (frame 21, row (0.91, 0.09, 0), in the schedule of the time) and the whole chunk was
    written black. Chunks of 12 frames make the span of the chunk that starts there (frames 20-35) the only
    one stylized."""
    from artify.style.schedule import StyleSchedule
    from artify.media.video import read_frames
    from tests.pictures import assert_real_pictures

    from artify.media.chunks import read_chunks
    from artify.media.spans import chunk_path

    (tmp_path / "jobs.tsv").write_text("job\tcontent\tstyle\tmethod\tsize\tchunk_frames\n"
                                       "demo\tresources/demo/content.mp4\tresources/demo/style.mp4\tgatys\t192\t12\n")
    snakemake(tmp_path, "results/demo/chunks.tsv")
    chunk = read_chunks(tmp_path / "results/demo/chunks.tsv")[2]
    assert (chunk.read_start, chunk.stop) == (20, 36)
    span = tmp_path / f"results/demo/stylized/{chunk.span:04d}"
    snakemake(tmp_path, str(span.relative_to(tmp_path)))
    weights = StyleSchedule.load(tmp_path / "results/demo/schedule.tsv").weights_range(20, 36)
    assert 0.5 < weights[0].max() < 0.99  # the cold start is a mix of two styles, inside a cross-fade
    inputs = read_frames(tmp_path / "resources/demo/content.mp4", 0, 36, size=(192, 108))[20:]
    keyframes = [load_image(f) for f in sorted((tmp_path / "results/demo/keyframes").glob("*.png"))]
    assert_real_pictures(read_frames(chunk_path(span, 2, ".npy")), inputs, keyframes, weights, what="demo chunk 2")
