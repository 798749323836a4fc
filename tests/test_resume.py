"""After a hard kill: `make run`'s wrapper (artify.resume) removes Snakemake's lock only when it can prove it
stale (a record it wrote names this machine and a run of which nothing is left), leaves every other lock alone
with what to check and how to unlock by hand, and the next run finishes with the finished chunks kept."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from artify import resume
from artify.resume import LOCKS, group_members, judge, lock_files, main, start_time, workdir
from tests.conftest import REPO, require_shared
from tests.pictures import assert_job_stylized
from tests.test_pipeline import planned_jobs, write_jobs

PYTHON = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def fake_snakemake(tmp_path) -> Path:
    """A stand-in `snakemake` that logs its arguments and locks like the real one: it writes its input and
    output lock files, works for $HOLD seconds (with a job left running in the background when $JOB is set),
    then removes .snakemake/locks; --unlock just removes it."""
    script = tmp_path / "bin" / "snakemake"
    script.parent.mkdir(exist_ok=True)
    script.write_text("#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\n"
                      "case \"$*\" in *--unlock*) rm -rf .snakemake/locks; exit 0 ;; esac\n"
                      "mkdir -p .snakemake/locks\n"
                      "echo in > .snakemake/locks/0.input.lock; echo out > .snakemake/locks/0.output.lock\n"
                      "if [ -n \"$JOB\" ]; then sleep 600 & fi\n"
                      "sleep \"${HOLD:-0}\"\nrm -rf .snakemake/locks\n")
    script.chmod(0o755)
    return script


def calls(script: Path) -> list[str]:
    log = script.parent / "calls"
    return log.read_text().splitlines() if log.exists() else []


def plain_lock(directory: Path):
    """A lock as plain `snakemake` leaves it: no record of who took it."""
    (directory / LOCKS).mkdir(parents=True, exist_ok=True)
    (directory / LOCKS / "0.input.lock").write_text("somefile\n")


def wrapped_run(directory: Path, script: Path, hold=600, job=False, cwd=None, prefix=()) -> subprocess.Popen:
    """`python -m artify.resume <fake snakemake>` in `directory`, returned once its record names the lock."""
    env = {**ENV, "HOLD": str(hold), **({"JOB": "1"} if job else {})}
    wrapper = subprocess.Popen([*prefix, PYTHON, "-m", "artify.resume", str(script)], cwd=cwd or directory, env=env,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not records(directory) or len(read_record(directory)["locks"]) < 2:
        assert wrapper.poll() is None and time.time() < deadline, "the wrapper never recorded its lock"
        time.sleep(0.05)
    return wrapper


def records(directory: Path) -> list[Path]:
    return sorted((directory / LOCKS).glob("artify-run.*.json"))


def read_record(directory: Path) -> dict:
    (record,) = records(directory)
    return json.loads(record.read_text())


def rewrite_record(directory: Path, **changes):
    (record,) = records(directory)
    record.write_text(json.dumps({**json.loads(record.read_text()), **changes}))


def kill_hard(wrapper: subprocess.Popen, record: dict, group=True):
    """kill -9 of the wrapper and its Snakemake (with its jobs too when `group`, as a power cut would)."""
    os.kill(wrapper.pid, signal.SIGKILL)
    wrapper.wait()
    os.killpg(record["pid"], signal.SIGKILL) if group else os.kill(record["pid"], signal.SIGKILL)
    deadline = time.time() + 10
    while _alive(record["pid"]) and time.time() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # a killed child of a killed wrapper is reaped by init
    except ProcessLookupError:
        return False
    return True


def killed_run(tmp_path, job=False) -> tuple[Path, dict]:
    """A directory whose wrapped run was killed hard, lock and record left behind."""
    script = fake_snakemake(tmp_path)
    wrapper = wrapped_run(tmp_path, script, job=job)
    record = read_record(tmp_path)
    kill_hard(wrapper, record, group=not job)
    assert (tmp_path / LOCKS / "0.output.lock").exists()
    return script, record


def run_wrapper(directory: Path, script: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "artify.resume", "--again", "make run", str(script), *args], cwd=directory,
                          env={**ENV, "HOLD": "0"}, capture_output=True, text=True, timeout=60, **kwargs)


def assert_left_alone(directory: Path, script: Path, result, *says):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in says:
        assert text in result.stderr, result.stderr
    assert (directory / LOCKS / "0.input.lock").exists()
    made = calls(script)  # the run that took the lock, if it was ours: nothing ran (nor unlocked) after it
    assert len(made) <= 1 and not any("--unlock" in call for call in made)


def test_the_working_directory_is_the_commands():
    assert workdir(["snakemake", "--directory", "/tmp/x y"]) == Path("/tmp/x y")
    assert workdir(["snakemake", "-d", "/tmp"]) == Path("/tmp")
    assert workdir(["snakemake", "--cores", "2"]) == Path.cwd()


def test_without_a_lock_the_command_runs_and_leaves_no_record(tmp_path):
    script = fake_snakemake(tmp_path)
    result = run_wrapper(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert calls(script) == [""]
    assert not (tmp_path / LOCKS).exists()  # Snakemake's normal end removes the lock, the wrapper its record


def test_a_lock_plain_snakemake_took_is_left_alone(tmp_path):
    """The issue's reproduction: a lock file no process of ours made, and `python -m artify.resume snakemake -n`."""
    script = fake_snakemake(tmp_path)
    plain_lock(tmp_path)
    result = run_wrapper(tmp_path, script, "-n")
    assert_left_alone(tmp_path, script, result, "left no record of artify.resume",
                      "nothing tells whether it still runs", f"{script} -n --unlock\n  make run")
    assert not calls(script)


