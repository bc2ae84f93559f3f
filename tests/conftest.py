"""Shared fixtures: a throw-away copy of the workflow, and a way to run Snakemake in it."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from background import REGISTERED, BackgroundRuns, background_study

# One thread for torch in the test process (set before torch is first imported): the background studies hold the
# other core, and two threads beside a busy core wait on each other (a 4-epoch test training: 2.2 s on two threads,
# 0.75 s on one, with the other core busy).
os.environ.setdefault("OMP_NUM_THREADS", "1")

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


def without_comparisons(folder: str, names: list[str]) -> list[str]:
    """shutil.copytree's ignore: a study's copy without results/compare/ (the package's compare/ wing is kept)."""
    return ["compare"] if Path(folder).name == "results" else []


def no_slurm_commands() -> Path:
    """A folder whose `scontrol` fails at once: first on the PATH of the local runs' Snakemake.

    Snakemake imports its SLURM plugin in every run, and the plugin asks `scontrol show config` at import, waiting up
    to 10 s for an answer; with `make test`'s SLURM packages installed and no controller up (or the test cluster busy
    with its study) that wait came to 9-60 s per Snakemake process. A local run has no use for the answer.
    """
    folder = Path(tempfile.mkdtemp(prefix="normstudy-no-slurm-"))
    command = folder / "scontrol"
    command.write_text("#!/bin/sh\necho 'scontrol: a local test run asks no SLURM controller' >&2\nexit 1\n")
    command.chmod(0o755)
    return folder


NO_SLURM = no_slurm_commands()


def snakemake_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with this interpreter's folder first on PATH, for the shell steps' python, and
    no SLURM controller to ask (NO_SLURM)."""
    env = dict(env or os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{NO_SLURM}{os.pathsep}{env.get('PATH', '')}"
    return env


# Added to every local run that runs jobs. The workflow profile's 5 s rate-limit timespan suits a study of hours, but
# Snakemake's process ends only once its last timer has fired: up to 5 s after its last job, about 2.5 s a run
# (measured: a one-job run took 7.4 s with the profile's timespan, 4.9 s with 1 s), paid by every run of these small
# studies, most of them on the suite's critical path.
LOCAL_SCHEDULING = ("--max-jobs-per-timespan", "1000/1s")

# Arguments after which Snakemake runs no job: such a call runs in this process (see snakemake()).
PLANNING_ONLY = frozenset(("-n", "--dry-run", "--dryrun", "--lint", "--summary", "--detailed-summary"))


def snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    refused: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run Snakemake's command line in `workdir`, its shell steps with this interpreter's `python` first on PATH.

    A call that runs no job (a dry run, --lint, --summary, or one the caller expects to be `refused` before any job)
    goes through Snakemake's own entry point in this process: the same code as `python -m snakemake`, without the
    2 s of importing Snakemake again (about 100 such calls in the suite). Any call that runs jobs, or needs its own
    environment or a timeout, is a process of its own.
    """
    if (refused or PLANNING_ONLY & set(args)) and env is None and timeout is None:
        done = snakemake_here(workdir, list(args))
    else:
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", *args, *LOCAL_SCHEDULING],
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


def snakemake_here(workdir: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """snakemake.cli.main(args) in this process, in `workdir`, its output captured; the process state it changes
    (working directory, sys.path, which the Snakefile extends, PATH) put back."""
    out, err, cwd, path, commands = io.StringIO(), io.StringIO(), os.getcwd(), list(sys.path), os.environ["PATH"]
    code: int | str | None = 0
    os.chdir(workdir)
    os.environ["PATH"] = snakemake_env()["PATH"]
    try:
        import snakemake.cli  # here, with no SLURM controller to ask (see no_slurm_commands)

        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            snakemake.cli.main(args)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        os.environ["PATH"] = commands
    code = 0 if code is None else code if isinstance(code, int) else 1
    return subprocess.CompletedProcess(["snakemake", *args], code, out.getvalue(), err.getvalue())


def planned_counts(study: Path, *args: str) -> Counter:
    """Jobs a dry run with `args` would execute, per rule (none when nothing is to be done)."""
    done = snakemake(study, "-n", *args)
    output = done.stdout + done.stderr
    if "Nothing to be done" in output:
        return Counter()
    table = output.split("Job stats:", 1)[1]
    jobs = Counter({rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)})
    jobs.pop("total", None)
    return jobs


def background_snakemake(runs: BackgroundRuns, study: Path, *args: str) -> str:
    """Snakemake with `args` in `study`, as a background step's part: its output, or AssertionError as `snakemake`."""
    code, output = runs.run([sys.executable, "-m", "snakemake", *args, *LOCAL_SCHEDULING], study, snakemake_env())
    if code != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({code}):\n{output}")
    return output


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """A fresh copy of the workflow in a temporary directory."""
    return copy_workflow(tmp_path / "study")


SMOKE_ARGS = ("--cores", "2", "--configfile", "tests/smoke.yaml")

# The smoke study cut to two variants (no control) and one seed, and its batch study to the SGD-batch design, bn at
# batch 4 (its two seeds in one packed job) and 64 (a job per seed), and its robustness study to one corruption: the
# second study from scratch, the one-seed tables, the SLURM test's study.
SMALL_STUDY = (
    "seeds: [1]\nvariants: {ln: {enabled: false}, in: {enabled: false}, bn_l1: {enabled: false}, "
    "none: {enabled: false}}\n"
    "analysis: {control: null}\n"
    "batch_study: {design: sgd_batch, variants: [bn], batch_sizes: [4, 64], seeds: [1, 2]}\n"
    "robustness: {corruptions: [contrast], endpoint: all}\n"
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
    config.stash[FIRST_READER] = next((item.nodeid for item in items if reads_a_study(item)), "")


# When the session began (time.monotonic()), the first test that reads a study, and when it began.
SESSION_START = pytest.StashKey[float]()
FIRST_READER = pytest.StashKey[str]()
FIRST_READER_START = pytest.StashKey[float]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note the start, for the timeline in the terminal summary."""
    session.config.stash[SESSION_START] = time.monotonic()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note when the first test that reads a study starts (before it waits for one): the others have ended."""
    if item.nodeid == item.config.stash.get(FIRST_READER, None):
        item.config.stash[FIRST_READER_START] = time.monotonic()


# The session's background runs by label (the studies; the SLURM module's), for the terminal summary.
BACKGROUND_RUNS = pytest.StashKey[dict[str, BackgroundRuns]]()


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
    request.config.stash.setdefault(BACKGROUND_RUNS, {})["study"] = runs
    yield runs
    runs.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The suite's timeline beside --durations: when the tests that read no study ended, and each background run's
    wall time and end (the queue of studies is the suite's critical path)."""
    start = config.stash.get(SESSION_START, None)
    finished = {
        f"{label} {name}": times
        for label, runs in config.stash.get(BACKGROUND_RUNS, {}).items()
        for name, times in runs.finished().items()
    }
    if start is None or not finished:
        return
    terminalreporter.write_sep("=", "background runs (wall time; end, in seconds from the session's start)")
    for name, (seconds, ended) in finished.items():
        terminalreporter.write_line(f"{seconds:8.2f}s  ends at {ended - start:7.1f}s  {name}")
    readers = config.stash.get(FIRST_READER_START, None)
    if readers is not None:
        terminalreporter.write_line(f"the tests that read no study ended at {readers - start:.1f}s")


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
        run = BackgroundStudy.start(root, study, [sys.executable, "-m", "snakemake", *SLURM_ARGS, *SMALL_CONFIG_ARGS])
        session.stash[SLURM_STUDY] = run
        session.config.stash.setdefault(BACKGROUND_RUNS, {})["slurm"] = run.runs
    except Exception as error:  # the module's fixture reports it, with the tests that needed it
        session.stash[SLURM_STUDY] = error


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the background SLURM study and its cluster, if the module's fixture has not already."""
    run = session.stash.get(SLURM_STUDY, None)
    if hasattr(run, "stop"):
        run.stop()


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven through chromedriver (.ci/run installs both)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "chromium and chromium-driver are not installed: `make test` installs them (tests/system_deps.py), "
            "or leave these tests out with -m 'not browser'"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()
