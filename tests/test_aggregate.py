"""aggregate.py on a tiny fixture of run folders whose numbers are chosen by hand."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import aggregate
import pandas as pd
import pytest
from helpers import tiny_settings

from normstudy.config.study import Plan
from normstudy.settings import RunSettings

# Final test accuracy per (variant, seed); 10-image test sets so that the confusion matrices stay small.
FINAL = {("bn", 1): 90.0, ("bn", 2): 80.0, ("gn", 1): 70.0, ("gn", 2): 60.0, ("none", 1): 30.0, ("none", 2): 50.0}


def write_run(folder: Path, variant: str, norm: str, seed: int) -> dict[str, Path]:
    """settings.json, metrics.json, job.json, predictions.csv and a two-epoch history.csv of one run."""
    base = tiny_settings(norm=norm, seed=seed)
    settings = dataclasses.replace(base, variant=dataclasses.replace(base.variant, name=variant))
    accuracy = FINAL[(variant, seed)]
    correct = round(accuracy / 10)
    matrix = [[0] * 10 for _ in range(10)]
    for k in range(10):  # image k has label k; the first `correct` are right, the rest are called 0
        matrix[k][k if k < correct else 0] += 1
    names = ("settings.json", "metrics.json", "job.json", "history.csv", "predictions.csv")
    paths = {name: folder / name for name in names}
    folder.mkdir(parents=True)
    paths["settings.json"].write_text(json.dumps(settings.file_dict()))
    metrics = {
        "variant": variant,
        "seed": seed,
        "settings_digest": settings.digest(),
        "test_acc": accuracy,
        "test_loss": 0.5,
        "n_test": 10,
        "n_misclassified": 10 - correct,
        "per_class_acc": [100.0 if k < correct else 0.0 for k in range(10)],
        "confusion_matrix": matrix,
        "params": 7652,
    }
    paths["metrics.json"].write_text(json.dumps(metrics))
    job = {
        "variant": variant,
        "seed": seed,
        "settings_digest": settings.digest(),
        "torch": "2.14.1",
        "python": "3.11.7",
    }
    paths["job.json"].write_text(json.dumps({**job, "device": "cpu", "device_name": "", "threads": seed}))
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "lr": [0.01, 0.001],
            "train_loss": [1.0, 0.5],
            "train_acc": [50.0, accuracy + 5],
            "test_loss": [0.9, 0.5],
            "test_acc": [accuracy + 3, accuracy],  # the best epoch is the first
            "seconds": [2.0, 4.0],
        }
    )
    history.to_csv(paths["history.csv"], index=False)
    predictions = pd.DataFrame({"index": range(10), "label": range(10)})
    predictions["prediction"] = [k if k < correct else 0 for k in range(10)]
    predictions.to_csv(paths["predictions.csv"], index=False)
    return paths


def files(runs: list[dict[str, Path]]) -> dict[str, list[Path]]:
    """aggregate.main's inputs, a list per kind in run order."""
    names = {"settings": "settings.json", "metrics": "metrics.json", "histories": "history.csv", "jobs": "job.json"}
    return {kind: [run[name] for run in runs] for kind, name in {**names, "predictions": "predictions.csv"}.items()}


PLAN = Plan(reference="bn", correction="holm", alpha=0.05, margin=5.0, test_resamples=200)


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, pd.DataFrame]:
    runs = [
        write_run(tmp_path / "runs" / v / f"seed{s}", v, n, s)
        for v, n in (("bn", "batch"), ("gn", "group"))
        for s in (1, 2)
    ]
    out = {name: tmp_path / "tables" / f"{name}.csv" for name in aggregate.OUTPUTS}
    out["summary_md"], out["summary_html"] = tmp_path / "tables" / "summary.md", tmp_path / "tables" / "summary.html"
    out["analysis"] = tmp_path / "tables" / "analysis.json"
    out["environment"] = tmp_path / "environment.json"
    aggregate.main(files(runs), PLAN, out)
    return {name: pd.read_csv(path) for name, path in out.items() if path.suffix == ".csv"} | {
        "md": out["summary_md"].read_text(),
        "analysis": json.loads(out["analysis"].read_text()),
        "environment": json.loads(out["environment"].read_text()),
    }


def test_the_environment_records_every_value_the_jobs_hold(tables: dict) -> None:
    environment = tables["environment"]
    assert environment["jobs"] == {
        "torch": ["2.14.1"],
        "python": ["3.11.7"],
        "device": ["cpu"],
        "device_name": [""],
        "threads": ["1", "2"],  # seed 1's jobs ran on one thread here, seed 2's on two
    }
    assert environment["packages"]["torch"].startswith("2.") and environment["cpu"] and environment["os"]


def test_summary_by_hand(tables: dict) -> None:
    """bn: 90, 80 -> mean 85, sd sqrt(50) = 7.071068; 95 % CI 85 -+ 12.706205 x 5 = 21.47 to 148.53, shown as 21.47
    to 100: no accuracy lies above 100 %."""
    summary = tables["summary"].set_index("variant")
    bn = summary.loc["bn"]
    assert bn["n_seeds"] == 2 and bn["params"] == 7652 and bn["norm"] == "batch"
    assert bn["test_acc_mean"] == pytest.approx(85.0)
    assert bn["test_acc_std"] == pytest.approx(math.sqrt(50), rel=1e-5)
    assert bn["test_acc_ci95_low"] == pytest.approx(85 - 12.706205 * 5, rel=1e-5)
    assert bn["test_acc_ci95_high"] == 100.0
    assert "best_epoch_test_acc_mean" not in summary.columns  # a maximum over epochs of test accuracy: not shown
    assert bn["train_test_gap_mean"] == pytest.approx(5.0)
    assert bn["misclassified_mean"] == pytest.approx(1.5)  # (1 + 2) / 2
    assert bn["seconds_per_epoch_mean"] == pytest.approx(3.0)
    assert summary.loc["gn", "test_acc_mean"] == pytest.approx(65.0)


