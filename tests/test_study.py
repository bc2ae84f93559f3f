"""The whole workflow on tests/smoke.yaml: every per-run file, and the same bytes when run again."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
import yaml
from background import BackgroundRuns, background_study
from conftest import REPO, SMOKE_ARGS, background_snakemake, copy_workflow, snakemake, without_comparisons

from normstudy.config.recipes import PACKING_PAYS_UP_TO
from normstudy.data.datasets import RAW_FILES
from normstudy.model.network import build_model, count_parameters
from normstudy.model_file import load_model
from normstudy.settings import RunSettings

pytestmark = pytest.mark.workflow

SMOKE = yaml.safe_load((REPO / "tests" / "smoke.yaml").read_text())
NORMS = {name: v["norm"] for name, v in yaml.safe_load((REPO / "config.yaml").read_text())["variants"].items()}
VARIANTS = list(NORMS)
RUN_FILES = [
    "model.pt",
    "history.csv",
    "settings.json",
    "job.json",
    "predictions.csv",
    "metrics.json",
    "misclassified.csv",
    "misclassified.png",
]


def test_every_run_has_every_file(smoke_study: Path) -> None:
    for variant in VARIANTS:
        for seed in SMOKE["seeds"]:
            run = smoke_study / "results" / "smoke" / "runs" / variant / f"seed{seed}"
            missing = [name for name in RUN_FILES if not (run / name).is_file()]
            assert not missing, f"{run}: missing {missing}"
            # PreciseBN's statistics for the robustness study: a run with BatchNorm only.
            assert (run / "precise_bn.json").is_file() == (NORMS[variant] == "batch")
            assert not (run / "checkpoint.pt").exists()
            assert (smoke_study / "results" / "smoke" / "logs" / "train" / variant / f"seed{seed}.log").is_file()
            assert (smoke_study / "results" / "smoke" / "benchmarks" / "train" / variant / f"seed{seed}.tsv").is_file()


BATCH = SMOKE["batch_study"]
BATCH_RUN_FILES = ["model.pt", "history.csv", "settings.json", "job.json", "predictions.csv", "metrics.json"]


def batch_runs(study: Path, variant_sizes: dict[str, list[int]], seeds: list[int]) -> list[Path]:
    """The run folders of a batch study: each variant at its sizes, each seed."""
    return [
        study / "results" / "smoke" / "batch_study" / "runs" / variant / f"batch{size}" / f"seed{seed}"
        for variant, sizes in variant_sizes.items()
        for size in sizes
        for seed in seeds
    ]


# The smoke study's ghost design: bn at every statistics batch size, gn (no batch statistics) at the reference alone.
SMOKE_CELLS = {"bn": BATCH["batch_sizes"], "gn": [max(BATCH["batch_sizes"])]}


def test_the_batch_study_has_every_run_and_a_tidy_table(smoke_study: Path) -> None:
    for run in batch_runs(smoke_study, SMOKE_CELLS, BATCH["seeds"]):
        missing = [name for name in BATCH_RUN_FILES if not (run / name).is_file()]
        assert not missing, f"{run}: missing {missing}"
    assert not list((smoke_study / "results" / "smoke" / "batch_study").rglob("checkpoint.pt"))
    runs = pd.read_csv(smoke_study / "results" / "smoke" / "batch_study" / "runs.csv")
    assert len(runs) == (3 + 1) * 2  # bn at 4, 16, 64 and gn at 64, x seeds 1, 2
    assert {"variant", "batch_size", "seed", "test_acc", "test_err", "precise_err", "test_loss"} <= set(runs.columns)
    assert sorted(set(runs["batch_size"])) == BATCH["batch_sizes"] and sorted(set(runs["seed"])) == BATCH["seeds"]
    assert ((runs["test_acc"] + runs["test_err"]) - 100).abs().max() < 1e-4  # the CSV keeps 6 significant digits
    assert (runs["train_images"] == BATCH["train_images"]).all() and (runs["epochs"] == BATCH["epochs"]).all()
    # The recipe's SGD batch (64) and peak rate at every size; only batch norm's statistics batch shrinks.
    assert (runs["sgd_batch"] == 64).all() and (runs.loc[runs["variant"] == "bn", "max_lr"] == 0.1).all()
    bn = runs[runs["variant"] == "bn"].set_index(["batch_size", "seed"])
    assert bn.loc[(4, 1), "ghost"] == 4 and bn.loc[(64, 1), "ghost"] == 0
    gn = runs[runs["variant"] == "gn"]
    assert (gn["precise_err"] == gn["test_err"]).all()  # nothing to recompute without batch statistics
    summary = pd.read_csv(smoke_study / "results" / "smoke" / "batch_study" / "summary.csv")
    assert len(summary) == 4 and (summary["n_seeds"] == 2).all()
    gate = pd.read_csv(smoke_study / "results" / "smoke" / "batch_study" / "gate.csv")
    assert list(gate["variant"]) == ["bn", "gn"] and gate["trained"].all()  # the smoke study opens its gate


def test_the_ghost_batch_study_trains_each_run_alone_and_scores_batch_norm_twice(smoke_study: Path) -> None:
    for run in batch_runs(smoke_study, SMOKE_CELLS, BATCH["seeds"]):
        size, seed = int(run.parent.name.removeprefix("batch")), int(run.name.removeprefix("seed"))
        assert json.loads((run / "job.json").read_text())["pack_seeds"] == [seed], run
        settings = RunSettings.read(run / "settings.json")
        model = build_model(settings.variant)
        load_model(model, run / "model.pt", settings, run / "settings.json")
        assert count_parameters(model) == 7652 and settings.train.batch_size == 64
        assert settings.variant.ghost == (size if size < 64 else 0)
        metrics = json.loads((run / "metrics.json").read_text())
        assert ("precise_bn" in metrics) == (settings.variant.norm == "batch"), run
        if "precise_bn" in metrics:
            assert metrics["precise_bn"]["images"] == BATCH["precise_bn_images"]
    root = smoke_study / "results" / "smoke"
    assert (root / "logs" / "batch_study" / "evaluate" / "bn" / "batch4" / "seed2.log").is_file()
    assert (root / "logs" / "batch_study" / "train" / "gn" / "batch64" / "seed1.log").is_file()


def test_a_batch_study_at_the_main_recipe_scores_the_main_runs_as_its_references(
    smoke_study: Path, tmp_path: Path
) -> None:
    """At the main recipe's epochs and images, the references are read from the main study (same settings, same
    predictions, a gate that holds by construction), only the ghost runs train, and the main study is left alone."""
    tree = tmp_path / "study"
    shutil.copytree(smoke_study, tree, symlinks=True, ignore=without_comparisons)
    # The smoke study changed on purpose (amend_study): its folder records the config that made it.
    (tree / "main_recipe.yaml").write_text("amend_study: true\nbatch_study:\n  epochs: 2\n  train_images: null\n")
    main, batch = tree / "results" / "smoke" / "runs", tree / "results" / "smoke" / "batch_study"
    for reference in (batch / "runs").glob("*/batch64/seed*"):
        shutil.rmtree(reference)  # as a fresh study has none: the smoke study trained its own at 1 epoch
    before = {path: path.read_bytes() for path in sorted(main.rglob("*")) if path.is_file()}
    snakemake(tree, "report/smoke/index.html", *SMOKE_ARGS, "main_recipe.yaml")
    assert {path: path.read_bytes() for path in sorted(main.rglob("*")) if path.is_file()} == before
    for variant in ("bn", "gn"):
        for seed in BATCH["seeds"]:
            reference, own = batch / "runs" / variant / "batch64" / f"seed{seed}", main / variant / f"seed{seed}"
            assert (reference / "settings.json").read_bytes() == (own / "settings.json").read_bytes()
            assert not (reference / "model.pt").exists() and not (reference / "history.csv").exists()
            assert (reference / "predictions.csv").read_bytes() == (own / "predictions.csv").read_bytes()
    assert all((batch / "runs" / "bn" / f"batch{size}" / "seed1" / "model.pt").is_file() for size in (4, 16))
    runs = pd.read_csv(batch / "runs.csv")
    assert (runs["epochs"] == 2).all() and len(runs) == 8
    gate = pd.read_csv(batch / "gate.csv")
    assert gate["trained"].all() and (gate["shortfall"].abs() < 1e-3).all()
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", (tree / "report" / "smoke" / "index.html").read_text())).split())
    assert "The reference runs of bn, gn are the main study's own runs" in text
    assert "over all 16 training jobs (the main study's and the batch study's)" in text  # 12 + bn's 4 ghost runs


def test_runs_carry_their_settings(smoke_study: Path) -> None:
    for variant in VARIANTS:
        run = smoke_study / "results" / "smoke" / "runs" / variant / "seed1"
        settings = RunSettings.read(run / "settings.json")
        assert settings.variant.name == variant and settings.seed == 1
        assert settings.variant.norm == yaml.safe_load((REPO / "config.yaml").read_text())["variants"][variant]["norm"]
        assert settings.train.epochs == SMOKE["train"]["epochs"]
        assert (
            settings.data.synthetic is not None and settings.data.synthetic.seed == SMOKE["data"]["synthetic"]["seed"]
        )
        # 7,652 with a norm's affine pair per channel; the control has none (7,384).
        assert json.loads((run / "job.json").read_text())["params"] == (
            7384 if settings.variant.norm == "none" else 7652
        )
        history = pd.read_csv(smoke_study / "results" / "smoke" / "runs" / variant / "seed1" / "history.csv")
        assert len(history) == SMOKE["train"]["epochs"]


def test_l1_variant_differs_from_plain_batch_norm(smoke_study: Path) -> None:
    runs = smoke_study / "results" / "smoke" / "runs"
    assert (runs / "bn" / "seed1" / "predictions.csv").read_bytes() != (
        runs / "bn_l1" / "seed1" / "predictions.csv"
    ).read_bytes()


# What may differ between two identical runs: when each job ran, and how long its epochs took.
TIMING_KEYS = ("started_utc", "finished_utc")


def comparable(path: Path) -> bytes | pd.DataFrame | dict:
    """A run file's content with its timing columns left out."""
    if path.name == "history.csv":
        return pd.read_csv(path).drop(columns="seconds")
    if path.name == "job.json":
        return {k: v for k, v in json.loads(path.read_text()).items() if k not in TIMING_KEYS}
    return path.read_bytes()


