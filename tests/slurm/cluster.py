"""A throwaway one-node SLURM cluster on localhost, for tests that submit Snakemake jobs to a real SLURM.

    with LocalSlurm(tmp_dir, gpus=2) as cluster:
        subprocess.run(["sbatch", "--wrap", "true"], env=cluster.env)

Debian's slurmctld, slurmd and munge (Slurm 22.05), run as root; no systemd, no cgroups, no accounting
database, fake GPUs as gres backed by device files. The context manager writes slurm.conf, gres.conf and
cgroup.conf into its own folder, starts a private munged (own key, own socket), slurmctld and slurmd with
explicit config paths, waits until `sinfo` shows the node idle, and on exit stops exactly the daemons it
started (by pid) and removes what it made.

One thing cannot stay in the private folder: inside a batch job the slurm-jobstep executor re-runs the rule
under a nested `srun` after stripping every SLURM_* variable (SLURM_CONF too), so srun falls back to the
compiled-in /etc/slurm/slurm.conf. That path becomes a symlink to our slurm.conf while the cluster runs; an
existing real file there is never touched (SlurmUnavailable instead), and a file lock keeps two test runs
on one machine from sharing it.

Install (Debian/Ubuntu, as root):
    apt-get install --no-install-recommends slurmctld slurmd slurm-client munge
"""
from __future__ import annotations

import fcntl
import getpass
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
INSTALL_HINT = ("install Debian's SLURM and munge as root: apt-get install --no-install-recommends "
                "slurmctld slurmd slurm-client munge (or `make test` as root, which does it)")
BINARIES = ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "sinfo", "scontrol", "srun")
ETC_CONF = Path("/etc/slurm/slurm.conf")
LOCK = Path(tempfile.gettempdir()) / "artify-local-slurm.lock"


class SlurmUnavailable(RuntimeError):
    """This machine cannot run the local cluster (missing packages, not root, /etc/slurm in use)."""


def _which(name: str) -> str | None:
    # the daemons live in /usr/sbin, which is not on every PATH
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if _which(b) is None]


def check_available() -> None:
    """Raise SlurmUnavailable with the reason and how to fix it."""
    missing = missing_binaries()
    if missing:
        raise SlurmUnavailable(f"SLURM/munge not installed (missing {', '.join(missing)}); {INSTALL_HINT}")
    if os.geteuid() != 0:
        raise SlurmUnavailable("the local SLURM cluster must be started as root (slurmd runs jobs as their "
                               "users and /etc/slurm/slurm.conf must be written)")
    if ETC_CONF.exists() and not ETC_CONF.is_symlink():
        raise SlurmUnavailable(f"{ETC_CONF} is a real file: this machine has its own SLURM; not touching it")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


