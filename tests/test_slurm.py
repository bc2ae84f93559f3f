"""The study through a real SLURM scheduler (profiles/slurm): every job via sbatch, the same bytes as locally.

A single-node cluster (munged, slurmctld, slurmd from Debian) is started on this machine as soon as the tests
are collected, with the small study submitted to it in the background (conftest.py: the run mostly waits on
the scheduler, and the other tests fill that time), then a run on a broken copy of it that must fail; the
cluster is stopped by PID after this module. `make test` installs the packages (tests/system_deps.py); the
module is skipped, with the reason, only where the daemons cannot be started (not root, or SLURM not installed).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import SLURM_STUDY
from slurm_cluster import MIN_JOB_AGE, STATUS_SECONDS, BackgroundStudy, LocalSlurm
from test_study import comparable

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]


@pytest.fixture(scope="module")
def background(request: pytest.FixtureRequest) -> BackgroundStudy:
    """The small study conftest started through a local cluster as soon as the tests were collected."""
    started = request.session.stash.get(SLURM_STUDY, None)
    if isinstance(started, str):
        pytest.skip(f"no SLURM cluster can be started here: {started}")
    if isinstance(started, Exception):
        raise started
    assert isinstance(started, BackgroundStudy)
    assert MIN_JOB_AGE >= 3 * STATUS_SECONDS
    yield started
    started.stop()
    assert not any(p.poll() is None for p in started.cluster.processes.values())


@pytest.fixture(scope="module")
def cluster(background: BackgroundStudy) -> LocalSlurm:
    """The running single-node cluster."""
    return background.cluster


@pytest.fixture(scope="module")
def through_slurm(background: BackgroundStudy) -> tuple[Path, str, float]:
    """The small study run through the cluster: its folder, Snakemake's output and the wall time."""
    code, output, seconds = background.result(timeout=900)
    assert code == 0, output[-5000:]
    return background.study, output, seconds


def test_every_job_went_through_sbatch(through_slurm: tuple[Path, str, float], cluster: LocalSlurm) -> None:
    study, output, seconds = through_slurm
    stats = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    planned = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}
    expected = sum(n for rule, n in planned.items() if rule not in ("all", "total"))
    # synthetic data, 2 x (settings, train, evaluate, grid), tables, figures, study.json, report; the batch
    # study's 4 settings, 1 packed and 2 single training jobs, 4 evaluations, its table and its figure; the robustness
    # study's one set, its manifest, bn's PreciseBN statistics, the clean and the corrupted set's scoring, its summary;
    # snakemake --report's metadata
    assert expected == 16 + 13 + 6 + 1, planned
    assert planned["batch_train_packed"] == 1 and planned["batch_train"] == 2, planned
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    assert len(submitted) == expected, output[-3000:]
    # The scheduler's own record: every one of those ids ran and completed.
    listed = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i %T %Z"], env=cluster.env(), capture_output=True, text=True, check=True
    )
    jobs = {job: (state, folder) for job, state, folder in (line.split() for line in listed.stdout.splitlines())}
    # Each ran to completion, in this study's folder.
    assert all(jobs.get(job) == ("COMPLETED", str(study)) for job in submitted), jobs
    print(f"\nsmall study through SLURM: {expected} jobs via sbatch in {seconds:.0f} s")


def test_outputs_are_byte_identical_to_a_local_run(
    through_slurm: tuple[Path, str, float], small_study_run: Path
) -> None:
    study, local = through_slurm[0], small_study_run
    files = sorted(p.relative_to(local) for p in (local / "results" / "smoke" / "runs").rglob("*") if p.is_file())
    assert len(files) == 2 * 8 + 1  # bn and gn, seed 1; bn's PreciseBN statistics
    batch = sorted(
        p.relative_to(local) for p in (local / "results" / "smoke" / "batch_study" / "runs").rglob("*") if p.is_file()
    )
    # settings, model, history, job, predictions and metrics of bn at batch 4 and 64, seeds 1 and 2
    assert len(batch) == 4 * 6
    for relative in files + batch:
        first, second = comparable(study / relative), comparable(local / relative)
        if relative.name == "history.csv":
            assert first.equals(second), relative
        else:
            assert first == second, relative
    # Every table too, bytes for bytes where no timing enters it.
    for folder in ("tables", "batch_study"):
        for table in sorted((local / "results" / "smoke" / folder).glob("*.csv")):
            first, second = pd.read_csv(study / table.relative_to(local)), pd.read_csv(table)
            timing = [column for column in first.columns if "seconds" in column]
            pd.testing.assert_frame_equal(first.drop(columns=timing), second.drop(columns=timing))
            if not timing:
                assert (study / table.relative_to(local)).read_bytes() == table.read_bytes(), table


def test_a_failing_job_fails_the_run_instead_of_hanging(background: BackgroundStudy) -> None:
    # Started once the study had finished, on a copy of it whose gn seed-1 model holds junk (slurm_cluster.py).
    code, output, seconds = background.result("failing job", timeout=600)
    assert code != 0
    assert "Error in rule evaluate" in output and "SLURM jobid" in output
    assert "results/smoke/runs/gn/seed1/model.pt" in output
    print(f"\nthe run with a broken model failed after {seconds:.0f} s")
