"""Shared fixtures: a throw-away copy of the workflow, and a way to run Snakemake in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What a run of the workflow needs; results/ and report/ start empty in the copy.
WORKFLOW_FILES = ("Snakefile", "config.yaml", "environment.yml", "workflow", "profiles", "tests/smoke.yaml")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not its results) into `dest` and return it."""
    for name in WORKFLOW_FILES:
        source, target = REPO / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    (dest / "results").mkdir(exist_ok=True)
    (dest / "report").mkdir(exist_ok=True)
    return dest


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in `workdir` with this interpreter, its `python` first on PATH for the shell steps."""
    env = dict(env or os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """A fresh copy of the workflow in a temporary directory."""
    return copy_workflow(tmp_path / "study")


def run_smoke(dest: Path) -> Path:
    """Copy the workflow to `dest` and run the whole smoke study there."""
    study = copy_workflow(dest)
    snakemake(study, "--cores", "2", "--configfile", "tests/smoke.yaml")
    return study


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke study, run once per test session; tests must leave it as they found it."""
    return run_smoke(tmp_path_factory.mktemp("smoke") / "study")


# The smoke study cut to two variants and one seed, and its batch study to bn at batch 4 (its two seeds in one
# packed job) and 64 (a job per seed): the second study from scratch, and the SLURM test's study.
SMALL_STUDY = (
    "seeds: [1]\nvariants: {ln: {enabled: false}, in: {enabled: false}, bn_l1: {enabled: false}}\n"
    "batch_study: {variants: [bn], batch_sizes: [4, 64], seeds: [1, 2]}\n"
)
SMALL_CONFIG_ARGS = ("--configfile", "tests/smoke.yaml", "small.yaml")


def small_study(folder: Path) -> Path:
    """A copy of the workflow configured for the small study (not run)."""
    study = copy_workflow(folder)
    (study / "small.yaml").write_text(SMALL_STUDY)
    return study


@pytest.fixture(scope="session")
def small_study_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small study run locally from scratch, once per test session; tests must leave it as they found it."""
    study = small_study(tmp_path_factory.mktemp("small") / "study")
    snakemake(study, "--cores", "2", *SMALL_CONFIG_ARGS)
    return study


# The SLURM module's study, started once the tests are collected (where any SLURM test is selected).
SLURM_STUDY = pytest.StashKey[object]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the SLURM test's cluster and study in the background as soon as the tests are known.

    The run is latency-bound (each job waits for the scheduler's next status check), so the suite runs the
    other tests meanwhile; tests/test_slurm.py waits for it and checks it. Where no cluster can be started the
    module says why and is skipped, as before.
    """
    if session.config.option.collectonly or not any(item.get_closest_marker("slurm") for item in session.items):
        return
    from slurm_cluster import SLURM_ARGS, BackgroundStudy, unavailable_reason

    reason = unavailable_reason()
    if reason:
        session.stash[SLURM_STUDY] = reason
        return
    root = Path(tempfile.mkdtemp(prefix="normstudy-slurm-"))
    study = small_study(root / "through-slurm" / "study")
    try:
        session.stash[SLURM_STUDY] = BackgroundStudy.start(
            root, study, [sys.executable, "-m", "snakemake", *SLURM_ARGS, *SMALL_CONFIG_ARGS]
        )
    except Exception as error:  # the module's fixture reports it, with the tests that needed it
        session.stash[SLURM_STUDY] = error


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the background SLURM study and its cluster, if the module's fixture has not already."""
    run = session.stash.get(SLURM_STUDY, None)
    if hasattr(run, "stop"):
        run.stop()