def same_content(first: Path, second: Path) -> None:
    """Two runs' copies of one file hold the same content, timing left out."""
    one, other = comparable(first), comparable(second)
    if isinstance(one, pd.DataFrame):
        pd.testing.assert_frame_equal(one, other)
    else:
        assert one == other, first


def without_timing(table: Path, keys: list[str]) -> pd.DataFrame:
    """A table of runs less its timing columns, indexed by the columns that name a run."""
    frame = pd.read_csv(table)
    return frame.drop(columns=[c for c in frame.columns if "seconds" in c]).set_index(keys).sort_index()


def test_second_study_from_scratch_gives_identical_files(smoke_study: Path, small_study_run: Path) -> None:
    """The small study, run from scratch in another folder, repeats the smoke study's runs it shares, bit for bit,
    and runs its batch study in the SGD-batch design, seeds packed where the batch is small.

    Every norm's training is bitwise deterministic on its own (test_engine); this is the workflow's part: separate
    jobs and processes, and the files they write.
    """
    shared = sorted(
        p.relative_to(small_study_run)
        for p in (small_study_run / "results" / "smoke" / "runs").rglob("*")
        if p.is_file()
    )
    assert len(shared) == 2 * len(RUN_FILES) + 1  # bn and gn, seed 1; bn's PreciseBN statistics
    for relative in shared:
        same_content(smoke_study / relative, small_study_run / relative)
    # The small study's batch study is the SGD-batch design: bn at batch 4, its two seeds packed into one job, and at
    # 64, a job per seed.
    small = small_study_run / "results" / "smoke"
    for run in batch_runs(small_study_run, {"bn": [4, 64]}, [1, 2]):
        size, seed = int(run.parent.name.removeprefix("batch")), int(run.name.removeprefix("seed"))
        job = json.loads((run / "job.json").read_text())
        assert job["pack_seeds"] == ([1, 2] if size <= PACKING_PAYS_UP_TO else [seed]), run
        settings = RunSettings.read(run / "settings.json")
        assert settings.train.batch_size == size and settings.variant.ghost == 0
        load_model(build_model(settings.variant), run / "model.pt", settings, run / "settings.json")
    packs = sorted(p.name for p in (small / "benchmarks" / "batch_study" / "train" / "bn").glob("*.tsv"))
    assert packs == ["batch4.tsv"]  # one job for the pack; batch 64 has one per seed
    for table, keys in (("tables/runs.csv", ["variant", "seed"]),):
        again = without_timing(small_study_run / "results" / "smoke" / table, keys)
        first = without_timing(smoke_study / "results" / "smoke" / table, keys).loc[again.index]
        # A column whose shared rows are whole numbers reads as int in one table and float in the other.
        pd.testing.assert_frame_equal(first, again, check_dtype=False, check_exact=True)


