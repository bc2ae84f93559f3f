"""A git revision's study for make compare: checked out into a temporary worktree, its study found among this
checkout's results when Snakemake (that revision's workflow) finds them up to date, and run only when asked."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import yaml

from normstudy.comparison import CompareError
from normstudy.studies import DEFAULT_STUDY, is_study_folder

JOB_ROW = re.compile(r"^(\w+)\s+(\d+)$", re.MULTILINE)


def git(checkout: Path, *args: str) -> str | None:
    """A git command's output in `checkout`, or None when it fails."""
    done = subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def commit_of(checkout: Path, revision: str) -> str | None:
    """The commit a revision names in `checkout` (None when it names none)."""
    if revision.startswith("-"):  # never an option to git
        return None
    return git(checkout, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")


@contextlib.contextmanager
def worktree(checkout: Path, commit: str) -> Iterator[Path]:
    """The commit checked out into a temporary worktree, removed afterwards."""
    tree = Path(tempfile.mkdtemp(prefix="normstudy-compare-")) / "tree"
    if git(checkout, "worktree", "add", "--detach", str(tree), commit) is None:
        raise CompareError(f"git could not check out {commit[:10]} into a worktree (git worktree add failed)")
    try:
        yield tree
    finally:
        git(checkout, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tree.parent, ignore_errors=True)
        git(checkout, "worktree", "prune")


def study_location(tree: Path, config_files: list[str]) -> tuple[str, str]:
    """The revision's study name, and where the study writes relative to its checkout: results/<study> where it has
    named studies (the name: config.yaml's, then each --configfile's, the last one set), results itself before them
    (the name: the config files')."""
    name = DEFAULT_STUDY
    for path in ["config.yaml", *config_files]:
        loaded = yaml.safe_load((tree / path).read_text()) if (tree / path).is_file() else None
        if isinstance(loaded, dict) and "study" in loaded:
            name = str(loaded["study"])
    if (tree / "workflow" / "scripts" / "normstudy" / "studies.py").is_file():
        return name, f"results/{name}"
    # Before named studies every config wrote to results/: the config files name the study.
    return "_".join(Path(path).stem for path in config_files) or DEFAULT_STUDY, "results"


def match_times(tree: Path, checkout: Path) -> None:
    """Give each of the worktree's files this checkout's modification time where their bytes are the same: then
    Snakemake, asked in the worktree, sees as new only the code that differs."""
    for name in (git(tree, "ls-files") or "").splitlines():
        ours, theirs = checkout / name, tree / name
        if ours.is_file() and theirs.is_file() and ours.read_bytes() == theirs.read_bytes():
            stat = ours.stat()
            os.utime(theirs, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def planned_jobs(tree: Path, checkout: Path, snakemake_args: list[str]) -> dict[str, int]:
    """Rule -> jobs that the revision's workflow would run on this checkout's results (empty: all up to date).
    Its results and reports are linked, never written: Snakemake only plans (a dry run), with this checkout's records
    of what made each file."""
    match_times(tree, checkout)
    linked = [name for name in ("results", "report") if (checkout / name).is_dir()]
    for name in linked:
        shutil.rmtree(tree / name, ignore_errors=True)  # the revision's own README files only
        (tree / name).symlink_to((checkout / name).resolve(), target_is_directory=True)
    metadata = checkout / ".snakemake" / "metadata"
    if metadata.is_dir():
        shutil.copytree(metadata, tree / ".snakemake" / "metadata")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", "--dry-run", *snakemake_args],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        for name in linked:
            (tree / name).unlink()
    if done.returncode != 0:
        told = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()][-6:]
        raise CompareError("the revision's workflow refused to plan its study:\n" + "\n".join(told))
    text = done.stdout + done.stderr
    if "Job stats:" not in text:
        return {}
    return {rule: int(n) for rule, n in JOB_ROW.findall(text.split("Job stats:", 1)[1]) if rule not in ("all", "total")}


def last_run_seconds(folder: Path) -> float | None:
    """The job time of the study's last run in `folder`, from its Snakemake benchmark files (None: never run)."""
    files = sorted((folder / "benchmarks").rglob("*.tsv")) if folder.is_dir() else []
    if not files:
        return None
    return float(sum(pd.read_csv(path, sep="\t")["s"].sum() for path in files))


def run_revision_study(tree: Path, checkout: Path, snakemake_args: list[str], cores: str) -> None:
    """Run the revision's study in its worktree, the shared download linked in (never fetched again)."""
    for name in ("results", "report"):
        (tree / name).mkdir(exist_ok=True)
    data = checkout / "results" / "data"
    if data.is_dir():
        (tree / "results" / "data").symlink_to(data.resolve(), target_is_directory=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", cores, *snakemake_args], cwd=tree, env=env, check=False
    )
    if done.returncode != 0:
        raise CompareError(f"the revision's study failed (snakemake exit status {done.returncode}); see above")


def revision_study(checkout: Path, commit: str, snakemake_args: list[str], run: bool, cores: str) -> Path:
    """The folder of the commit's study: a finished run of it kept under results/compare/revisions/, or this
    checkout's folder of that study where the commit's workflow finds it up to date; else run it when `run`,
    or CompareError saying what would run and how long its last run here took."""
    with worktree(checkout, commit) as tree:
        name, location = study_location(tree, _config_files(snakemake_args))
        kept = checkout / "results" / "compare" / "revisions" / commit[:12] / name
        if is_study_folder(kept):
            return kept
        here = checkout / location
        jobs = planned_jobs(tree, checkout, snakemake_args)
        if not jobs and is_study_folder(here):
            return here
        if not run:
            raise CompareError(_not_run_message(commit, location, jobs, last_run_seconds(here)))
        run_revision_study(tree, checkout, snakemake_args, cores)
        made = tree / location
        kept.parent.mkdir(parents=True, exist_ok=True)
        if location == "results":  # before named studies: the study is results/ less the shared download
            (made / "data").unlink(missing_ok=True)
        shutil.move(str(made), str(kept))
    return kept


def _config_files(snakemake_args: list[str]) -> list[str]:
    """The --configfile arguments among Snakemake's."""
    files, taking = [], False
    for arg in snakemake_args:
        if arg in ("--configfile", "--configfiles"):
            taking = True
        elif arg.startswith("-"):
            taking = False
        elif taking:
            files.append(arg)
    return files


def _not_run_message(commit: str, location: str, jobs: dict[str, int], seconds: float | None) -> str:
    """What running the revision's study would take, and how to ask for it."""
    planned = ", ".join(f"{rule} {n}" for rule, n in sorted(jobs.items(), key=lambda item: -item[1]))
    last = (
        f"its last run here ({location}) took {seconds:,.0f} s of job time"
        if seconds is not None
        else f"it has not run here ({location} holds no benchmarks)"
    )
    return (
        f"revision {commit[:10]}: its study is not among this checkout's results up to date; running it would take "
        f"{sum(jobs.values())} jobs ({planned}); {last}. Nothing was run: to run it, repeat with RUN=yes "
        "(make compare) or --run (compare.py)"
    )
