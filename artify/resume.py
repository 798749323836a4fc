"""Run Snakemake so that a run killed hard resumes: python -m artify.resume [--again TEXT] SNAKEMAKE-COMMAND...

A Snakemake run killed with SIGKILL (kill -9, the OOM killer, a power cut) leaves its lock in
.snakemake/locks/, and the next run stops with "Directory cannot be locked". The lock is stale exactly when
no Snakemake process, and no job one started, is still running in that directory. This wrapper (what
`make run` and `make report` call) looks in /proc for such processes: when there are none, it removes the
stale lock with Snakemake's own `--unlock` and runs the command; when there are, it leaves everything as it
is and prints which processes run and exactly what to do. Without a lock it just runs the command.

Finished work is kept either way: every output is written under a temporary name and renamed when complete,
and the workflow profile reruns whatever Snakemake marked incomplete.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

# A Snakemake process (the `snakemake` script, `python -m snakemake`) or a job it runs (`python -m artify ...`,
# also inside the `bash -c` that Snakemake wraps shell commands in).
_SNAKEMAKE = re.compile(r"(^|[\s/])snakemake(\s|$)|-m snakemake(\s|$)|-m artify\s")


def workdir(command: list[str]) -> Path:
    """The working directory a Snakemake command line runs in: its --directory (or -d), else this one."""
    for i, arg in enumerate(command):
        if arg in ("--directory", "-d") and i + 1 < len(command):
            return Path(command[i + 1]).resolve()
        if arg.startswith("--directory="):
            return Path(arg.split("=", 1)[1]).resolve()
    return Path.cwd().resolve()


def stale_lock(directory: Path) -> bool:
    """Whether Snakemake's lock files are there (whether stale is what `running_here` says)."""
    locks = directory / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


def running_here(directory: Path) -> list[tuple[int, str]]:
    """(pid, command line) of every Snakemake process or job of one whose working directory is `directory`,
    other than this process and the processes that started it."""
    ours = _ancestors(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in ours:
            continue
        try:
            command = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        line = " ".join(part.decode(errors="replace") for part in command)
        if cwd == directory and _SNAKEMAKE.search(line):
            found.append((int(entry.name), line))
    return sorted(found)


def _ancestors(pid: int) -> set[int]:
    chain = set()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the command name is the state, then ppid
    return chain


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--again", help="what to tell the user to run again (default: this command)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the Snakemake command line")
    a = parser.parse_args(argv)
    if not a.command:
        parser.error("no Snakemake command given")
    directory = workdir(a.command)
    if stale_lock(directory):
        running = running_here(directory)
        if running:
            again = a.again or shlex.join([sys.executable, "-m", "artify.resume", *a.command])
            print(f"artify: Snakemake is still at work in {directory}:", file=sys.stderr)
            for pid, line in running:
                print(f"  pid {pid}: {line[:200]}", file=sys.stderr)
            print(f"Let it finish, or stop it with:\n  kill {' '.join(str(pid) for pid, _ in running)}\n"
                  f"and then run again:\n  {again}", file=sys.stderr)
            return 1
        print(f"artify: a Snakemake run in {directory} was killed before it could clean up (no Snakemake process "
              "runs there now): removing its lock, then resuming", file=sys.stderr)
        subprocess.run([*_without_report(a.command), "--unlock"], check=True, stdout=subprocess.DEVNULL)
    os.execvp(a.command[0], a.command)


def _without_report(command: list[str]) -> list[str]:
    """The command without `--report FILE`, which --unlock does not take."""
    out, skip = [], False
    for arg in command:
        if skip:
            skip = False
        elif arg == "--report":
            skip = True
        elif not arg.startswith("--report="):
            out.append(arg)
    return out


if __name__ == "__main__":
    sys.exit(main())
