"""The recipe search: per-variant overrides, the validation split, the choice, and a tune run without test files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from background import BackgroundRuns, background_study
from conftest import REPO, background_snakemake, copy_workflow, snakemake
from helpers import study_config, synthetic_files, tiny_settings
from scipy import stats

from normstudy.analysis.tuning import (
    chosen_overrides,
    chosen_yaml,
    configured_matches_chosen,
    grid_edges,
    pooled_spread,
    search_digest,
    summarize,
    untrained,
)
from normstudy.config.recipes import merge, run_settings, tuning_points, tuning_settings
from normstudy.config.study import Study
from normstudy.config.validation import validate_config
from normstudy.data.datasets import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from normstudy.data.tensors import load_splits
from normstudy.values import ConfigError


def test_a_variant_overrides_train_keys_and_only_its_own() -> None:
    config = study_config({"variants": {"gn": {"train": {"schedule": {"max_lr": 0.3}, "epochs": 3}}}})
    gn = run_settings(Study.from_config(config), "gn", 1)
    assert (gn.train.schedule.max_lr, gn.train.epochs) == (0.3, 3)
    assert run_settings(Study.from_config(config), "bn", 1) == run_settings(Study.from_config(study_config()), "bn", 1)
    assert config["train"]["epochs"] == 2
    # The rest of gn's schedule still comes from train.
    assert gn.train.schedule.pct_start == config["train"]["schedule"]["pct_start"]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"schedule": {"max_lr": 0}}, "'variants.gn.train.schedule.max_lr'"),
        ({"schedule": {"peak": 0.1}}, "'variants.gn.train.schedule.peak': unknown key"),
        ({"epochs": 2.0}, "'variants.gn.train.epochs': expected integer"),
        ({"memory_format": "nhwc"}, "'variants.gn.train.memory_format'"),
    ],
)
def test_a_bad_variant_override_is_refused_by_name(override: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        study_config({"variants": {"gn": {"train": override}}})


def test_memory_format_auto_is_resolved_per_norm_and_can_be_forced() -> None:
    config = study_config()
    layouts = {
        name: run_settings(Study.from_config(config), name, 1).train.memory_format for name in config["variants"]
    }
    assert layouts == {
        "bn": "channels_last",
        "gn": "channels_last",
        "ln": "channels_last",
        "in": "contiguous",
        "bn_l1": "channels_last",
        "none": "channels_last",
    }
    forced = study_config({"variants": {"in": {"train": {"memory_format": "channels_last"}}}})
    assert run_settings(Study.from_config(forced), "in", 1).train.memory_format == "channels_last"


def test_grid_points_are_every_combination_and_name_their_values() -> None:
    config = study_config({"tune": {"grid": {"train.schedule.max_lr": [0.05, 0.1], "dropout": [0.0, 0.05]}}})
    assert list(tuning_points(Study.from_config(config))) == [
        "max_lr=0.05,dropout=0.0",
        "max_lr=0.05,dropout=0.05",
        "max_lr=0.1,dropout=0.0",
        "max_lr=0.1,dropout=0.05",
    ]
    settings = tuning_settings(Study.from_config(config), "ln", "max_lr=0.1,dropout=0.05", 101)
    assert (settings.train.schedule.max_lr, settings.variant.dropout, settings.seed) == (0.1, 0.05, 101)
    assert settings.data.validation_size == config["data"]["validation"]
    # A grid value beats the variant's own setting of the same key; study runs hold nothing out.
    own = study_config({"variants": {"ln": {"train": {"schedule": {"max_lr": 0.3}}}}})
    assert tuning_settings(Study.from_config(own), "ln", "max_lr=0.05", 101).train.schedule.max_lr == 0.05
    assert run_settings(Study.from_config(own), "ln", 1).data.validation_size == 0


@pytest.mark.parametrize(
    ("tune", "named"),
    [
        (
            {"grid": {"train.schedule.max_lr": [0.05, "fast"]}},
            "tune.grid point max_lr=fast, variant bn: 'train.schedule.max_lr'",
        ),
        ({"grid": {"train.schedule.max_lr": [20.0]}}, "tune.grid point max_lr=20.0, variant bn"),
        # A key path that names no setting is refused as such, before any point is made of it.
        (
            {"grid": {"train.peak_lr": [0.1]}},
            "'tune.grid': train.peak_lr names no setting: train has no key 'peak_lr' (its keys: epochs,",
        ),
        (
            {"grid": {"train.schedule.max_lr": [0.1], "train.max_lr": [0.1]}},
            "'tune.grid': train.max_lr names no setting: train has no key 'max_lr'",
        ),
        ({"grid": {"train.epochs.x": [1]}}, "'tune.grid': train.epochs.x goes through train.epochs, a value"),
        ({"grid": {"train.schedule": [1]}}, "'tune.grid': train.schedule is a section; name one of its keys"),
        ({"grid": {"norm": ["batch"]}}, "'tune.grid': key 'norm' does not match ^(dropout"),
        ({"seeds": [1]}, "'tune.seeds'"),
        ({"seeds": [2, 101]}, "'tune.seeds': 2 also in 'seeds'; a study run would repeat a tuning run's"),
        ({"grid": {"train.epochs": [0.5]}}, "'train.epochs': expected integer"),
    ],
)
def test_a_bad_grid_is_refused_naming_the_point(tune: dict, named: str) -> None:
    with pytest.raises(ConfigError) as error:
        study_config({"tune": tune})
    assert named in str(error.value)


def test_the_validation_split_must_leave_images_to_train_on() -> None:
    with pytest.raises(ConfigError, match=r"'data\.validation': 1000 held-out images leave none of the 1000"):
        study_config({"data": {"validation": 1000}})


def test_a_tuning_run_trains_on_the_first_images_and_is_scored_on_the_last(tmp_path: Path) -> None:
    settings = tiny_settings(train_size=200, validation_size=50)
    data = synthetic_files(tmp_path, settings)
    train_pair = [path for path in data.files if path.name in (TRAIN_IMAGES, TRAIN_LABELS)]
    splits = load_splits(train_pair, data.provenance, settings.data)
    full = load_splits(data.files, data.provenance, replace(settings.data, validation_size=0))
    assert splits.eval_split == "val" and len(splits.train_images) == 150 and len(splits.eval_images) == 50
    assert torch.equal(splits.train_images, full.train_images[:150])
    assert torch.equal(splits.eval_labels, full.train_labels[150:])
    assert set(splits.sha256) == {TRAIN_IMAGES, TRAIN_LABELS}
    # A tuning run given the test files too is refused: it reads the training pair only.
    with pytest.raises(ValueError, match="expected paths to the files"):
        load_splits(data.files, data.provenance, settings.data)


def runs_table(rows: list[tuple[str, str, int, float, float]]) -> pd.DataFrame:
    """A tuning run table from (variant, point, seed, val_acc, val_loss) rows."""
    return pd.DataFrame(rows, columns=["variant", "point", "seed", "val_acc", "val_loss"])


# The recorded search (workflow/resources/tuning/runs.csv): 2 seeds x 6 peak rates x 5 variants.
POINTS = ["max_lr=0.025", "max_lr=0.05", "max_lr=0.1", "max_lr=0.2", "max_lr=0.4", "max_lr=0.8"]


def test_the_pooled_spread_gives_every_cell_its_interval() -> None:
    """Cells (99.0, 99.2), (99.3, 99.3), (99.5, 98.9): within-cell variances 0.02, 0, 0.18 with one df each, pooled
    sd sqrt(0.2 / 3) = 0.2582 on 3 df; each mean's interval is +- t(0.975, 3) x 0.2582 / sqrt(2)."""
    table = runs_table(
        [
            ("bn", "max_lr=0.025", 1, 99.0, 0.03),
            ("bn", "max_lr=0.025", 2, 99.2, 0.03),
            ("bn", "max_lr=0.05", 1, 99.3, 0.04),
            ("bn", "max_lr=0.05", 2, 99.3, 0.04),
            ("bn", "max_lr=0.1", 1, 99.5, 0.02),
            ("bn", "max_lr=0.1", 2, 98.9, 0.02),
        ]
    )
    assert pooled_spread(table) == (pytest.approx((0.2 / 3) ** 0.5), 3)
    summary = summarize(table, POINTS[:3]).set_index("point")
    half = stats.t.ppf(0.975, 3) * (0.2 / 3) ** 0.5 / 2**0.5
    row = summary.loc["max_lr=0.1"]
    assert row["val_acc_mean"] == pytest.approx(99.2) and row["val_acc_std"] == pytest.approx(0.6 / 2**0.5)
    assert (row["val_acc_ci95_low"], row["val_acc_ci95_high"]) == pytest.approx((99.2 - half, 99.2 + half))
    assert (row["n_seeds"], row["val_loss_mean"]) == (2, pytest.approx(0.02))


