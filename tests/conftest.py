"""Shared fixtures: a throw-away copy of the workflow, and a way to run Snakemake in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