def test_the_lock_of_a_run_killed_hard_is_removed_and_the_command_runs(tmp_path):
    script, _ = killed_run(tmp_path)
    result = run_wrapper(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert "was killed before it could clean up" in result.stderr
    assert calls(script) == ["", ""]  # the killed run, then this one (no --unlock: the lock files went)
    assert not (tmp_path / LOCKS).exists()


def test_a_live_run_keeps_its_lock_and_says_how_to_stop_it(tmp_path):
    script = fake_snakemake(tmp_path)
    wrapper = wrapped_run(tmp_path, script)
    try:
        pgid = read_record(tmp_path)["pid"]
        result = run_wrapper(tmp_path, script)
    finally:
        wrapper.send_signal(signal.SIGTERM)  # passed on to Snakemake's group, as Ctrl-C or `kill` would be
        assert wrapper.wait(timeout=30) == 128 + signal.SIGTERM
    assert_left_alone(tmp_path, script, result, "Snakemake is still at work in",
                      f"pid {pgid}: /bin/sh {script}", f"kill -- -{pgid}\nand then run again:\n  make run")
    assert "Snakemake was killed (SIGTERM)" in wrapper.stderr.read()
    assert not _alive(pgid)


def test_jobs_left_by_a_killed_snakemake_keep_the_lock(tmp_path):
    script, record = killed_run(tmp_path, job=True)  # Snakemake gone, its job still at work
    jobs = [pid for pid, _ in group_members(record["pid"])]
    try:
        assert jobs
        result = run_wrapper(tmp_path, script)
        assert_left_alone(tmp_path, script, result, "Snakemake is still at work in", f"pid {jobs[0]}: sleep 600")
    finally:
        os.killpg(record["pid"], signal.SIGKILL)
    deadline = time.time() + 10
    while group_members(record["pid"]) and time.time() < deadline:
        time.sleep(0.05)
    assert run_wrapper(tmp_path, script).returncode == 0  # nothing of the run left: now the lock goes


def test_a_run_through_another_path_of_the_directory_keeps_its_lock(tmp_path):
    """A run in a container, or through a bind mount: its working directory has another path."""
    real, view = tmp_path / "real", tmp_path / "view"
    real.mkdir(), view.mkdir()
    script = fake_snakemake(tmp_path)
    mount = ["unshare", "--mount", *([] if os.geteuid() == 0 else ["--map-root-user"]), "sh", "-c",
             'mount --bind "$1" "$2" && cd "$2" && shift 2 && exec "$@"', "sh", str(real), str(view)]
    if subprocess.run([*mount, "true"], capture_output=True).returncode != 0:
        pytest.skip("no bind mount here (needs root or user namespaces)")
    wrapper = wrapped_run(real, script, cwd=tmp_path, prefix=mount)
    try:
        result = run_wrapper(real, script)
    finally:
        os.killpg(read_record(real)["pid"], signal.SIGKILL)
        wrapper.wait(timeout=30)
    assert_left_alone(real, script, result, "Snakemake is still at work in")


def test_a_run_of_another_user_keeps_its_lock(tmp_path):
    script = fake_snakemake(tmp_path)
    if os.geteuid() == 0:  # the live run is root's, the wrapper looks at it as nobody
        shared = Path(tempfile.mkdtemp())
        try:
            shared.chmod(0o755)
            wrapper = wrapped_run(shared, script)
            try:
                blocked = judged_as(65534, shared)
            finally:
                os.killpg(read_record(shared)["pid"], signal.SIGKILL)
                wrapper.wait(timeout=30)
            assert "Snakemake is still at work in" in blocked and "user root" in blocked, blocked
        finally:
            shutil.rmtree(shared)
    else:  # the record names pid 1, another user's (root's) live process
        killed_run(tmp_path)
        rewrite_record(tmp_path, pid=1, start=start_time(1))
        assert_left_alone(tmp_path, script, run_wrapper(tmp_path, script), "still at work")


def judged_as(uid: int, directory: Path) -> str:
    """What `judge` finds against `directory`'s lock when it runs as user `uid`: why it is left alone."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the interpreter lives in root's home, which nobody may enter: drop to `uid` after loading
        try:
            os.close(read)
            os.setgid(uid), os.setuid(uid)
            os.write(write, "\n".join(judge(directory).blocked).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        blocked = pipe.read()
    os.waitpid(pid, 0)
    return blocked


def test_a_run_on_another_machine_keeps_its_lock(tmp_path):
    script, record = killed_run(tmp_path)  # killed: on this machine, the lock would go
    rewrite_record(tmp_path, host="login2", boot_id="0" * 32)
    assert_left_alone(tmp_path, script, run_wrapper(tmp_path, script), "started on login2",
                      f"ps -p {record['pid']}", f"{script} --unlock")


def test_a_run_in_a_container_keeps_its_lock(tmp_path):
    """A container shares the kernel's boot id but numbers its processes itself."""
    script, _ = killed_run(tmp_path)
    rewrite_record(tmp_path, pid_namespace="pid:[1]")
    assert_left_alone(tmp_path, script, run_wrapper(tmp_path, script), "a container with process ids of its own")


def test_a_process_that_cannot_be_read_counts_as_running(tmp_path, monkeypatch, capsys):
    script, record = killed_run(tmp_path)

    def unreadable(pid):  # as /proc mounted with hidepid=1 answers for another user's process
        raise PermissionError(13, "Permission denied", f"/proc/{pid}/stat")

    monkeypatch.setattr(resume, "process_stat", unreadable)
    monkeypatch.chdir(tmp_path)
    assert main([str(script)]) == 1
    assert f"pid {record['pid']}, user {record['user']}) whose process may not be read" in capsys.readouterr().err
    assert (tmp_path / LOCKS / "0.input.lock").exists()


@contextmanager
def sleeper(**popen):
    """A process of ours to name in a record, killed and reaped at the end."""
    process = subprocess.Popen(["sleep", "60"], **popen)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_snakemake_killed_but_not_yet_reaped_does_not_keep_the_lock(tmp_path):
    """A zombie has ended (where pid 1 does not reap orphans, one stays until the machine stops)."""
    killed_run(tmp_path)
    with sleeper(process_group=0) as zombie:
        rewrite_record(tmp_path, pid=zombie.pid, start=start_time(zombie.pid))
        assert not judge(tmp_path).stale
        zombie.kill()
        while resume.process_stat(zombie.pid)[0] != "Z":
            time.sleep(0.01)
        assert judge(tmp_path).stale


def test_a_pid_now_of_a_later_process_does_not_keep_the_lock(tmp_path):
    killed_run(tmp_path)
    with sleeper() as later:
        rewrite_record(tmp_path, pid=later.pid, start=start_time(later.pid) - 1)  # the pid, reused
        assert judge(tmp_path).stale


def test_cluster_jobs_of_a_killed_run_keep_the_lock(tmp_path):
    script, _ = killed_run(tmp_path)
    marker = tmp_path / ".snakemake" / "incomplete" / "cmVzdWx0cy9h"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"external_jobid": "4242"}))
    assert_left_alone(tmp_path, script, run_wrapper(tmp_path, script), "squeue -j 4242", "scancel 4242")