def test_points_within_noise_of_the_best_are_alike_and_their_middle_is_chosen() -> None:
    """On the recorded search the pooled sd is 0.1187 (30 df), one standard error of a difference of two 2-seed means
    the same: bn's six points (99.345 to 99.400) are all alike and 0.1 is their lower middle; in's best, 0.8 (99.010),
    is the grid's top, but 0.4 (98.900) is within noise of it, 0.1 (98.870) not: 0.4 is chosen, not the edge."""
    table = pd.read_csv(REPO / "workflow" / "resources" / "tuning" / "runs.csv")
    assert pooled_spread(table) == (pytest.approx(0.1187, abs=1e-4), 30)
    summary = summarize(table, POINTS)
    chosen = dict(zip(summary.loc[summary["chosen"], "variant"], summary.loc[summary["chosen"], "point"], strict=True))
    assert chosen == {
        "bn": "max_lr=0.1",
        "bn_l1": "max_lr=0.05",  # alike with 0.2 (not with 0.1 between them): the lower middle of two
        "gn": "max_lr=0.05",
        "in": "max_lr=0.4",
        "ln": "max_lr=0.05",
    }
    alike = summary[summary["within_noise"]].groupby("variant")["point"].apply(list).to_dict()
    assert alike["bn"] == POINTS and alike["in"] == ["max_lr=0.4", "max_lr=0.8"]
    assert alike["gn"] == POINTS[:3] and alike["bn_l1"] == ["max_lr=0.05", "max_lr=0.2"]


