"""Run Snakemake so that a run killed hard resumes: python -m artify.resume [--again TEXT] SNAKEMAKE-COMMAND...

A Snakemake run killed with SIGKILL (kill -9, the OOM killer, a power cut) leaves its lock in
.snakemake/locks/, and the next run stops with "Directory cannot be locked". Nothing in the lock tells
whether it is stale, and looking around does not either: the run that took it may go on as another user, in
a container, or on another machine that shares the directory. So this wrapper (what `make run` and
`make report` call) removes only a lock it can prove stale, one that it took itself:

- It runs Snakemake as its child, in a process group of its own (Snakemake's local jobs stay in it), and
  when Snakemake's lock files appear it writes beside them who took them: this machine (its boot id and pid
  namespace), Snakemake's pid and start time, and each lock file's inode. When Snakemake ends by itself
  (it removes its lock then) the record goes too; only a hard kill leaves both behind. It starts Snakemake
  only in an unlocked directory, so the lock files that appear next, up to Snakemake's output lock, are
  Snakemake's (unless a second run on other targets locks the same directory in that same instant).
  Being in the directory, the record is found through whatever path the directory is reached (a bind
  mount, a container's view): no paths are compared, and a lock file copied elsewhere is another inode.
- A later run removes a lock only when a record claims every lock file, names this machine, and says of a
  run that is gone: its Snakemake has ended (or its pid now belongs to a process started later), no process
  of its group (its jobs) is left, and it sent no job to a cluster that Snakemake has not seen end.
- Anything else is left alone, with a message saying what to check and how to unlock by hand: a lock that
  plain `snakemake` took, a run on another machine or in a container, a process it may not read (it counts
  as running), a run still at work (its processes and how to stop them).

Without a lock the wrapper just runs the command. Finished work is kept either way: every output is written
under a temporary name and renamed when complete, and the workflow profile reruns whatever Snakemake marked
incomplete. Only Snakemake's default file persistence keeps its lock in files (with the database backend the
wrapper finds no lock and just runs).
"""
from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from artify.atomic import atomic_write_text

LOCKS = Path(".snakemake") / "locks"
INCOMPLETE = Path(".snakemake") / "incomplete"
_LOCK_FILE = re.compile(r"\d+\.(input|output)\.lock")  # Snakemake's names (snakemake/persistence/file.py)
_RECORD = "artify-run.{host}.{pid}.json"  # in the locks folder: Snakemake's unlock removes it with the lock
_DEAD = ("Z", "X")  # process states of a process that has ended (a zombie waits for its parent to read it)
_POLL_S = 0.1  # how often the wrapper looks for Snakemake's lock files while it builds its DAG
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCONT)


def workdir(command: list[str]) -> Path:
    """The working directory a Snakemake command line runs in: its --directory (or -d), else this one."""
    for i, arg in enumerate(command):
        if arg in ("--directory", "-d") and i + 1 < len(command):
            return Path(command[i + 1]).resolve()
        if arg.startswith("--directory="):
            return Path(arg.split("=", 1)[1]).resolve()
    return Path.cwd().resolve()


def lock_files(directory: Path) -> dict[str, list[int]]:
    """Snakemake's lock files in `directory`: name -> [inode, mtime in ns], which tells a later lock file of
    the same name from this one."""
    try:
        entries = list(os.scandir(directory / LOCKS))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found = {}
    for entry in entries:
        if _LOCK_FILE.fullmatch(entry.name):
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed meanwhile
                continue
            found[entry.name] = [st.st_ino, st.st_mtime_ns]
    return found


def this_machine() -> dict:
    """Where a pid names a process: the kernel's boot (its random boot id) and the pid namespace. A record
    made where either differs (another host, a reboot, a container) says nothing about the processes here."""
    return {"host": socket.gethostname(), "boot_id": _read("/proc/sys/kernel/random/boot_id"),
            "pid_namespace": _readlink("/proc/self/ns/pid")}


def start_time(pid: int) -> int:
    """When process `pid` started, in clock ticks after boot: with the pid, it names one process (a pid is
    reused, a start time with it is not). OSError when /proc/PID/stat is gone or may not be read."""
    return process_stat(pid)[19]