class LocalSlurm:
    """Context manager: a running one-node SLURM cluster whose files live in `base` (created if needed)."""

    def __init__(self, base, partition: str = "artify", gpus: int = 2, gpu_type: str = "fake",
                 cpus: int | None = None, mem_mb: int | None = None, node: str = "localhost"):
        self.base = Path(base).resolve()
        self.partition, self.gpus, self.gpu_type, self.node = partition, gpus, gpu_type, node
        self.cpus = cpus or os.cpu_count() or 1
        if mem_mb is None:
            total_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
            mem_mb = total_kb // 1024 * 3 // 4
        self.mem_mb = mem_mb
        self.etc = self.base / "etc"
        self.log_dir = self.base / "log"
        self.munge_socket = self.base / "munge" / "munge.socket"
        self.pids: dict[str, int] = {}  # name -> pid of every daemon this object started
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock_fd: int | None = None
        self._made_etc_link = False
        self._made_etc_dir = False

    # -- environment for clients (sbatch, squeue, snakemake) -----------------------------------------
    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.etc / "slurm.conf")
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
        return env

    def run(self, *args, check=True, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env, check=check, capture_output=True, text=True, **kw)

    # -- start / stop --------------------------------------------------------------------------------
    def __enter__(self) -> "LocalSlurm":
        check_available()
        self._lock()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _lock(self) -> None:
        self._lock_fd = os.open(LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        deadline = time.monotonic() + 600
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SlurmUnavailable(f"another local SLURM test cluster holds {LOCK} for over 10 min")
                time.sleep(1)

    def _start(self) -> None:
        for d in ("etc", "state", "spool", "log", "run", "dev", "munge"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.base / "munge", 0o700)
        self._write_config()
        self._link_etc()
        self._start_munged()
        conf = str(self.etc / "slurm.conf")
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", conf])
        self._wait(lambda: "UP" in self.run("scontrol", "ping", check=False).stdout, "slurmctld to answer", 20)
        self._spawn("slurmd", [_which("slurmd"), "-D", "-N", self.node, "-f", conf])
        self._wait_idle()

    def _write_config(self) -> None:
        values = dict(
            base=self.base, ctld_port=_free_port(), slurmd_port=_free_port(), munge_socket=self.munge_socket,
            user=getpass.getuser(), node=self.node, cpus=self.cpus, mem_mb=self.mem_mb,
            gpu_type=self.gpu_type, gpus=self.gpus, partition=self.partition,
        )
        conf = Template((HERE / "slurm.conf.in").read_text()).substitute(values)
        if self.gpus <= 0:
            conf = conf.replace("GresTypes=gpu\n", "").replace(f" Gres=gpu:{self.gpu_type}:{self.gpus}", "")
        (self.etc / "slurm.conf").write_text(conf)
        shutil.copy(HERE / "cgroup.conf.in", self.etc / "cgroup.conf")
        # Slurm drops a GPU without a device file ("Removing file-less GPU") and the node goes INVAL.
        lines = [f"NodeName={self.node} Name=gpu Type={self.gpu_type} File={f}" for f in self._fake_devices()]
        (self.etc / "gres.conf").write_text("# fake GPUs: device files only, nothing behind them\n"
                                            + "".join(line + "\n" for line in lines))

    def _fake_devices(self) -> list[Path]:
        """One character device per fake GPU: mknod with /dev/null's numbers, else distinct existing ones."""
        made = []
        for i in range(self.gpus):
            f = self.base / "dev" / f"fakegpu{i}"
            if not f.exists():
                try:
                    os.mknod(f, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
                except OSError:
                    break
            made.append(f)
        if len(made) == self.gpus:
            return made
        spare = [Path(p) for p in ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")]
        if self.gpus > len(spare):
            raise SlurmUnavailable(f"mknod not permitted, and no {self.gpus} spare device files for fake GPUs")
        return spare[: self.gpus]

    def _link_etc(self) -> None:
        if ETC_CONF.is_symlink():
            target = Path(os.readlink(ETC_CONF))
            pidfile = target.parent.parent / "run" / "slurmctld.pid"
            if pidfile.exists() and _alive(int(pidfile.read_text().strip() or 0)):
                raise SlurmUnavailable(f"{ETC_CONF} points to a running cluster in {target.parent.parent}")
            ETC_CONF.unlink()  # stale link from a killed run
        elif ETC_CONF.exists():
            raise SlurmUnavailable(f"{ETC_CONF} is a real file: this machine has its own SLURM")
        if not ETC_CONF.parent.exists():
            ETC_CONF.parent.mkdir(parents=True)
            self._made_etc_dir = True
        ETC_CONF.symlink_to(self.etc / "slurm.conf")
        self._made_etc_link = True

    def _start_munged(self) -> None:
        key = self.base / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self._spawn("munged", [
            _which("munged"), "--foreground", "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
            f"--pid-file={self.base / 'munge' / 'munged.pid'}", f"--log-file={self.log_dir / 'munged.log'}",
            f"--seed-file={self.base / 'munge' / 'munged.seed'}",
        ])
        self._wait(self.munge_socket.exists, "munged's socket", 10)

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.log_dir / f"{name}.stdout", "ab")
        # own session: a Ctrl-C in pytest's terminal is not sent to the daemons; we stop them ourselves
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=self.env, start_new_session=True)
        out.close()
        self._procs[name], self.pids[name] = proc, proc.pid
        time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at once (code {proc.returncode}):\n{self.logs(name)}")

    def _wait(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} died while waiting for {what}:\n{self.logs(name)}")
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout}s waiting for {what}:\n{self.logs()}")

    def node_state(self) -> str:
        return self.run("sinfo", "-h", "-n", self.node, "-o", "%T", check=False).stdout.strip()

    def _wait_idle(self, timeout: float = 60) -> None:
        resumed = False

        def idle():
            nonlocal resumed
            state = self.node_state()
            if state.startswith(("drain", "inval", "down")) and not resumed:
                self.run("scontrol", "update", f"nodename={self.node}", "state=resume", check=False)
                resumed = True
            return state == "idle"

        self._wait(idle, f"node {self.node} to be idle", timeout)

    def logs(self, *names: str, tail: int = 40) -> str:
        files = [self.log_dir / f"{n}{ext}" for n in (names or ("munged", "slurmctld", "slurmd"))
                 for ext in (".log", ".stdout")]
        parts = []
        for f in files:
            if f.exists() and f.stat().st_size:
                lines = f.read_text(errors="replace").splitlines()[-tail:]
                parts.append(f"--- {f}\n" + "\n".join(lines))
        return "\n".join(parts) or "(no daemon logs)"

    def stop(self) -> None:
        """Stop exactly the daemons this object started, newest first; remove the /etc link; unlock."""
        try:
            if self.pids.get("slurmctld") and _alive(self.pids["slurmctld"]):
                # cancel what is left so no job outlives the cluster (the job's processes belong to slurmd)
                self.run("scancel", "--full", f"--partition={self.partition}", check=False, timeout=10)
            for name in reversed(list(self._procs)):
                proc = self._procs[name]
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
            self._procs.clear()
        finally:
            if self._made_etc_link and ETC_CONF.is_symlink() and Path(os.readlink(ETC_CONF)) == self.etc / "slurm.conf":
                ETC_CONF.unlink()
                self._made_etc_link = False
            if self._made_etc_dir:
                try:
                    ETC_CONF.parent.rmdir()
                except OSError:
                    pass
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- what the tests look at ----------------------------------------------------------------------
    def jobs(self) -> list[dict]:
        """Every job slurmctld still remembers (finished ones for MinJobAge), as scontrol's key=value fields."""
        out = self.run("scontrol", "-o", "show", "job", check=False).stdout
        jobs = []
        for line in out.splitlines():
            if not line.startswith("JobId="):
                continue
            fields = {}
            for token in line.split():
                key, sep, value = token.partition("=")
                if sep:
                    fields[key] = value
            jobs.append(fields)
        return jobs


def main(argv=None) -> int:
    """`python tests/slurm/cluster.py [DIR]`: start a cluster, print how to use it, stop it on Ctrl-C."""
    import sys

    base = Path((argv or sys.argv[1:] or [tempfile.mkdtemp(prefix="artify-slurm-")])[0])
    with LocalSlurm(base) as cluster:
        print(f"SLURM up: partition {cluster.partition}, {cluster.gpus} fake GPUs, files in {base}")
        print(f"export SLURM_CONF={cluster.etc / 'slurm.conf'}; Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
