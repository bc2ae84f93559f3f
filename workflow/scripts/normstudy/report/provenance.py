"""Where a report's numbers come from: the checkout, the machine, the packages, and each training job."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from normstudy.controls import is_control
from normstudy.runs import read_named_json

PACKAGES = (
    "torch",
    "torchvision",
    "snakemake",
    "numpy",
    "pandas",
    "scipy",
    "matplotlib",
    "seaborn",
    "jinja2",
    "pyyaml",
)


@dataclass(frozen=True)
class GitState:
    """The checkout a report is rendered in."""

    commit: str
    dirty: bool
    remote: str | None


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def public_url(url: str | None) -> str | None:
    """A remote's URL as a published page may show it: no user name or password (a token is often one), no query or
    fragment (where access tokens go too); None when nothing public is left, or it holds control characters."""
    if not url or any(is_control(char) for char in url):
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme and parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", "")) if host else None
    # scp-like SSH (user@host:path): the user is an account name on the host, never a secret; nothing else can be
    return url if "@" not in url.partition(":")[2] else None


def git_state(folder: Path) -> GitState:
    """Commit, dirty flag and origin URL of `folder`'s checkout ("not a git checkout" outside one); the URL as
    public_url leaves it."""
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return GitState("not a git checkout", False, None)
    remote = public_url(_git(folder, "remote", "get-url", "origin"))
    return GitState(commit, bool(_git(folder, "status", "--porcelain")), remote)


def cpu_name() -> str:
    """The processor's model name (Linux), or what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the numbers depend on."""
    return {name: importlib.metadata.version(name) for name in PACKAGES}


def duration(seconds: float) -> str:
    """Seconds as h:mm:ss, with the seconds too."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d} ({seconds:,.0f} s)"


def read_job(entry: dict[str, Any]) -> dict[str, Any]:
    """One training job: runtime and peak memory from its benchmark file, the rest from its job.json.

    `entry` names the run (variant, seed) and its files (job, benchmark); a job.json of another run is an error.
    """
    job = read_named_json(entry["job"], (entry["variant"], entry["seed"]))
    row = pd.read_csv(entry["benchmark"], sep="\t").iloc[0]
    return {
        "variant": job["variant"],
        "seed": job["seed"],
        "s": float(row["s"]),
        "cpu_time": float(row["cpu_time"]),
        "max_rss": float(row["max_rss"]),
        "device": job["device_name"] or job["device"],
        "threads": job["threads"],
        "pack_seeds": job["pack_seeds"],
        "started": job["started_utc"],
        "finished": job["finished_utc"],
    }


# What a training job's job.json records of where it ran.
JOB_ENVIRONMENT = ("torch", "python", "device", "device_name", "threads")


def job_values(jobs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Every value the jobs recorded of each JOB_ENVIRONMENT key, sorted."""
    return {key: sorted({str(job[key]) for job in jobs}) for key in JOB_ENVIRONMENT}


def environment(jobs: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """Where a study's tables were written and its runs trained: the checkout, Python, packages, CPU and OS of this
    process, and every value the training jobs recorded of torch, Python, device and threads."""
    git = git_state(folder)
    return {
        "commit": git.commit,
        "dirty": git.dirty,
        "python": platform.python_version(),
        "packages": package_versions(),
        "cpu": cpu_name(),
        "os": f"{platform.system()} {platform.machine()}",
        "jobs": job_values(jobs),
    }


def wall_time(jobs: list[dict[str, Any]]) -> float:
    """Seconds from the first training job's start to the last one's end."""
    started = min(dt.datetime.fromisoformat(j["started"]) for j in jobs)
    finished = max(dt.datetime.fromisoformat(j["finished"]) for j in jobs)
    return (finished - started).total_seconds()