def test_a_rate_that_diverges_for_any_seed_is_no_candidate_and_a_variant_none_trains_is_named() -> None:
    table = pd.read_csv(REPO / "workflow" / "resources" / "tuning" / "runs.csv")
    table = table[table["variant"].isin(["bn", "in"])].assign(diverged=False)
    # in diverges at 0.8 for one seed; none of a third variant's points trains for every seed.
    table.loc[(table["variant"] == "in") & (table["point"] == "max_lr=0.8") & (table["seed"] == 101), "diverged"] = True
    table.loc[table["diverged"], ["val_acc", "val_loss"]] = float("nan")
    none = pd.DataFrame(
        [("none", point, seed, float("nan"), float("nan"), float("nan"), float("nan"), True) for point in POINTS
         for seed in (101, 102)], columns=table.columns,
    )  # fmt: skip
    none.loc[none["seed"] == 102, ["val_acc", "val_loss", "diverged"]] = (98.0, 0.1, False)
    summary = summarize(pd.concat([table, none]), POINTS).set_index(["variant", "point"])
    assert summary.loc[("in", "max_lr=0.8"), "n_diverged"] == 1 and summary.loc[("in", "max_lr=0.8"), "n_seeds"] == 1
    assert not summary.loc[("in", "max_lr=0.8"), "chosen"] and not summary.loc[("in", "max_lr=0.8"), "within_noise"]
    # Its one trained seed's 99.08 is the highest mean, but no candidate: of the rest, 0.1, 0.2 and 0.4 are alike.
    assert summary.loc[("in", "max_lr=0.8"), "val_acc_mean"] == pytest.approx(99.08)
    assert summary.loc[("in", "max_lr=0.2"), "chosen"]
    # The spread is pooled over the runs that trained: bn's and in's as recorded, less the diverged one.
    assert pooled_spread(pd.concat([table, none]))[1] == 11  # 11 cells of 2 trained seeds; in at 0.8 and none's have 1
    assert untrained(summary.reset_index()) == ["none"]
    assert summary.loc[("none", "max_lr=0.1"), "n_diverged"] == 1
    # A choice just below a rate that diverged is bracketed by it: no edge, though no higher rate trained.
    study = Study.from_config(study_config({"tune": {"grid": {"train.schedule.max_lr": [0.2, 0.4, 0.8]}}}))
    runs = pd.DataFrame(
        [("x", f"max_lr={lr}", seed, acc + seed / 1000, 0.1, acc, 1.0, lr == 0.8)
         for lr, acc in ((0.2, 97.0), (0.4, 99.0), (0.8, 99.5)) for seed in (101, 102)], columns=table.columns,
    )  # fmt: skip
    bracketed = summarize(runs, list(tuning_points(study)))
    assert list(bracketed.loc[bracketed["chosen"], "point"]) == ["max_lr=0.4"] and grid_edges(study, bracketed) == []


