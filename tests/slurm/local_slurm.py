"""A throw-away single-node SLURM cluster on 127.0.0.1, for testing the workflow's SLURM profile for real.

Installs nothing: it needs the Debian/Ubuntu packages ``slurm-wlm`` and ``munge`` (see ``APT_INSTALL``) and root
(slurmd starts jobs as their submitting user). Everything lives in one directory: munge key and socket, slurm.conf,
gres.conf, state, spool, logs, pid files and a job-completion log; nothing under /etc or /run is touched and no
systemd is needed. The cluster has a default ``cpu`` partition and a ``gpu`` partition on the same node, whose
GPU is fake (``File=/dev/null``): SLURM schedules it and sets CUDA_VISIBLE_DEVICES, there is no device behind it.
No cgroups (proctrack/linuxproc, task/none) and no accounting database (no slurmdbd, so ``sacct`` does not work):
``squeue`` is the status command for Snakemake and ``scontrol show job`` the record of each job
(``LocalSlurm.jobs``); MinJobAge keeps finished jobs visible to both for an hour.

Command line, for trying the profile by hand::

    python tests/slurm/local_slurm.py start /tmp/myslurm   # prints `export SLURM_CONF=... PATH=...`
    python tests/slurm/local_slurm.py stop /tmp/myslurm
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

APT_INSTALL = "apt-get install -y --no-install-recommends slurm-wlm munge"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo", "scancel", "srun")
NODE = "node1"
# One character device per fake GPU (two, so two GPU jobs can run side by side as on a real GPU node).
FAKE_GPU_FILES = ("/dev/null", "/dev/zero")
# Seconds a finished job stays visible to squeue/scontrol: Snakemake's squeue status check must see every job
# end (its polling interval grows to 180 s), and a test reads every job of a run of several minutes afterwards.
MIN_JOB_AGE_S = 3600
# Daemons' startup order: each needs the one before it (slurmctld authenticates with munge, slurmd registers
# with slurmctld). Stopped in reverse.
START_ORDER = ("munged", "slurmctld", "slurmd")


class SlurmUnavailable(RuntimeError):
    """The SLURM or munge programs are missing, or the cluster could not be started."""


@dataclass(frozen=True)
class JobRecord:
    """One job as ``scontrol show job`` describes it (finished jobs stay listed for MinJobAge seconds)."""

    job_id: int
    name: str            # the plugin names every job of a run after the run's UUID
    comment: str         # the plugin writes `rule_<rule>` or `rule_<rule>_wildcards_<values>`
    state: str           # COMPLETED, FAILED, RUNNING, ...
    exit_code: str       # `<status>:<signal>`
    partition: str
    gres: str            # GRES the job was allocated, e.g. `gpu:1`; empty when none
    mem_mb: int          # memory requested per node
    time_limit: str      # `HH:MM:SS` or `D-HH:MM:SS`
    cpus: int
    work_dir: str

    @property
    def rule(self) -> str:
        """The Snakemake rule the job ran, read back from the comment the plugin gave it."""
        return self.comment.removeprefix("rule_").split("_wildcards_")[0]

    @property
    def gpus(self) -> int:
        match = re.fullmatch(r"gpu(?::[^:,]+)?:(\d+)(?:\(.*\))?", self.gres)
        return int(match.group(1)) if match else 0

    @property
    def time_limit_min(self) -> int:
        days, _, clock = self.time_limit.rpartition("-")
        hours, minutes, seconds = (int(x) for x in clock.split(":"))
        return int(days or 0) * 1440 + hours * 60 + minutes + (seconds > 0)


def _memory_mb(value: str) -> int:
    """SLURM memory (``4000M``, ``4G``) in MB."""
    match = re.fullmatch(r"([\d.]+)([KMGT]?)", value)
    if not match:
        return 0
    number, unit = float(match.group(1)), match.group(2) or "M"
    return int(number * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[unit])


def find_program(name: str) -> str | None:
    """The absolute path of a SLURM/munge program; the daemons live in sbin, which a user's PATH may lack."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/local/sbin"])
    return shutil.which(name, path=search)


def missing_programs() -> list[str]:
    """The programs of slurm-wlm and munge this harness needs that are not installed."""
    return [name for name in DAEMONS + CLIENTS if find_program(name) is None]


