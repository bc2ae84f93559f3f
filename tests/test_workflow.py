"""The workflow as Snakemake sees it: dry runs, lint, and the data stage on the smoke config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import snakemake

from normstudy.dataset import RAW_FILES
from normstudy.idx import read_verified

pytestmark = pytest.mark.workflow


def test_dry_run_of_the_default_study_succeeds(workflow_copy: Path) -> None:
    done = snakemake(workflow_copy, "-n", "--cores", "2")
    assert "download_mnist" in done.stdout
    assert list((workflow_copy / "results").iterdir()) == []


def test_lint_reports_nothing(workflow_copy: Path) -> None:
    done = snakemake(workflow_copy, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in done.stdout + done.stderr


def test_smoke_config_builds_the_synthetic_data(workflow_copy: Path) -> None:
    targets = [f"results/data/synthetic/raw/{name}" for name in RAW_FILES]
    snakemake(workflow_copy, *targets, "--cores", "1", "--configfile", "tests/smoke.yaml")
    raw = workflow_copy / "results" / "data" / "synthetic" / "raw"
    arrays, _ = read_verified([raw / name for name in RAW_FILES], raw / "provenance.json", "synthetic")
    assert arrays["train-images-idx3-ubyte"].shape == (1000, 28, 28)
    assert arrays["t10k-images-idx3-ubyte"].shape == (300, 28, 28)
    assert json.loads((raw / "provenance.json").read_text())["source"] == "synthetic"
    assert (workflow_copy / "results" / "logs" / "make_synthetic.log").exists()
    # A second run finds nothing to do.
    again = snakemake(workflow_copy, *targets, "-n", "--configfile", "tests/smoke.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr
