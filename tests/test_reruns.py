"""Rerunning exactly what a change touches, shown with dry runs on the finished smoke study."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import planned_counts, snakemake

pytestmark = pytest.mark.workflow

SMOKE_RUNS = 12  # 6 variants x 2 seeds
FIGURE_RULES = {"plot_curves": 1, "plot_final": 1, "plot_confusion": 1}
# The smoke batch study (ghost design): bn at statistics batches 4, 16 and 64, gn at 64 alone, x 2 seeds, each run
# its own training and evaluation job (the SGD batch of 64 packs nothing).
BATCH_RUNS = 8
BATCH_TABLES = {"batch_summary": 1, "plot_batch_study": 1}
# The batch study's tables read the main study's summary for its convergence gate.
GATED = BATCH_TABLES
# A config change rewrites study.json (what the report shows of the config), and so the report and the landing
# page of snakemake --report.
DESCRIBED = {"describe_study": 1, "report": 1, "report_metadata": 1}
# The robustness study (smoke: clean, contrast and fog): one job per set scores every run, then its summary.
ROBUSTNESS = {"score_clean_set": 1, "score_corrupted_set": 2, "robustness_summary": 1}
BATCH_NORM_RUNS = 4  # bn and bn_l1 x 2 seeds: PreciseBN's statistics for the robustness study


def planned(study: Path, *extra: str) -> Counter:
    """Jobs a dry run of the smoke study would execute, per rule (the `all` target left out). Each change here is
    made to the smoke study on purpose (amend_study; without it, another config under its name is refused)."""
    jobs = planned_counts(study, "--configfile", "tests/smoke.yaml", *extra, "--config", "amend_study=True")
    jobs.pop("all", None)
    return jobs


@contextmanager
def edited(path: Path, extra: str) -> Iterator[None]:
    """Append to a source file for the duration of the block, then restore its bytes and its mtime."""
    before, stat = path.read_bytes(), path.stat()
    path.write_bytes(before + extra.encode())
    try:
        yield
    finally:
        path.write_bytes(before)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@contextmanager
def override(study: Path, text: str) -> Iterator[str]:
    """A second --configfile merged over the smoke config."""
    path = study / "override.yaml"
    path.write_text(text)
    try:
        yield str(path.name)
    finally:
        path.unlink()


def test_nothing_changed_nothing_runs(smoke_study: Path) -> None:
    assert planned(smoke_study) == Counter()


def test_changing_how_mnist_would_be_fetched_reruns_nothing(smoke_study: Path) -> None:
    with override(smoke_study, "data:\n  sources: [pypi]\n  timeout_s: 5\n  mirrors: []\n") as extra:
        assert planned(smoke_study, extra) == Counter()


def test_changing_the_title_reruns_only_the_report(smoke_study: Path) -> None:
    with override(smoke_study, "report:\n  title: Another title\n") as extra:
        assert planned(smoke_study, extra) == Counter(DESCRIBED)


def test_changing_the_tuning_grid_or_validation_split_reruns_only_the_report(smoke_study: Path) -> None:
    """The study's runs never depend on the search: only the method section, which compares it, is redone."""
    with override(smoke_study, "tune:\n  grid: {train.schedule.max_lr: [0.05, 0.2]}\n") as extra:
        assert planned(smoke_study, extra) == Counter(DESCRIBED)
    with override(smoke_study, "data:\n  validation: 300\n") as extra:
        assert planned(smoke_study, extra) == Counter(DESCRIBED)
    with edited(smoke_study / "workflow" / "resources" / "tuning" / "summary.csv", "\n"):
        assert planned(smoke_study) == Counter(DESCRIBED)


def test_a_variants_own_recipe_retrains_that_variant_only(smoke_study: Path) -> None:
    with override(smoke_study, "variants:\n  gn:\n    train: {schedule: {max_lr: 0.3}}\n") as extra:
        jobs = planned(smoke_study, extra)
    main = {"run_settings": 2, "train": 2, "evaluate": 2, "misclassified": 2, "aggregate": 1, **FIGURE_RULES}
    # gn's batch-study runs keep gn's recipe: its 2 runs at the reference.
    batch = {"batch_settings": 2, "batch_train": 2, "batch_evaluate": 2, **BATCH_TABLES}
    assert jobs == Counter({**main, **batch, **ROBUSTNESS, **DESCRIBED})