def test_a_choice_at_the_edge_of_the_grid_fails_the_search() -> None:
    config = study_config({"tune": {"grid": {"train.schedule.max_lr": [0.025, 0.05, 0.1, 0.2], "dropout": [0.0, 0.1]}}})
    summary = pd.DataFrame(
        {
            "variant": ["in", "gn", "bn"],
            "point": ["max_lr=0.2,dropout=0.0", "max_lr=0.05,dropout=0.0", "max_lr=0.025,dropout=0.1"],
            "chosen": [True, True, True],
        }
    )
    assert grid_edges(Study.from_config(config), summary) == [
        "in: chosen train.schedule.max_lr 0.2 is the top of the grid [0.025, 0.05, 0.1, 0.2]; extend it above",
        # dropout 0.0 is a bottom edge no grid can extend: not one.
        "bn: chosen train.schedule.max_lr 0.025 is the bottom of the grid [0.025, 0.05, 0.1, 0.2]; extend it below",
        "bn: chosen dropout 0.1 is the top of the grid [0.0, 0.1]; extend it above",
    ]


def test_chosen_values_written_into_the_config_are_recognised() -> None:
    config = study_config({"tune": {"grid": {"train.schedule.max_lr": [0.05, 0.1], "dropout": [0.0, 0.05]}}})
    # config.yaml runs gn at max_lr 0.05 without dropout: the point chosen below for gn.
    assert (config["variants"]["gn"]["train"]["schedule"]["max_lr"], config["variants"]["gn"]["dropout"]) == (0.05, 0.0)
    summary = pd.DataFrame(
        {
            "variant": ["bn", "bn", "gn", "gn"],
            "point": [
                "max_lr=0.05,dropout=0.0",
                "max_lr=0.1,dropout=0.05",
                "max_lr=0.05,dropout=0.0",
                "max_lr=0.1,dropout=0.0",
            ],
            "chosen": [False, True, True, False],
        }
    )
    assert chosen_overrides(Study.from_config(config), summary) == {
        "bn": {"train": {"schedule": {"max_lr": 0.1}}, "dropout": 0.05},
        "gn": {"train": {"schedule": {"max_lr": 0.05}}, "dropout": 0.0},
    }
    assert configured_matches_chosen(Study.from_config(config), summary) == {"bn": False, "gn": True}
    pasted = validate_config(
        merge(config, yaml.safe_load(chosen_yaml(Study.from_config(config), summary, "summary.csv")))
    )
    assert configured_matches_chosen(Study.from_config(pasted), summary) == {"bn": True, "gn": True}


def test_the_search_digest_follows_the_tuning_runs_and_nothing_else() -> None:
    config = study_config()
    names = list(config["variants"])
    digest = search_digest(Study.from_config(config), names)
    # Study seeds, and a variant's own value of a key the grid sets, leave the search as it was.
    assert search_digest(Study.from_config(study_config({"seeds": [7, 8, 9]})), names) == digest
    own = {"variants": {"gn": {"train": {"schedule": {"max_lr": 0.1}}}}}
    assert search_digest(Study.from_config(study_config(own)), names) == digest
    # The grid, the tuning seeds, the recipe, the validation split and the variants do not.
    for changed in (
        {"tune": {"grid": {"train.schedule.max_lr": [0.05]}}},
        {"tune": {"seeds": [101, 103]}},
        {"train": {"optimizer": {"momentum": 0.8}}},
        {"data": {"validation": 100}},
    ):
        assert search_digest(Study.from_config(study_config(changed)), names) != digest, changed
    assert search_digest(Study.from_config(config), names[:-1]) != digest