TEXT_OUTPUTS = (".csv", ".json", ".md", ".html", ".tsv", ".svg")


def test_no_output_holds_nan(smoke_study: Path) -> None:
    outputs = [
        p
        for folder in ("results", "report")
        for p in (smoke_study / folder).rglob("*")
        if p.suffix in TEXT_OUTPUTS and ".snakemake" not in p.parts
    ]
    assert len(outputs) > 50
    for path in outputs:
        # Embedded images are base64, where "+Inf/" can occur by chance: only the words are checked.
        text = re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+", "", path.read_text(encoding="utf-8"))
        assert not re.search(r"\bnan\b|\binf\b", text, re.IGNORECASE), path


def test_one_seed_gives_no_nan_either(small_study_run: Path) -> None:
    """One seed has no spread: the tables say so with an empty cell or a dash, never NaN."""
    tables = small_study_run / "results" / "smoke" / "tables"
    assert pd.read_csv(tables / "runs.csv")["seed"].unique().tolist() == [1]
    for table in ("summary.csv", "summary.md", "summary.html", "comparisons.csv"):
        text = (tables / table).read_text()
        assert not re.search(r"\bnan\b", text, re.IGNORECASE), table
    assert "–" in (tables / "summary.md").read_text()


@dataclass(frozen=True)
class ResumedRun:
    """A train job cut after its first epoch, resumed on other data, and a clean run on that data."""

    cut_exit_code: int
    checkpoint_left: bool
    resumed: Path
    clean: Path


