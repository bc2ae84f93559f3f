"""The whole workflow on tests/smoke.yaml: every per-run file, and the same bytes when run again."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_smoke, snakemake

pytestmark = pytest.mark.workflow

SMOKE = yaml.safe_load((REPO / "tests" / "smoke.yaml").read_text())
VARIANTS = list(yaml.safe_load((REPO / "config.yaml").read_text())["variants"])
RUN_FILES = [
    "model.pt",
    "history.csv",
    "settings.json",
    "predictions.csv",
    "metrics.json",
    "misclassified.csv",
    "misclassified.png",
]


def test_every_run_has_every_file(smoke_study: Path) -> None:
    for variant in VARIANTS:
        for seed in SMOKE["seeds"]:
            run = smoke_study / "results" / "runs" / variant / f"seed{seed}"
            missing = [name for name in RUN_FILES if not (run / name).is_file()]
            assert not missing, f"{run}: missing {missing}"
            assert not (run / "checkpoint.pt").exists()
            assert (smoke_study / "results" / "logs" / "train" / variant / f"seed{seed}.log").is_file()
            assert (smoke_study / "results" / "benchmarks" / "train" / variant / f"seed{seed}.tsv").is_file()


def test_runs_carry_their_settings(smoke_study: Path) -> None:
    for variant in VARIANTS:
        settings = json.loads((smoke_study / "results" / "runs" / variant / "seed1" / "settings.json").read_text())
        assert (
            settings["variant"]["norm"]
            == yaml.safe_load((REPO / "config.yaml").read_text())["variants"][variant]["norm"]
        )
        assert settings["train"]["epochs"] == SMOKE["train"]["epochs"]
        assert settings["params"] == 7652
        history = pd.read_csv(smoke_study / "results" / "runs" / variant / "seed1" / "history.csv")
        assert len(history) == SMOKE["train"]["epochs"]


def test_l1_variant_differs_from_plain_batch_norm(smoke_study: Path) -> None:
    runs = smoke_study / "results" / "runs"
    assert (runs / "bn" / "seed1" / "predictions.csv").read_bytes() != (
        runs / "bn_l1" / "seed1" / "predictions.csv"
    ).read_bytes()


def test_second_study_from_scratch_gives_identical_predictions(smoke_study: Path, tmp_path: Path) -> None:
    again = run_smoke(tmp_path / "again")
    for variant in VARIANTS:
        for seed in SMOKE["seeds"]:
            relative = Path("results") / "runs" / variant / f"seed{seed}"
            for name in ("predictions.csv", "metrics.json", "misclassified.csv"):
                assert (smoke_study / relative / name).read_bytes() == (again / relative / name).read_bytes(), (
                    relative / name
                )


def test_nothing_to_do_after_a_complete_study(smoke_study: Path) -> None:
    done = snakemake(smoke_study, "-n", "--configfile", "tests/smoke.yaml")
    assert "Nothing to be done" in done.stdout + done.stderr
