"""Planning a feature-length input (dry runs only): a 2-hour, 24-fps content video as probe would describe it,
its chunks planned by the real plan-chunks command, then `snakemake -n` as a local run and as the SLURM
executor would submit it: one job per span and stage, not per chunk, and one submission per span."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from artify.quality.sizing import LONG_SPAN
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

FRAMES = 2 * 60 * 60 * 24  # two hours at 24 fps


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """A working directory where probe and plan_chunks have run for a 2-hour video: meta.json written as probe
    writes it (the content file itself is a stand-in: only its path and age matter to a dry run)."""
    from artify.cli import main
    from artify.media.video import VideoMeta

    d = tmp_path_factory.mktemp("film")
    content, style = d / "film.mp4", d / "style.png"
    content.write_bytes(b"not decoded by a dry run")
    style.write_bytes(b"not read by a dry run")
    for f in (content, style):
        os.utime(f, (1_000_000_000, 1_000_000_000))  # older than everything made from it
    (d / "results/film").mkdir(parents=True)
    VideoMeta(path=str(content), fps="24/1", width=128, height=72, rotation=0, frames=FRAMES, audio=True,
              audio_codec="aac", duration=FRAMES / 24, keyframes=list(range(0, FRAMES, 250))).save(
        d / "results/film/meta.json")
    assert main(["plan-chunks", "--meta", str(d / "results/film/meta.json"), "-o", str(d / "results/film/chunks.tsv"),
                 "--method", "gatys", "--device", "cpu"]) == 0
    (d / "jobs.tsv").write_text(f"job\tcontent\tstyle\tmethod\tdevice\nfilm\t{content}\t{style}\tgatys\tcpu\n")
    return d


def dry_run(workdir: Path, *args: str) -> str:
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(REPO / "Snakefile"), "-n", "results/film/stylized.mp4",
           *args, "--directory", str(workdir), "--configfile", str(REPO / "config/config.yaml"),
           "--config", f"jobs={workdir / 'jobs.tsv'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_a_two_hour_film_is_a_few_hundred_jobs_one_per_span_and_stage(film):
    from artify.media.chunks import read_chunks
    from tests.test_pipeline import planned_jobs

    plan = read_chunks(film / "results/film/chunks.tsv")
    spans = plan[-1].span + 1
    # spans of at most LONG_SPAN frames, at least half full (they end where the next starts at a keyframe)
    assert len(plan) == FRAMES // 24 == 7200 and FRAMES / LONG_SPAN <= spans <= 2 * FRAMES / LONG_SPAN
    planned = planned_jobs(dry_run(film, "--cores", "1"))
    assert planned == {"extract_frames": spans, "flow_chunk": spans, "stylize_chunk": spans, "detect_scenes": 1,
                       "detect_cuts": 1, "select_keyframes": 1, "plan_schedule": 1, "assemble": 1}


def test_under_slurm_each_span_is_one_submission(film):
    """The SLURM executor's dry run lists what it would submit: a group job per span holding that span's
    extraction, flow and stylization, and the few per-video jobs on their own."""
    out = dry_run(film, "--executor", "slurm", "--jobs", "100")
    blocks = re.split(r"^(?=\[[^\]]+\] Group job |rule \w+:)", out, flags=re.M)
    groups = {}
    singles = []
    for block in blocks:
        head = re.match(r"\[[^\]]+\] Group job (\S+) ", block)
        if head:
            groups[head.group(1)] = sorted((rule, span) for rule, span in re.findall(
                r"^    rule (\w+):.*?wildcards: job=film, span=(\d+)", block, re.M | re.S))
        elif block.startswith("rule "):
            singles.append(block.split(":")[0].removeprefix("rule "))
    spans = read_spans(film)
    assert sorted(groups) == [f"span_film_{s:04d}" for s in range(spans)]
    for name, members in groups.items():
        span = name.rsplit("_", 1)[1]
        assert members == [("extract_frames", span), ("flow_chunk", span), ("stylize_chunk", span)], (name, members)
    assert sorted(singles) == ["assemble", "detect_cuts", "detect_scenes", "plan_schedule", "select_keyframes"]
    assert len(groups) + len(singles) == spans + 5 <= 400  # submissions for the whole film


def read_spans(workdir: Path) -> int:
    from artify.media.chunks import read_chunks

    return read_chunks(workdir / "results/film/chunks.tsv")[-1].span + 1


# The per-video stages run once per job whatever its length; on a short input with a fast method their start-up
# is most of the pipeline's cost, so the ones that need no network must not import torch (about 2 s of CPU).
LIGHT_STAGES = {"probe": "artify.stages.video", "plan-chunks": "artify.stages.video",
                "extract-frames": "artify.stages.video", "detect-scenes / detect-cuts": "artify.stages.style",
                "plan-schedule": "artify.stages.style", "flow-span (DIS)": "artify.stages.flow",
                "assemble": "artify.stages.video", "stage-times / deflicker": "artify.stages.evaluate",
                "spans": "artify.media.spans", "device auto": "artify.devices", "keyframe table": "artify.style.keyframes"}


@pytest.mark.parametrize("stage", sorted(LIGHT_STAGES))
def test_light_stages_do_not_import_torch(stage):
    module = LIGHT_STAGES[stage]
    code = f"import sys, artify.cli, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert out.stdout.strip() == "False", f"{stage} ({module}) imports torch"


def test_auto_device_needs_no_torch_where_no_gpu_is_visible():
    code = ("import sys; from artify.devices import auto_device; "
            "print(auto_device('auto'), auto_device('cuda'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    log, answer = out.stdout.splitlines()
    assert answer.split() == ["cpu", "cuda", "False"] and log == "device auto: cpu (no CUDA device found)"


@pytest.mark.parametrize("node", ["/dev/dxg", "/dev/nvhost-ctrl", "/dev/nvidia0"])
def test_auto_device_asks_torch_where_a_gpu_may_be(node):
    """WSL2 gives its GPU as /dev/dxg and a Jetson board as /dev/nvhost-*, with no /dev/nvidia[0-9]: there the
    decision is torch's, not "no GPU" without asking."""
    code = ("import fnmatch, glob, sys; glob.glob = lambda pattern: fnmatch.filter([sys.argv[1]], pattern); "
            "from artify.devices import has_cuda; has_cuda(); print('torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    out = subprocess.run([sys.executable, "-c", code, node], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "True"


def test_auto_device_is_torchs_answer_where_torch_is_imported_anyway(monkeypatch, capsys):
    import torch

    import artify.devices as devices

    monkeypatch.setattr(devices.glob, "glob", lambda pattern: [])  # no device node this check knows of
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    devices._auto.cache_clear()
    try:
        assert devices.has_cuda() and devices.auto_device("auto") == "cuda"
    finally:
        devices._auto.cache_clear()
    assert capsys.readouterr().out == "device auto: cuda\n"
