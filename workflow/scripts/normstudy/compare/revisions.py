"""A git revision's study for make compare: its files exported into a temporary folder (git archive: no worktree is
registered, so an interrupted compare leaves nothing in git), its study named from its config files as the workflow
names it, and its code run only when asked: planning its study (a dry run) executes its Snakefile, as running does."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from normstudy.compare.comparison import CompareError
from normstudy.config.sources import config_files, study_name
from normstudy.config.studies import DEFAULT_STUDY, is_study_folder
from normstudy.values import ConfigError

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
def exported_tree(checkout: Path, commit: str) -> Iterator[Path]:
    """The commit's files exported into a temporary folder (no git worktree), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="normstudy-compare-"))
    tree = folder / "tree"
    try:
        archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=checkout, capture_output=True)
        if archive.returncode != 0:
            raise CompareError(
                f"git could not export {commit[:10]} (git archive failed: {archive.stderr.decode()[:200]})"
            )
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tree, filter="data")
        yield tree
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def study_location(tree: Path, snakemake_args: list[str]) -> tuple[str, str]:
    """The revision's study name, and where the study writes relative to its checkout: results/<study> where it has
    named studies (the name as the workflow resolves it: config.yaml, then each --configfile, then --config, the last
    one that sets it), results itself before them (the name: the config files')."""
    package = tree / "workflow" / "scripts" / "normstudy"
    # Named studies came with studies.py, at the package's top before the wings, in config/ since.
    if (package / "studies.py").is_file() or (package / "config" / "studies.py").is_file():
        try:
            name = study_name(tree, snakemake_args)
        except (ConfigError, OSError) as error:
            raise CompareError(f"the revision's study: {error}") from None
        return name, f"results/{name}"
    # Before named studies every config wrote to results/: the config files name the study.
    return "_".join(Path(path).stem for path in config_files(snakemake_args)) or DEFAULT_STUDY, "results"


def match_times(tree: Path, checkout: Path) -> None:
    """Give each of the exported files this checkout's modification time where their bytes are the same: then
    Snakemake, asked in the exported tree, sees as new only the code that differs."""
    for theirs in (path for path in tree.rglob("*") if path.is_file() and not path.is_symlink()):
        ours = checkout / theirs.relative_to(tree)
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
    schema = tree / "workflow" / "schemas" / "config.schema.yaml"
    if schema.is_file() and "amend_study:" in schema.read_text():
        # A folder another config made is refused by a revision that records configs; planned with amend_study, its
        # dry run lists what that revision's config would remake there (a dry run writes nothing).
        snakemake_args = with_config_entry(snakemake_args, "amend_study=True")
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


def with_config_entry(snakemake_args: list[str], entry: str) -> list[str]:
    """Snakemake's arguments with one more --config entry (after the given ones: a second --config would replace
    them)."""
    if "--config" not in snakemake_args:
        return [*snakemake_args, "--config", entry]
    at = snakemake_args.index("--config") + 1
    return [*snakemake_args[:at], entry, *snakemake_args[at:]]


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
    """The folder of the commit's study: a finished run of it kept under results/compare/revisions/ (found without
    running any of its code); else, only when `run`, this checkout's folder of that study where the commit's workflow
    finds it up to date, or the study run anew and kept. CompareError otherwise, saying what running would do."""
    with exported_tree(checkout, commit) as tree:
        name, location = study_location(tree, snakemake_args)
        kept = checkout / "results" / "compare" / "revisions" / commit[:12] / name
        if is_study_folder(kept):
            return kept
        here = checkout / location
        if not run:
            raise CompareError(_not_run_message(commit, name, kept, last_run_seconds(here)))
        jobs = planned_jobs(tree, checkout, snakemake_args)
        if not jobs and is_study_folder(here):
            return here
        run_revision_study(tree, checkout, snakemake_args, cores)
        made = tree / location
        if location == "results":  # before named studies: the study is results/ less the shared download
            (made / "data").unlink(missing_ok=True)
        # Moved in under another name, then renamed: an interrupted move never leaves a half study under `kept`.
        staging = kept.parent / f".{name}.part-{os.getpid()}"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.move(str(made), str(staging))
        shutil.rmtree(kept, ignore_errors=True)  # no finished study (checked above): what is there is a leftover
        staging.rename(kept)
    return kept


def _not_run_message(commit: str, name: str, kept: Path, seconds: float | None) -> str:
    """Why nothing of the revision ran, what running it means, and how to ask for it."""
    last = (
        f"its study's last run here took {seconds:,.0f} s of job time"
        if seconds is not None
        else "its study has not run here"
    )
    return (
        f"revision {commit[:10]}: no finished study '{name}' of it is kept in {kept}. Finding out whether this "
        f"checkout's results are up to date for it, or making them, runs that revision's workflow code (its Snakefile "
        f"and scripts are Python, run with your permissions; planning is running); {last}. None of its code was run. "
        "If you trust that revision, repeat with RUN=yes (make compare) or --run (compare.py)"
    )