RESUME_OVERRIDES = "seeds: [1]\ntrain: {epochs: 3}\n"
RESUME_TARGET = "results/smoke/runs/bn/seed1/predictions.csv"


@background_study
def resumed_on_other_data(runs: BackgroundRuns, folder: Path) -> ResumedRun:
    """Kill a train job after its first epoch, change the dataset, rerun; and the same study run cleanly."""
    args = ["--configfile", "tests/smoke.yaml", "run.yaml"]
    study = copy_workflow(folder / "cut")
    (study / "run.yaml").write_text(RESUME_OVERRIDES)
    background_snakemake(
        runs,
        study,
        "results/smoke/runs/bn/seed1/settings.json",
        "results/data/synthetic/raw/provenance.json",
        "--cores",
        "1",
        *args,
    )
    raw = study / "results" / "data" / "synthetic" / "raw"
    run = study / "results" / "smoke" / "runs" / "bn" / "seed1"
    code, _ = runs.run(
        [sys.executable, "workflow/scripts/train.py", "--settings", str(run / "settings.json"), "--data",
         *(str(raw / name) for name in RAW_FILES),
         "--provenance", str(raw / "provenance.json"), "--model", str(run / "model.pt"),
         "--history", str(run / "history.csv"), "--job", str(run / "job.json"),
         "--checkpoint", str(run / "checkpoint.pt"), "--threads", "1", "--stop-after-epoch", "1"],
        study, dict(os.environ),
    )  # fmt: skip
    checkpoint_left = (run / "checkpoint.pt").exists()
    # The study changed on purpose (amend_study): its folder records the config that made it.
    (study / "run.yaml").write_text(RESUME_OVERRIDES + "amend_study: true\ndata: {synthetic: {seed: 5}}\n")
    background_snakemake(runs, study, RESUME_TARGET, "--cores", "1", *args)
    clean = copy_workflow(folder / "clean")
    (clean / "run.yaml").write_text(RESUME_OVERRIDES + "data: {synthetic: {seed: 5}}\n")
    background_snakemake(runs, clean, RESUME_TARGET, "--cores", "1", *args)
    return ResumedRun(code, checkpoint_left, study, clean)


def test_an_interrupted_run_resumed_on_other_data_equals_a_clean_run(resumed_on_other_data: ResumedRun) -> None:
    """Kill a train job after its first epoch, change the dataset, rerun: the result is a clean run's."""
    run = resumed_on_other_data
    assert run.cut_exit_code == 1 and run.checkpoint_left
    assert "starting afresh" in (run.resumed / "results" / "smoke" / "logs" / "train" / "bn" / "seed1.log").read_text()
    assert (run.resumed / RESUME_TARGET).read_bytes() == (run.clean / RESUME_TARGET).read_bytes()


def test_nothing_to_do_after_a_complete_study(smoke_study: Path) -> None:
    done = snakemake(smoke_study, "-n", "--configfile", "tests/smoke.yaml")
    assert "Nothing to be done" in done.stdout + done.stderr


@pytest.mark.parametrize("name", ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"])
def test_an_edited_data_file_is_refused_before_any_job_and_nothing_is_deleted(smoke_study: Path, name: str) -> None:
    path = smoke_study / "results" / "data" / "synthetic" / "raw" / name
    before, stat = path.read_bytes(), path.stat()
    outputs = sorted((smoke_study / "results" / "smoke" / "runs").rglob("*"))
    edited = bytearray(before)
    edited[-1] = (edited[-1] + 1) % 10
    path.write_bytes(bytes(edited))
    try:
        done = snakemake(smoke_study, "--cores", "1", "--configfile", "tests/smoke.yaml", check=False)
    finally:
        path.write_bytes(before)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert done.returncode != 0
    assert f"{path.relative_to(smoke_study)}: SHA-256" in done.stderr + done.stdout
    assert "has been changed since" in done.stderr + done.stdout
    assert sorted((smoke_study / "results" / "smoke" / "runs").rglob("*")) == outputs