def free_port() -> int:
    """A TCP port nobody listens on now, so several test clusters (or a real one) can coexist."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_hardware() -> str:
    """This machine's CPU topology and memory as slurm.conf node attributes (from ``slurmd -C``)."""
    out = subprocess.run([find_program("slurmd"), "-C"], capture_output=True, text=True, timeout=30, check=True)
    first = out.stdout.splitlines()[0]
    # Keep the hardware fields only: NodeName is ours, UpTime is informational.
    fields = [f for f in first.split() if f.split("=", 1)[0] in
              ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")]
    return " ".join(fields)


class LocalSlurm:
    """Start, use and stop the daemons of a one-node cluster whose files all live under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.conf = self.root / "etc" / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.munge_key = self.root / "munge-key" / "munge.key"

    # ---- files ----
    def pid_file(self, daemon: str) -> Path:
        return self.root / "run" / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        return self.root / "log" / f"{daemon}.log"

    def env(self) -> dict[str, str]:
        """Environment for SLURM client commands (and Snakemake) that talk to this cluster, not any other."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        # Drop variables of an enclosing SLURM job: they would make sbatch/srun act inside that job.
        for key in [k for k in env if k.startswith("SLURM_") and k != "SLURM_CONF"]:
            del env[key]
        # A job's GPUs must come from SLURM, not from the submitting shell (sbatch exports its environment).
        env.pop("CUDA_VISIBLE_DEVICES", None)
        return env

    def write_config(self) -> None:
        """munge key, slurm.conf and gres.conf, with fresh ports and every path under ``root``."""
        for sub in ("bin", "etc", "munge", "munge-key", "run", "log", "state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # munged's checks: every user may reach its socket, nobody but root may read its key.
        os.chmod(self.root / "munge", 0o755)
        os.chmod(self.root / "munge-key", 0o700)
        key = self.munge_key
        if not key.exists():
            key.write_bytes(os.urandom(1024))  # a secret, not an experiment's randomness
            os.chmod(key, 0o400)
        lines = [
            "ClusterName=clipxaitest",
            "SlurmctldHost=localhost",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.pid_file('slurmctld')}",
            f"SlurmdPidFile={self.pid_file('slurmd')}",
            f"SlurmctldLogFile={self.log_file('slurmctld')}",
            f"SlurmdLogFile={self.log_file('slurmd')}",
            # No cgroups: the test must run in containers and on machines without a cgroup hierarchy for SLURM.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            # Per-CPU (not per-core) allocation: on an SMT machine a 1-thread job would otherwise take a whole core.
            "SelectTypeParameters=CR_CPU_Memory",
            "DefMemPerCPU=1024",
            "ReturnToService=2",
            f"MinJobAge={MIN_JOB_AGE_S}",
            "MpiDefault=none",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=60",
            "GresTypes=gpu",
            f"NodeName={NODE} NodeAddr=127.0.0.1 {node_hardware()} Gres=gpu:{len(FAKE_GPU_FILES)} State=UNKNOWN",
            f"PartitionName=cpu Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName=gpu Nodes={NODE} MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        # snakemake-executor-plugin-slurm-jobstep (0.6) removes SLURM_CONF from the environment of the `srun` it
        # runs inside each job, so srun would look for /etc/slurm/slurm.conf (where real clusters keep it). This
        # `srun` first on PATH puts this cluster's configuration back.
        srun = self.root / "bin" / "srun"
        real_srun = shlex.quote(find_program("srun"))
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={shlex.quote(str(self.conf))} exec {real_srun} "$@"\n')
        srun.chmod(0o755)
        # Fake GPUs: SLURM needs a device file per GPU or it marks the node INVAL; nothing reads them.
        (self.conf.parent / "gres.conf").write_text(
            "".join(f"NodeName={NODE} Name=gpu File={path}\n" for path in FAKE_GPU_FILES))

    # ---- daemons ----
    def _command(self, daemon: str) -> list[str]:
        if daemon == "munged":
            return [find_program("munged"), "--force", f"--socket={self.munge_socket}",
                    f"--key-file={self.munge_key}", f"--pid-file={self.pid_file('munged')}",
                    f"--log-file={self.log_file('munged')}", f"--seed-file={self.root / 'munge-key' / 'munged.seed'}"]
        if daemon == "slurmctld":
            return [find_program("slurmctld"), "-f", str(self.conf), "-i"]  # -i: ignore stale state
        return [find_program("slurmd"), "-f", str(self.conf), "-N", NODE]

    def pid(self, daemon: str) -> int | None:
        """The PID a daemon wrote, if it is still alive."""
        try:
            pid = int(self.pid_file(daemon).read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            # A daemon that exited but was not reaped (no init in a container) is a zombie: count it as gone.
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            return None
        return None if state in ("Z", "X") else pid

    def start(self, timeout_s: float = 90) -> None:
        """Start munged, slurmctld and slurmd (each forks into the background) and wait until the node is idle."""
        missing = missing_programs()
        if missing:
            raise SlurmUnavailable(f"not installed: {', '.join(missing)} (install with: {APT_INSTALL})")
        if os.geteuid() != 0:
            raise SlurmUnavailable("a local SLURM node must run as root (slurmd starts jobs as their user)")
        self.write_config()
        deadline = time.monotonic() + timeout_s
        for daemon in START_ORDER:
            result = subprocess.run(self._command(daemon), env=self.env(), capture_output=True, text=True,
                                    timeout=30)
            if result.returncode != 0:
                raise SlurmUnavailable(f"{daemon} did not start ({result.returncode}): {result.stderr.strip()}"
                                       f"\n{self.log_tail(daemon)}")
            while self.pid(daemon) is None:
                if time.monotonic() > deadline:
                    raise SlurmUnavailable(f"{daemon} wrote no live PID\n{self.log_tail(daemon)}")
                time.sleep(0.2)
        while (state := self.node_state()) not in ("idle", "mixed", "allocated"):
            dead = [daemon for daemon in START_ORDER if self.pid(daemon) is None]
            if dead:
                raise SlurmUnavailable(f"{', '.join(dead)} exited during start-up\n"
                                       + "\n".join(self.log_tail(daemon) for daemon in dead))
            if time.monotonic() > deadline:
                raise SlurmUnavailable(f"node {NODE} is {state!r}, not idle, after {timeout_s:.0f} s\n"
                                       f"{self.log_tail('slurmctld')}\n{self.log_tail('slurmd')}")
            time.sleep(0.5)

    def node_state(self) -> str:
        result = subprocess.run([find_program("sinfo"), "-h", "-N", "-n", NODE, "-o", "%T"], env=self.env(),
                                capture_output=True, text=True, timeout=30)
        return result.stdout.strip().split("\n")[0].rstrip("*~#") if result.returncode == 0 else ""

    def stop(self, grace_s: float = 15) -> None:
        """Cancel every job of this cluster, then stop its daemons by PID (SIGTERM, then SIGKILL)."""
        if self.pid("slurmctld") is not None:
            subprocess.run([find_program("scancel"), "--full", "--user", str(os.geteuid())], env=self.env(),
                           capture_output=True, timeout=30)
            deadline = time.monotonic() + grace_s
            while self.queued_jobs() and time.monotonic() < deadline:
                time.sleep(0.5)
        for daemon in reversed(START_ORDER):
            pid = self.pid(daemon)
            if pid is None:
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while self.pid(daemon) is not None and time.monotonic() < deadline:
                time.sleep(0.2)
            if self.pid(daemon) is not None:
                os.kill(pid, signal.SIGKILL)

    def queued_jobs(self) -> list[str]:
        """IDs of this cluster's jobs that are pending, running or completing."""
        result = subprocess.run([find_program("squeue"), "-h", "-o", "%i", "-t", "PD,R,CG,CF"], env=self.env(),
                                capture_output=True, text=True, timeout=30)
        return result.stdout.split() if result.returncode == 0 else []

    def log_tail(self, daemon: str, lines: int = 15) -> str:
        try:
            text = self.log_file(daemon).read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return f"({daemon}: no log)"
        return f"--- {self.log_file(daemon)} ---\n" + "\n".join(text)

    # ---- records ----
    def jobs(self) -> dict[int, JobRecord]:
        """Every job the controller still knows (running, or finished less than MinJobAge ago), by job ID."""
        result = subprocess.run([find_program("scontrol"), "show", "job", "--oneliner", "--details"], env=self.env(),
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise SlurmUnavailable(f"scontrol show job failed: {result.stderr.strip()}")
        records = {}
        for line in result.stdout.splitlines():
            # `Key=value` pairs separated by spaces; none of the values read here contains a space.
            fields = dict(re.findall(r"(?:^|\s)([\w/:]+)=(\S*)", line))
            if "JobId" not in fields:
                continue
            record = JobRecord(
                job_id=int(fields["JobId"]), name=fields.get("JobName", ""), comment=fields.get("Comment", ""),
                state=fields.get("JobState", ""), exit_code=fields.get("ExitCode", ""),
                partition=fields.get("Partition", ""), gres=fields.get("JOB_GRES", "(null)").replace("(null)", ""),
                mem_mb=_memory_mb(fields.get("MinMemoryNode", "0")), time_limit=fields.get("TimeLimit", "0:0:0"),
                cpus=int(fields.get("NumCPUs", "0")), work_dir=fields.get("WorkDir", ""))
            records[record.job_id] = record
        return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("root", help="directory holding the cluster's configuration, state and logs")
    args = parser.parse_args(argv)
    cluster = LocalSlurm(args.root)
    if args.action == "start":
        try:
            cluster.start()
        except SlurmUnavailable as err:
            print(f"error: {err}", file=sys.stderr)
            cluster.stop()
            return 1
        # Both: SLURM_CONF for the clients, PATH for the `srun` that keeps it inside jobs (see write_config).
        conf, bin_dir = shlex.quote(str(cluster.conf)), shlex.quote(str(cluster.root / "bin"))
        print(f"export SLURM_CONF={conf} PATH={bin_dir}:$PATH")
    else:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