def process_stat(pid: int) -> list:
    """The fields of /proc/PID/stat from the third on (state, ppid, process group, ...), numbers as ints."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return [int(f) if f.lstrip("-").isdigit() else f for f in stat.rsplit(")", 1)[1].split()]  # after the name


@dataclass
class Verdict:
    """What to do with the lock of a directory: remove `stale` (the lock files and the records naming them),
    or, when `blocked` lists why not, nothing; `at_work` are the process groups of runs still working."""

    stale: list[Path] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    at_work: list[int] = field(default_factory=list)


def judge(directory: Path) -> Verdict:
    """Whether Snakemake's lock in `directory` is provably stale (see the module's docstring)."""
    locks = lock_files(directory)
    if not locks:
        return Verdict()
    owners = {}  # record path -> (record, the lock files it claims)
    for path, record in _records(directory):
        claimed = [name for name, identity in record["locks"].items() if locks.get(name) == identity]
        if claimed:
            owners[path] = (record, claimed)
    verdict = Verdict()
    unknown = sorted(set(locks) - {name for _, claimed in owners.values() for name in claimed})
    if unknown:
        verdict.blocked.append(
            f"artify: {directory} is locked ({', '.join(str(LOCKS / name) for name in unknown)}) by a Snakemake "
            "run that left no record of artify.resume (plain `snakemake` leaves none), so nothing tells whether "
            "it still runs: check that no Snakemake works in this directory, here (ps -ef | grep snakemake), "
            "as another user, in a container or on another machine that shares it.")
    here = this_machine()
    for path, (record, claimed) in owners.items():
        state = _state(record) if _same_machine(record, here) else "elsewhere"
        if state == "gone":
            verdict.stale += [directory / LOCKS / name for name in claimed] + [path]
        else:
            verdict.blocked.append(_why_kept(directory, record, state))
            if state == "running":
                verdict.at_work.append(record["pid"])
    jobs = cluster_jobs(directory) if verdict.stale else []
    if jobs:
        ids = ",".join(jobs)
        verdict.blocked.append(f"artify: the run that locked {directory} sent jobs to a cluster that may still "
                               f"be running: check with `squeue -j {ids}` (stop them with `scancel "
                               f"{ids.replace(',', ' ')}`).")
    if verdict.blocked:
        verdict.stale = []
    return verdict


def _why_kept(directory: Path, record: dict, state: str) -> str:
    pid, user, host = record["pid"], record["user"], record["host"]
    if state == "elsewhere":
        return (f"artify: {directory} is locked by a run that artify.resume started on {host} (pid {pid}, user "
                f"{user}): another machine, or a container with process ids of its own, so it cannot be seen "
                f"from here: check there whether it still runs (ps -p {pid} -o user,lstart,args).")
    if state == "unreadable":
        return (f"artify: {directory} is locked by a run (pid {pid}, user {user}) whose process may not be "
                f"read from here (/proc/{pid}), so it counts as running: check with "
                f"`ps -p {pid} -o user,lstart,args`.")
    members = "".join(f"\n  pid {member}: {line[:200]}" for member, line in group_members(pid))
    return f"artify: Snakemake is still at work in {directory} (user {user}, process group {pid}):{members}"


def _same_machine(record: dict, here: dict) -> bool:
    return all(here[key] is not None and record.get(key) == here[key] for key in ("boot_id", "pid_namespace"))


def _state(record: dict) -> str:
    """'gone', 'running' or 'unreadable' (which counts as running) for a run recorded on this machine."""
    pid = record["pid"]
    try:
        stat = process_stat(pid)
    except FileNotFoundError:  # ended, or hidden from us (/proc mounted with hidepid)
        stat = None
    except OSError:
        return "unreadable"
    if stat is not None and stat[19] != record["start"]:
        # A pid that now names a later process was free when that one started, so no process was left in the
        # run's group then (Linux keeps a pid in use while a group has its number), and none can join since.
        return "gone"
    if stat is not None and stat[0] not in _DEAD:
        return "running"
    # Its Snakemake has ended (a zombie has too) or is hidden: its jobs are what is left of its process group.
    if os.geteuid() in (0, record.get("uid")):  # every process of the run's user shows in /proc
        return "running" if group_members(pid) else "gone"
    try:
        os.killpg(pid, 0)  # whether any process, a zombie too, is in the group, seen or not
    except ProcessLookupError:
        return "gone"
    except PermissionError:  # some, all of another user's
        pass
    return "running"


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes in process group `pgid` that /proc shows."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = process_stat(int(entry.name))
            command = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        if stat[2] == pgid and stat[0] not in _DEAD:  # field 5, the process group; zombies have ended
            found.append((int(entry.name), " ".join(part.decode(errors="replace") for part in command)))
    return sorted(found)


def cluster_jobs(directory: Path) -> list[str]:
    """Ids of the cluster jobs (sbatch) whose outputs Snakemake still marks incomplete: a run killed hard
    never saw them end, and they may go on running on other machines."""
    ids = set()
    incomplete = directory / INCOMPLETE
    for path in incomplete.rglob("*") if incomplete.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):  # a folder, a marker, a record being written
            continue
        if isinstance(record, dict) and record.get("external_jobid") is not None:
            ids.add(str(record["external_jobid"]))
    return sorted(ids)


def _records(directory: Path) -> list[tuple[Path, dict]]:
    """The wrapper's records in the locks folder; one that cannot be read claims nothing."""
    found = []
    for path in sorted((directory / LOCKS).glob(_RECORD.format(host="*", pid="*"))):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if (isinstance(record, dict) and isinstance(record.get("pid"), int) and isinstance(record.get("locks"), dict)
                and all(isinstance(record.get(key), (int, str)) for key in ("start", "host", "user"))):
            found.append((path, record))
    return found


