"""After a hard kill: `make run`'s wrapper (artify.resume) removes Snakemake's stale lock only when no Snakemake
process or job runs in the directory, says what to run when one does, and the next run finishes with the
finished chunks kept."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artify.resume import main, running_here, workdir
from tests.conftest import REPO, require_shared
from tests.pictures import assert_job_stylized
from tests.test_pipeline import planned_jobs, write_jobs

PYTHON = sys.executable


def fake_snakemake(tmp_path) -> Path:
    """A stand-in `snakemake` that logs its arguments and, like the real one, clears the lock on --unlock."""
    script = tmp_path / "bin" / "snakemake"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\n"
                      "case \"$*\" in *--unlock*) rm -f .snakemake/locks/* ;; esac\n")
    script.chmod(0o755)
    return script


def lock(directory: Path):
    (directory / ".snakemake" / "locks").mkdir(parents=True, exist_ok=True)
    (directory / ".snakemake" / "locks" / "0.input.lock").write_text("somefile\n")


def test_the_working_directory_is_the_commands():
    assert workdir(["snakemake", "--directory", "/tmp/x y"]) == Path("/tmp/x y")
    assert workdir(["snakemake", "-d", "/tmp"]) == Path("/tmp")
    assert workdir(["snakemake", "--cores", "2"]) == Path.cwd()


def test_stale_lock_is_removed_and_the_command_runs(tmp_path, monkeypatch, capsys):
    script = fake_snakemake(tmp_path)
    lock(tmp_path)
    monkeypatch.chdir(tmp_path)
    pid = os.fork()
    if pid == 0:  # the wrapper execs the command: run it in a child
        os._exit(main([str(script), "--cores", "2"]) or 0)
    assert os.waitpid(pid, 0)[1] == 0
    calls = (script.parent / "calls").read_text().splitlines()
    assert calls == ["--cores 2 --unlock", "--cores 2"]
    locks = tmp_path / ".snakemake" / "locks"
    assert not locks.exists() or not list(locks.iterdir())


def test_a_live_snakemake_keeps_its_lock(tmp_path, monkeypatch, capsys):
    script = fake_snakemake(tmp_path)
    lock(tmp_path)
    live = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 60"], cwd=tmp_path)
    try:
        deadline = time.time() + 10
        while not running_here(tmp_path.resolve()) and time.time() < deadline:
            time.sleep(0.05)
        monkeypatch.chdir(tmp_path)
        assert main(["--again", "make run", str(script), "--cores", "2"]) == 1
    finally:
        live.kill()
        live.wait()
    err = capsys.readouterr().err
    assert f"pid {live.pid}: snakemake 60" in err
    assert f"kill {live.pid}\nand then run again:\n  make run" in err
    assert (tmp_path / ".snakemake" / "locks" / "0.input.lock").exists()
    assert not (script.parent / "calls").exists()  # nothing was run, nothing unlocked


@pytest.mark.e2e
def test_hard_kill_of_a_real_run_then_make_run_resumes(tmp_path):
    """SIGKILL the Snakemake of a real run while a chunk is being stylized: its jobs live on, and the wrapper
    refuses to unlock while they do; SIGKILL them too (as a power cut would) and the next run unlocks by
    itself and finishes, keeping the chunks finished before the kill."""
    content = require_shared("videos", "adain_cutBunny.mp4")
    style = require_shared("styles", "starry_night.jpg")
    write_jobs(tmp_path, content, style, max_frames=15, iterations=40, warm_iterations=20)
    snakemake = [str(Path(PYTHON).with_name("snakemake")), "-s", str(REPO / "Snakefile"), "--directory",
                 str(tmp_path), "--workflow-profile", str(REPO / "workflow/profiles/default"), "--configfile",
                 str(REPO / "config/config.yaml"), "--config", f"jobs={tmp_path / 'jobs.tsv'}", "--cores", "1"]
    wrapper = [PYTHON, "-m", "artify.resume", "--again", "make run", *snakemake]
    proc = subprocess.Popen(wrapper, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    partial = tmp_path / "results/tiny/stylized/.0000.partial"  # the one span's chunks, as they finish

    def finished():  # chunks whose file and key are written
        return {p.name for p in partial.glob("*.npy") if p.with_name(p.name + ".key").exists()} if partial.exists() else set()

    try:
        deadline = time.time() + 600
        while time.time() < deadline and not finished():
            time.sleep(0.2)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)  # the wrapper became Snakemake (exec): kill -9 of Snakemake itself
        proc.wait(timeout=60)
        assert 0 < len(finished()) < 3, "never caught the span's job between its first and its last chunk"
        assert list((tmp_path / ".snakemake" / "locks").iterdir())  # the stale-looking lock

        # its job is still running: no unlock, and the user is told what to do
        jobs = running_here(tmp_path.resolve())
        assert jobs and all(pid != proc.pid for pid, _ in jobs)
        refused = subprocess.run(wrapper, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1
        assert "Snakemake is still at work in" in refused.stderr and "make run" in refused.stderr
        assert f"kill {' '.join(str(pid) for pid, _ in jobs)}" in refused.stderr
        assert list((tmp_path / ".snakemake" / "locks").iterdir())
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # everything left of the run, as a power cut would
        except ProcessLookupError:  # nothing was left
            pass
    deadline = time.time() + 30
    while running_here(tmp_path.resolve()) and time.time() < deadline:
        time.sleep(0.1)
    done = {name: (partial / name).stat().st_mtime_ns for name in finished()}  # finished before the power cut
    assert not (tmp_path / "results/tiny/stylized/0000").exists()  # nothing half-done looks finished
    # plain Snakemake would stop here ("Directory cannot be locked"); the wrapper resumes
    plain = subprocess.run(snakemake, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert plain.returncode != 0 and "cannot be locked" in plain.stdout + plain.stderr
    resumed = subprocess.run(wrapper, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "was killed before it could clean up" in resumed.stderr
    assert planned_jobs(resumed.stdout + resumed.stderr)["stylize_chunk"] == 1  # the span's job runs again ...
    out = tmp_path / "results/tiny/stylized/0000"
    for name, mtime in done.items():  # ... keeping the chunks finished before the kill
        assert (out / name).stat().st_mtime_ns == mtime
    log = (tmp_path / "logs/stylize_chunk/tiny_0000.log").read_text()
    assert f"{len(done)} reused" in log, log[-500:]
    assert_job_stylized(tmp_path, "tiny")
    locks = tmp_path / ".snakemake" / "locks"
    assert not locks.exists() or not list(locks.iterdir())