# Two variants; a second grid key with one value, so point names hold two keys in the grid's order (a grid
# replaces the smoke grid whole, so it names max_lr again).
SMALL_TUNE = """\
variants:
  ln: {enabled: false}
  in: {enabled: false}
  bn_l1: {enabled: false}
  none: {enabled: false}
analysis:
  control: null
tune:
  grid: {train.schedule.max_lr: [0.05, 0.1], dropout: [0.0]}
"""


SMALL_TUNE_ARGS = ("--configfile", "tests/smoke.yaml", "small.yaml")


@background_study
def tuned_without_test_files(runs: BackgroundRuns, folder: Path) -> Path:
    """The smoke tuning search on bn and gn, run after the synthetic test files were deleted."""
    study = copy_workflow(folder / "study")
    (study / "small.yaml").write_text(SMALL_TUNE)
    background_snakemake(runs, study, "--cores", "2", "results/data/synthetic/raw/provenance.json", *SMALL_TUNE_ARGS)
    for name in (TEST_IMAGES, TEST_LABELS):
        (study / "results" / "data" / "synthetic" / "raw" / name).unlink()
    background_snakemake(runs, study, "--cores", "2", "tune", *SMALL_TUNE_ARGS)
    return study


@pytest.mark.workflow
def test_tune_runs_with_the_test_files_absent_and_never_recreates_them(tuned_without_test_files: Path) -> None:
    study, configs = tuned_without_test_files, SMALL_TUNE_ARGS
    raw = study / "results" / "data" / "synthetic" / "raw"
    assert sorted(path.name for path in raw.iterdir()) == sorted([TRAIN_IMAGES, TRAIN_LABELS, "provenance.json"])
    tuning = study / "results" / "smoke" / "tuning"
    summary = pd.read_csv(tuning / "summary.csv")
    assert sorted(zip(summary["variant"], summary["point"], strict=True)) == [
        ("bn", "max_lr=0.05,dropout=0.0"),
        ("bn", "max_lr=0.1,dropout=0.0"),
        ("gn", "max_lr=0.05,dropout=0.0"),
        ("gn", "max_lr=0.1,dropout=0.0"),
    ]
    assert summary.groupby("variant")["chosen"].sum().to_dict() == {"bn": 1, "gn": 1}
    assert set(yaml.safe_load((tuning / "chosen.yaml").read_text())["variants"]) == {"bn", "gn"}
    for job_file in (tuning / "runs").glob("*/*/seed*/job.json"):
        assert set(json.loads(job_file.read_text())["data_sha256"]) == {TRAIN_IMAGES, TRAIN_LABELS}
    history = pd.read_csv(tuning / "runs" / "bn" / "max_lr=0.1,dropout=0.0" / "seed101" / "history.csv")
    assert list(history.columns[4:6]) == ["val_loss", "val_acc"]
    assert (tuning / "validation_accuracy.svg").stat().st_size > 0
    record = json.loads((tuning / "search.json").read_text())
    assert (record["runs"], record["validation_images"]) == (8, 200)
    # The study's seeds are no part of the search; a change of grid reruns the tuning stage only.
    (study / "seeds.yaml").write_text("amend_study: true\nseeds: [5]\n")  # the study changed on purpose
    assert "Nothing to be done" in snakemake(study, "-n", "tune", *configs, "seeds.yaml").stdout
    (study / "grid.yaml").write_text(
        "amend_study: true\ntune: {grid: {train.schedule.max_lr: [0.05, 0.2], dropout: [0.0]}}\n"
    )
    planned = snakemake(study, "-n", "tune", *configs, "grid.yaml").stdout
    assert "make_synthetic" not in planned and "\ntrain " not in planned
    assert "tuning_train 4" in " ".join(planned.split())


def test_a_tuning_run_is_never_scored_on_the_test_set(tmp_path: Path) -> None:
    import evaluate

    settings = tiny_settings(validation_size=40)
    (tmp_path / "settings.json").write_text(json.dumps(settings.file_dict()))
    data = synthetic_files(tmp_path, settings)
    with pytest.raises(ValueError, match="a tuning run's settings; only study runs are scored on the test set"):
        evaluate.main(
            tmp_path / "settings.json",
            tmp_path / "model.pt",
            data.files,
            data.provenance,
            tmp_path / "predictions.csv",
            tmp_path / "metrics.json",
        )
    assert not (tmp_path / "predictions.csv").exists()