def run(command: list[str], directory: Path) -> int:
    """Run Snakemake in a process group of its own, recording who took the lock files it makes; its exit
    status (128 + the signal when one killed it, as a shell says)."""
    present = lock_files(directory)  # not Snakemake's: none, unless a run started after the wrapper looked
    forward = _Forward()
    try:
        return _run_recorded(command, directory, present, forward)
    finally:
        forward.restore()


def _run_recorded(command: list[str], directory: Path, present: dict, forward: _Forward) -> int:
    try:
        snakemake = subprocess.Popen(command, process_group=0)
    except OSError as e:
        print(f"artify: cannot run {command[0]}: {e.strerror}", file=sys.stderr)
        return 127
    forward.to(snakemake.pid)
    record = directory / LOCKS / _RECORD.format(host=socket.gethostname(), pid=snakemake.pid)
    owner = {**this_machine(), "user": _user(), "uid": os.getuid(), "pid": snakemake.pid, "start": start_time(snakemake.pid),
             "command": shlex.join(command), "locks": {}}
    # Snakemake writes its input lock, then its output lock, once its DAG is built; claim what appears until then.
    while snakemake.poll() is None and not any(name.endswith(".output.lock") for name in owner["locks"]):
        new = {name: identity for name, identity in lock_files(directory).items()
               if identity not in (present.get(name), owner["locks"].get(name))}
        if new:
            owner["locks"].update(new)
            atomic_write_text(record, json.dumps(owner, indent=1) + "\n")
        time.sleep(_POLL_S)
    status = snakemake.wait()
    if status >= 0:  # Snakemake ended by itself and removed its lock: the record goes with it
        record.unlink(missing_ok=True)
        return status
    print(f"artify: Snakemake was killed ({signal.Signals(-status).name}); its lock stays in {directory / LOCKS}: "
          "run again to resume", file=sys.stderr)
    return 128 - status


class _Forward:
    """Pass on to Snakemake's process group what the terminal (Ctrl-C, Ctrl-Z, a hang-up), `kill` or a batch
    system sends the wrapper: the group is not the terminal's foreground group, so it would not get them
    itself. Signals that come before Snakemake runs are passed on once it does."""

    def __init__(self):
        self.pgid, self.pending = None, []
        self.before = {signum: signal.signal(signum, self.forward) for signum in _FORWARDED}
        self.before[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, self.stop)

    def restore(self) -> None:
        for signum, handler in self.before.items():
            signal.signal(signum, handler)

    def to(self, pgid: int) -> None:
        self.pgid = pgid
        for signum in self.pending:
            self.forward(signum, None)

    def forward(self, signum, _frame) -> None:
        if self.pgid is None:
            self.pending.append(signum)
            return
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:  # the run has ended
            pass

    def stop(self, signum, frame) -> None:  # Ctrl-Z: stop the run, then the wrapper (SIGCONT continues both)
        if self.pgid is not None:
            self.forward(signum, frame)
        os.kill(os.getpid(), signal.SIGSTOP)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--again", help="what to tell the user to run again (default: this command)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the Snakemake command line")
    a = parser.parse_args(argv)
    if not a.command:
        parser.error("no Snakemake command given")
    directory = workdir(a.command)
    verdict = judge(directory)
    if verdict.blocked:
        again = a.again or shlex.join([sys.executable, "-m", "artify.resume", *a.command])
        print("\n".join(verdict.blocked), file=sys.stderr)
        if verdict.at_work:
            stop = " ".join(f"-{pgid}" for pgid in verdict.at_work)
            print(f"Let it finish, or stop it (Snakemake and its jobs) with:\n  kill -- {stop}\n"
                  f"and then run again:\n  {again}", file=sys.stderr)
        else:
            unlock = shlex.join([*_without_report(a.command), "--unlock"])
            print(f"Once nothing runs there any more, unlock it by hand and run again:\n  {unlock}\n  {again}",
                  file=sys.stderr)
        return 1
    if verdict.stale:
        print(f"artify: the Snakemake run that locked {directory} was killed before it could clean up, and "
              "nothing of it runs any more: removing its lock, then resuming", file=sys.stderr)
        for path in verdict.stale:
            path.unlink(missing_ok=True)
    return run(a.command, directory)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (containers)
        return str(os.getuid())


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