def test_runs_and_epochs_tables(tables: dict) -> None:
    runs = tables["runs"]
    assert list(zip(runs["variant"], runs["seed"], strict=True)) == [("bn", 1), ("bn", 2), ("gn", 1), ("gn", 2)]
    assert runs["test_acc"].tolist() == [90.0, 80.0, 70.0, 60.0]
    assert len(tables["epochs"]) == 8 and set(tables["epochs"]["epoch"]) == {1, 2}


def test_comparison_is_paired_by_seed(tables: dict) -> None:
    """bn - gn per seed: 20, 20 -> no spread: a zero-wide interval and no p-value."""
    row = tables["comparisons"].iloc[0]
    assert (row["variant_a"], row["variant_b"], bool(row["paired"])) == ("bn", "gn", True)
    assert row["diff_mean"] == pytest.approx(20.0) and row["ci95_low"] == row["ci95_high"] == pytest.approx(20.0)
    assert math.isnan(row["p_value"])


def test_the_declared_family_compares_each_variant_with_the_reference(tables: dict) -> None:
    """gn - bn per seed: -20, -20: no residual spread (2 variants x 2 seeds, 1 residual df, zero residual), so the
    difference is exact and nothing is testable; the facts carry the plan and the model's df."""
    row = tables["family"].iloc[0]
    assert (row["variant"], row["reference"], row["n_seeds"]) == ("gn", "bn", 2)
    assert row["diff"] == pytest.approx(-20.0) and row["df"] == 1
    assert pd.isna(row["held_equal"])  # the same recipe: only the norm differs
    facts = tables["analysis"]
    assert facts["plan"]["reference"] == "bn" and facts["df"] == 1
    assert set(facts["prediction_intervals"]) == {"bn", "gn"}


def test_per_class_and_confusion_means(tables: dict) -> None:
    """bn seed 1 gets classes 0-8 right, seed 2 classes 0-7: class 8 is right in one seed of two."""
    per_class = tables["per_class"].set_index(["variant", "class"])
    assert per_class.loc[("bn", 8), "acc_mean"] == pytest.approx(50.0)
    assert per_class.loc[("bn", 8), "acc_std"] == pytest.approx(math.sqrt(5000))
    assert per_class.loc[("bn", 0), "acc_mean"] == pytest.approx(100.0)
    confusion = tables["confusion"].set_index(["variant", "true", "predicted"])["count_mean"]
    assert confusion.loc[("bn", 9, 0)] == pytest.approx(1.0) and confusion.loc[("bn", 8, 0)] == pytest.approx(0.5)
    assert len(confusion) == 2 * 100


def test_markdown_summary_shows_no_nan(tables: dict) -> None:
    assert "nan" not in tables["md"].lower() and "| bn " in tables["md"]


def test_metrics_of_another_run_are_refused(tmp_path: Path) -> None:
    first = write_run(tmp_path / "a", "bn", "batch", 1)
    second = write_run(tmp_path / "b", "bn", "batch", 2)
    with pytest.raises(ValueError, match="is of bn seed 2, not bn seed 1"):
        aggregate.read_runs(files([{**first, "metrics.json": second["metrics.json"]}]))
    assert RunSettings.read(first["settings.json"]).variant.name == "bn"


def test_metrics_from_other_settings_of_the_same_run_are_refused(tmp_path: Path) -> None:
    run = write_run(tmp_path / "a", "bn", "batch", 1)
    metrics = json.loads(run["metrics.json"].read_text())
    run["metrics.json"].write_text(json.dumps({**metrics, "settings_digest": "0" * 64}))
    with pytest.raises(ValueError, match=r"metrics.json was made with other settings than the run's settings.json"):
        aggregate.read_runs(files([run]))


def test_with_a_control_every_other_variant_is_compared_with_it_in_a_family_of_its_own(tmp_path: Path) -> None:
    runs = [
        write_run(tmp_path / "runs" / v / f"seed{s}", v, n, s)
        for v, n in (("bn", "batch"), ("gn", "group"), ("none", "none"))
        for s in (1, 2)
    ]
    out = {name: tmp_path / "tables" / f"{name}.csv" for name in aggregate.OUTPUTS}
    out["summary_md"], out["summary_html"] = tmp_path / "tables" / "summary.md", tmp_path / "tables" / "summary.html"
    out["analysis"], out["environment"] = tmp_path / "tables" / "analysis.json", tmp_path / "environment.json"
    aggregate.main(files(runs), dataclasses.replace(PLAN, control="none"), out)
    control, family = pd.read_csv(out["control"]), pd.read_csv(out["family"])
    assert list(control["variant"]) == ["bn", "gn"] and set(control["reference"]) == {"none"}
    # bn - none per seed: 60, 30; gn - none: 40, 10 -> the variant + seed model's differences 45 and 25.
    assert control["diff"].tolist() == pytest.approx([45.0, 25.0])
    assert list(family["variant"]) == ["gn", "none"] and set(family["reference"]) == {"bn"}
    # Holm over the control family's two rows: the smaller p doubled, the larger kept (at least the first).
    p = sorted(control["p_value"])
    assert sorted(control["p_adjusted"]) == pytest.approx([2 * p[0], max(2 * p[0], p[1])])