def test_changing_only_the_batch_study_reruns_only_the_batch_study_and_the_report(smoke_study: Path) -> None:
    with override(smoke_study, "batch_study:\n  epochs: 2\n") as extra:
        jobs = planned(smoke_study, extra)
    runs = {"batch_settings": BATCH_RUNS, "batch_train": BATCH_RUNS, "batch_evaluate": BATCH_RUNS}
    assert jobs == Counter({**runs, **BATCH_TABLES, **DESCRIBED})
    # The ghost design keeps every recipe: a learning-rate scaling rule changes no run.
    with override(smoke_study, "batch_study:\n  lr_scaling: sqrt\n") as extra:
        assert planned(smoke_study, extra) == Counter(DESCRIBED)
    # PreciseBN's image count changes the batch study's evaluations only, and the gate its tables only.
    with override(smoke_study, "batch_study:\n  precise_bn_images: 300\n") as extra:
        assert planned(smoke_study, extra) == Counter({"batch_evaluate": BATCH_RUNS, **BATCH_TABLES, **DESCRIBED})
    with override(smoke_study, "batch_study:\n  convergence_gate: 1.5\n") as extra:
        # The figure reads the summary the gate's change rewrites.
        assert planned(smoke_study, extra) == Counter({"batch_summary": 1, "plot_batch_study": 1, **DESCRIBED})
    with override(smoke_study, "batch_study:\n  enabled: false\n") as extra:
        assert planned(smoke_study, extra) == Counter(DESCRIBED)


def test_a_batch_study_at_the_main_recipe_trains_only_its_ghost_runs(smoke_study: Path) -> None:
    """At the main study's epochs and images the references (bn and gn at 64) are the main runs, scored from their
    models: only bn's ghost runs (4 and 16, 2 seeds) train, and no main-study job runs again."""
    with override(smoke_study, "batch_study:\n  epochs: 2\n  train_images: null\n") as extra:
        jobs = planned(smoke_study, extra)
    runs = {"batch_settings": BATCH_RUNS, "batch_train": 4, "batch_evaluate": BATCH_RUNS}
    assert jobs == Counter({**runs, **BATCH_TABLES, **DESCRIBED})


def test_adding_a_batch_study_seed_trains_only_its_runs(smoke_study: Path) -> None:
    with override(smoke_study, "batch_study:\n  seeds: [1, 2, 3]\n") as extra:
        jobs = planned(smoke_study, extra)
    new = {"batch_settings": 4, "batch_train": 4, "batch_evaluate": 4}  # bn at 3 sizes and gn at 1, seed 3
    assert jobs == Counter({**new, **BATCH_TABLES, **DESCRIBED})


def test_adding_a_seed_trains_only_the_new_runs(smoke_study: Path) -> None:
    with override(smoke_study, "seeds: [1, 2, 3]\n") as extra:
        jobs = planned(smoke_study, extra)
    main = {"run_settings": 6, "train": 6, "evaluate": 6, "misclassified": 6, "aggregate": 1, **FIGURE_RULES}
    # Seed 3's bn and bn_l1 get their PreciseBN statistics; every set is scored again, with the new runs.
    assert jobs == Counter({**main, **GATED, "precise_statistics": 2, **ROBUSTNESS, **DESCRIBED})


def test_adding_a_variant_trains_only_that_variant(smoke_study: Path) -> None:
    with override(smoke_study, "variants:\n  gn1:\n    norm: group\n    groups: 1\n") as extra:
        jobs = planned(smoke_study, extra)
    assert jobs == Counter(
        {
            "run_settings": 2,
            "train": 2,
            "evaluate": 2,
            "misclassified": 2,
            "aggregate": 1,
            "model_summary": 1,
            **FIGURE_RULES,
            **GATED,
            **ROBUSTNESS,
            **DESCRIBED,
        }
    )


def test_editing_plotting_code_reruns_only_figures_and_report(smoke_study: Path) -> None:
    with edited(smoke_study / "workflow" / "scripts" / "normstudy" / "report" / "plots.py", "\n# an edit\n"):
        jobs = planned(smoke_study)
    # The per-run misclassified grids, the batch study's figure and the robustness study's are drawn by it too.
    figures = {"plot_batch_study": 1, "corrupted_sets_manifest": 1, "robustness_summary": 1}
    assert jobs == Counter({**FIGURE_RULES, "misclassified": SMOKE_RUNS, **figures, "report": 1})
    with edited(smoke_study / "workflow" / "scripts" / "plot_final.py", "\n# an edit\n"):
        assert planned(smoke_study) == Counter({"plot_final": 1, "report": 1})


@pytest.mark.parametrize(
    "source",
    ["workflow/report/index.html.j2", "workflow/scripts/report.py", "workflow/scripts/normstudy/analysis/findings.py"],
)
def test_editing_the_report_text_or_template_reruns_only_the_report(smoke_study: Path, source: str) -> None:
    with edited(smoke_study / source, "\n<!-- an edit -->\n" if source.endswith(".j2") else "\n# an edit\n"):
        jobs = planned(smoke_study)
    # The robustness summary writes its sentences with the findings module, and the report's metadata its Key results.
    also = {"robustness_summary": 1, "report_metadata": 1} if source.endswith("findings.py") else {}
    assert jobs == Counter({"report": 1, **also})


def test_editing_training_code_reruns_training_and_everything_downstream(smoke_study: Path) -> None:
    with edited(smoke_study / "workflow" / "scripts" / "normstudy" / "engine.py", "\n# an edit\n"):
        jobs = planned(smoke_study)
    assert jobs == Counter(
        {
            "train": SMOKE_RUNS,
            "evaluate": SMOKE_RUNS,
            "misclassified": SMOKE_RUNS,
            "aggregate": 1,
            **FIGURE_RULES,
            "batch_train": BATCH_RUNS,
            "batch_evaluate": BATCH_RUNS,
            **BATCH_TABLES,
            "precise_statistics": BATCH_NORM_RUNS,
            **ROBUSTNESS,
            "report": 1,
            "report_metadata": 1,
        }
    )


