"""A real single-node SLURM cluster on loopback for the tests: munged, slurmctld and slurmd, started and stopped by PID.

Debian's slurm 22.05 daemons run directly, without systemd. No accounting database: `sacct` does not work,
so the Snakemake SLURM plugin must query `squeue`, and finished jobs must stay visible to squeue for a while
(MinJobAge) for it to see how they ended.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from background import BackgroundRuns

DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch", "/usr/bin/squeue")
# Seconds a finished job stays in squeue; the plugin's first status check must come well inside it, and the test
# reads every job's end state from squeue after the whole small study (24 jobs, about 4 minutes).
MIN_JOB_AGE = 900
# Where every SLURM command finds the config. SLURM_CONF would do for sbatch, but the Snakemake job step
# (snakemake-executor-plugin-slurm-jobstep) strips SLURM_* variables before its srun, as on a real cluster,
# whose config sits here.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "starting slurmctld, slurmd and munged needs root"
    missing = [path for path in DAEMONS if not Path(path).exists()]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing): make test installs it with apt-get"
    return None


def node_line() -> str:
    """This machine's NodeName line, as slurmd itself detects it."""
    done = subprocess.run(["/usr/sbin/slurmd", "-C"], capture_output=True, text=True, check=True)
    line = done.stdout.splitlines()[0]
    # Leave the node some memory headroom below what it reports, so that it is never drained for "low memory".
    words = [
        f"RealMemory={int(int(w.split('=')[1]) * 0.9)}" if w.startswith("RealMemory=") else w for w in line.split()
    ]
    return " ".join(words)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalSlurm:
    """One controller and one compute node on this machine, with their config and state under `root`."""

    root: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    conf: Path = SYSTEM_CONF

    @property
    def saved_conf(self) -> Path:
        """Where a slurm.conf that was there before is kept until stop() puts it back."""
        return self.root / "slurm.conf.before"

    def env(self) -> dict[str, str]:
        """The environment in which sbatch, squeue and scontrol talk to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        host = socket.gethostname()
        for folder in ("state", "spool", "log"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        if self.conf.exists():
            shutil.copy2(self.conf, self.saved_conf)
        ctld_port, d_port = free_port(), free_port()
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=normstudy-test",
                    f"SlurmctldHost={host}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"SlurmctldPort={ctld_port}",
                    f"SlurmdPort={d_port}",
                    "AuthType=auth/munge",
                    f"StateSaveLocation={self.root / 'state'}",
                    f"SlurmdSpoolDir={self.root / 'spool'}",
                    f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    f"MinJobAge={MIN_JOB_AGE}",
                    "SchedulerType=sched/backfill",
                    "SchedulerParameters=sched_interval=1",
                    f"{node_line()} State=UNKNOWN",
                    f"PartitionName=normstudy Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def start(self) -> None:
        """Write the config, start the three daemons, and wait until the node takes jobs."""
        self.write_config()
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        self.processes["munged"] = subprocess.Popen(
            ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--foreground", "--force"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(self._munge_answers, "munged to answer (munge -n | unmunge)")
        for name in ("slurmctld", "slurmd"):
            self.processes[name] = subprocess.Popen(
                [f"/usr/sbin/{name}", "-D", "-f", str(self.conf)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=self.env(),
            )
        self._wait(self._node_is_idle, "the node to come up idle (see " + str(self.root / "log") + ")")

    def _munge_answers(self) -> bool:
        if self.processes["munged"].poll() is not None:
            raise RuntimeError(f"munged exited with {self.processes['munged'].returncode}")
        credential = subprocess.run(["munge", "-n"], capture_output=True, check=False)
        if credential.returncode != 0:
            return False
        return subprocess.run(["unmunge"], input=credential.stdout, capture_output=True, check=False).returncode == 0

    def _node_is_idle(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; logs in {self.root / 'log'}")
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env(), check=False)
        return done.returncode == 0 and done.stdout.strip() == "idle"

    @staticmethod
    def _wait(ready, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the daemons this object started, by PID (slurmd first, munged last); put any old config back."""
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.saved_conf.exists():
            shutil.move(self.saved_conf, self.conf)
        else:
            self.conf.unlink(missing_ok=True)


# The first status check comes this soon, and later ones at most 10 s apart while nothing finishes; MinJobAge
# keeps finished jobs in squeue far longer (the plugin needs at least three times this).
STATUS_SECONDS = 2
SLURM_ARGS = (
    "--workflow-profile",
    "profiles/slurm",
    "--slurm-init-seconds-before-status-checks",
    str(STATUS_SECONDS),
)


# The model that the follow-up run breaks, in a copy of the finished study: its evaluate job reruns and fails.
BROKEN_MODEL = Path("results/smoke/runs/gn/seed1/model.pt")


@dataclass
class BackgroundStudy:
    """A study submitted through a started cluster while the rest of the suite runs, then a run that must fail.

    Both are waits on the scheduler's status checks, which the tests before the SLURM module fill. The failing
    run works on a copy, so the tests that read the study never see the broken model.
    """

    cluster: LocalSlurm
    study: Path
    runs: BackgroundRuns
    stopped: bool = False

    @classmethod
    def start(cls, root: Path, study: Path, snakemake_args: list[str]) -> BackgroundStudy:
        """Start the cluster under `root`, then Snakemake in `study` with this interpreter's folder first on PATH."""
        cluster = LocalSlurm(root / "slurm")
        cluster.start()
        env = cluster.env()
        env["PATH"] = f"{Path(snakemake_args[0]).parent}{os.pathsep}{env.get('PATH', '')}"
        runs = BackgroundRuns()
        runs.add("study", lambda r: r.run(snakemake_args, study, env, log=root / "snakemake.log"))
        runs.add("failing job", lambda r: cls._failing_run(r, study, root / "broken", snakemake_args, env))
        runs.start()
        return cls(cluster, study, runs)

    @staticmethod
    def _failing_run(
        runs: BackgroundRuns, study: Path, copy: Path, snakemake_args: list[str], env: dict[str, str]
    ) -> tuple[int, str]:
        """The finished study copied (times kept), one model overwritten with junk, and Snakemake run again."""
        code, _ = runs.result("study")
        if code != 0:
            return code, "the study itself failed: no follow-up run"
        shutil.copytree(study, copy, symlinks=True)
        (copy / BROKEN_MODEL).write_bytes(b"not a model")  # newer than its predictions: evaluate reruns
        return runs.run(snakemake_args, copy, env, log=copy.parent / "broken.log")

    def result(self, step: str = "study", timeout: float = 900) -> tuple[int, str, float]:
        """Wait for a step ("study" or "failing job"): its exit code, Snakemake's output and its wall time."""
        code, output = self.runs.result(step, timeout)
        return code, output, self.runs.seconds(step)

    def stop(self) -> None:
        """End the runs if they still go on, then stop the cluster (once: a second stop would delete the config the
        first put back)."""
        if self.stopped:
            return
        self.stopped = True
        self.runs.stop()
        self.cluster.stop()
