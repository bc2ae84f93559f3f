"""Shared fixtures: a throw-away copy of the workflow, and a way to run Snakemake in it."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from background import REGISTERED, BackgroundRuns, background_study

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


def snakemake_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with this interpreter's folder first on PATH, for the shell steps' python."""
    env = dict(env or os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in `workdir` with this interpreter, its `python` first on PATH for the shell steps."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=snakemake_env(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def background_snakemake(runs: BackgroundRuns, study: Path, *args: str) -> str:
    """Snakemake with `args` in `study`, as a background step's part: its output, or AssertionError as `snakemake`."""
    code, output = runs.run([sys.executable, "-m", "snakemake", *args], study, snakemake_env())
    if code != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({code}):\n{output}")
    return output


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """A fresh copy of the workflow in a temporary directory."""
    return copy_workflow(tmp_path / "study")


SMOKE_ARGS = ("--cores", "2", "--configfile", "tests/smoke.yaml")

# The smoke study cut to two variants and one seed, and its batch study to bn at batch 4 (its two seeds in one
# packed job) and 64 (a job per seed): the second study from scratch, the one-seed tables, the SLURM test's study.
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


@background_study
def smoke_study(runs: BackgroundRuns, folder: Path) -> Path:
    """The smoke study (tests/smoke.yaml), run once per test session; tests must leave it as they found it."""
    study = copy_workflow(folder / "study")
    background_snakemake(runs, study, *SMOKE_ARGS)
    return study


@background_study
def small_study_run(runs: BackgroundRuns, folder: Path) -> Path:
    """The small study run locally from scratch, once per test session; tests must leave it as they found it."""
    study = small_study(folder / "study")
    background_snakemake(runs, study, "--cores", "2", *SMALL_CONFIG_ARGS)
    return study


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests that read a background study (or the SLURM one) last, in their order otherwise: the tests that
    need none fill the time the studies take, instead of waiting behind the first reader."""

    def reads_a_study(item: pytest.Item) -> bool:
        return bool(set(REGISTERED) & set(item.fixturenames)) or item.get_closest_marker("slurm") is not None

    items.sort(key=reads_a_study)


@pytest.fixture(scope="session", autouse=True)
def background_studies(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackgroundRuns]:
    """The studies the selected tests read (each a `background_study`), run one after the other in the background
    from the first test on, in the order the tests first need them (two at a time slowed the other tests more
    than it saved: 513 s of pytest against 475 s one at a time).

    Most tests use one core; the studies fill the other, and are done (or nearly) when their first reader comes.
    """
    first_use: dict[str, int] = {}
    for index, item in enumerate(request.session.items):
        for name in item.fixturenames:
            first_use.setdefault(name, index)
    runs = BackgroundRuns()
    for name in sorted((name for name in REGISTERED if name in first_use), key=first_use.__getitem__):
        runs.add(name, functools.partial(REGISTERED[name], folder=tmp_path_factory.mktemp(name)))
    runs.start()
    yield runs
    runs.stop()


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