def planned_apart(study: Path, *args: str) -> str:
    """What a dry run in a process of its own says."""
    done = snakemake(study, "-n", *args, timeout=600)
    return done.stdout + done.stderr


@contextmanager
def added(path: Path, text: str) -> Iterator[None]:
    """A new source file for the duration of the block."""
    path.write_text(text)
    try:
        yield
    finally:
        path.unlink()


def test_adding_a_dataset_or_a_network_to_the_registry_reruns_nothing(smoke_study: Path) -> None:
    # Each is a module of its own (data/sets/, model/nets/), which only a study on it imports and hashes.
    package = smoke_study / "workflow" / "scripts" / "normstudy"
    dataset = (package / "data/sets/mnist.py").read_text().replace('name="mnist"', 'name="mnist_copy"')
    dataset = dataset.replace('folder="MNIST"', 'folder="MNISTCopy"').replace('network="normnet"', 'network="net_copy"')
    network = (package / "model/nets/normnet.py").read_text().replace('"normnet",', '"net_copy",', 1)
    # Planned by a Snakemake process of its own, which imports the copy's package (the suite's has the repository's).
    smoke = ("--configfile", "tests/smoke.yaml", "--config", "amend_study=True")
    with added(package / "data/sets/mnist_copy.py", dataset), added(package / "model/nets/net_copy.py", network):
        assert "Nothing to be done" in planned_apart(smoke_study, *smoke)
        # The registry knows them: a study may name the new dataset, studied with the new network.
        (smoke_study / "copy.yaml").write_text("study: copy\ndata: {dataset: mnist_copy}\n")
        jobs = planned_apart(smoke_study, "--configfile", "copy.yaml")
        assert re.search(r"^fetch_dataset\s+1$", jobs, re.M) and re.search(r"^train\s+18$", jobs, re.M)
    # A study's own dataset module is its code: an edit to it retrains.
    with edited(package / "data/sets/synthetic.py", "\n# an edit\n"):
        assert planned(smoke_study)["train"] == SMOKE_RUNS


def test_editing_the_batch_study_tables_code_reruns_its_tables_figure_and_the_report(smoke_study: Path) -> None:
    with edited(smoke_study / "workflow" / "scripts" / "normstudy" / "analysis" / "batches.py", "\n# an edit\n"):
        assert planned(smoke_study) == Counter({**BATCH_TABLES, "report": 1})


def test_adding_a_corruption_makes_and_scores_only_that_set(smoke_study: Path) -> None:
    with override(smoke_study, "robustness:\n  corruptions: [contrast, fog, shear]\n") as extra:
        jobs = planned(smoke_study, extra)
    made = {"corrupt_test_set": 1, "corrupted_sets_manifest": 1, "score_corrupted_set": 1, "robustness_summary": 1}
    assert jobs == Counter({**made, **DESCRIBED})
    # PreciseBN's image count reruns its statistics and every set's scoring, no training.
    with override(smoke_study, "robustness:\n  precise_bn_images: 500\n") as extra:
        assert planned(smoke_study, extra) == Counter(
            {"precise_statistics": BATCH_NORM_RUNS, **ROBUSTNESS, **DESCRIBED}
        )
    with edited(smoke_study / "workflow" / "scripts" / "normstudy" / "analysis" / "robustness.py", "\n# an edit\n"):
        assert planned(smoke_study) == Counter({"robustness_summary": 1, "report": 1})


def test_changing_the_epochs_retrains_everything(smoke_study: Path) -> None:
    with override(smoke_study, "train:\n  epochs: 3\n") as extra:
        jobs = planned(smoke_study, extra)
    assert jobs["run_settings"] == SMOKE_RUNS and jobs["train"] == SMOKE_RUNS and jobs["evaluate"] == SMOKE_RUNS
    assert jobs["report"] == 1
    assert "model_summary" not in jobs and "make_synthetic" not in jobs
    # The batch study has epochs of its own: its runs stay.
    assert not {"batch_settings", "batch_train", "batch_evaluate"} & set(jobs)


def test_changing_the_dataset_regenerates_it_and_retrains(smoke_study: Path) -> None:
    with override(smoke_study, "data:\n  synthetic:\n    seed: 5\n") as extra:
        jobs = planned(smoke_study, extra)
    assert jobs["make_synthetic"] == 1 and jobs["run_settings"] == SMOKE_RUNS and jobs["train"] == SMOKE_RUNS
    assert jobs["batch_settings"] == BATCH_RUNS and jobs["batch_train"] == BATCH_RUNS


def test_nothing_left_to_do_after_the_checks(smoke_study: Path) -> None:
    assert planned(smoke_study) == Counter()