@pytest.mark.e2e
def test_hard_kill_of_a_real_run_then_make_run_resumes(tmp_path):
    """SIGKILL the wrapper and its Snakemake of a real run while a chunk is being stylized: the job lives on,
    and the wrapper refuses to unlock while it does; SIGKILL it too (as a power cut would) and the next run
    unlocks by itself and finishes, keeping the chunks finished before the kill."""
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

    group = None
    try:
        deadline = time.time() + 600
        while time.time() < deadline and not finished():
            time.sleep(0.2)
        time.sleep(0.5)
        group = read_record(tmp_path)["pid"]  # Snakemake's pid: its process group holds its jobs
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 of the wrapper and of Snakemake itself
        os.kill(group, signal.SIGKILL)
        proc.wait(timeout=60)
        assert 0 < len(finished()) < 3, "never caught the span's job between its first and its last chunk"
        assert list((tmp_path / LOCKS).iterdir())  # the stale-looking lock

        # its job is still running: no unlock, and the user is told what to do
        deadline = time.time() + 30  # SIGKILL is delivered asynchronously: wait until Snakemake has died
        while group in [pid for pid, _ in group_members(group)] and time.time() < deadline:
            time.sleep(0.05)
        jobs = group_members(group)
        assert jobs and all(pid not in (proc.pid, group) for pid, _ in jobs)
        refused = subprocess.run(wrapper, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1
        assert "Snakemake is still at work in" in refused.stderr and "make run" in refused.stderr
        assert f"kill -- -{group}" in refused.stderr
        assert lock_files(tmp_path)
    finally:
        for pgid in (proc.pid, group):  # everything left of the run, as a power cut would
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, TypeError):  # nothing was left, or never found
                pass
    deadline = time.time() + 30
    while group_members(group) and time.time() < deadline:
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
    locks = tmp_path / LOCKS
    assert not locks.exists() or not list(locks.iterdir())
