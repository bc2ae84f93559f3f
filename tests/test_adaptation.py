"""Statistics set in one pass (PreciseBN and test-time adaptation) and the evaluation of a trained run on corrupted
sets, on a tiny synthetic study through the step's own entry point."""

from __future__ import annotations

import copy
from pathlib import Path

import corrupt_test_set
import evaluate
import evaluate_corrupted
import numpy as np
import pandas as pd
import pytest
import torch
import train
import write_settings
from helpers import synthetic_files, tiny_settings

from normstudy.adaptation import set_population_statistics
from normstudy.engine import prepare_model
from normstudy.precise_bn import batch_norms, recompute_statistics
from normstudy.synthetic import generate


def test_one_pass_statistics_equal_the_layer_by_layer_ones_bit_for_bit() -> None:
    torch.manual_seed(0)
    settings = tiny_settings()
    model = prepare_model(settings, torch.device("cpu"))
    images = torch.from_numpy(generate(120, 1)[0]).unsqueeze(1)
    reference = copy.deepcopy(model)
    assert set_population_statistics(model, images, 0.13, 0.31, batch_size=50) == len(batch_norms(model)) > 0
    recompute_statistics(reference, images, 0.13, 0.31, batch_size=50)
    for ours, theirs in zip(batch_norms(model), batch_norms(reference), strict=True):
        assert torch.equal(ours.running_mean, theirs.running_mean) and torch.equal(ours.running_var, theirs.running_var)
    group = prepare_model(tiny_settings(norm="group"), torch.device("cpu"))
    before = copy.deepcopy(group.state_dict())
    assert set_population_statistics(group, images, 0.13, 0.31) == 0
    assert all(torch.equal(before[k], v) for k, v in group.state_dict().items())


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict, bytes, bytes, Path]:
    """A batch-norm run trained by train.py's main, scored on the clean images and on two sets: contrast at severity 0
    (the clean images again) and fog at 3."""
    root = tmp_path_factory.mktemp("adaptation")
    settings = tiny_settings(epochs=2, seed=5, train_size=320, test_size=80, data_seed=4)
    data = synthetic_files(root / "raw", settings)
    run = root / "run"
    write_settings.main(settings.to_dict(), run / "settings.json")
    train.main([run / "settings.json"], data.files, data.provenance, [run / "model.pt"], [run / "history.csv"],
               [run / "job.json"], run / "checkpoint.pt")  # fmt: skip
    metrics = evaluate.main(run / "settings.json", run / "model.pt", data.files, data.provenance,
                            run / "predictions.csv", run / "metrics.json")  # fmt: skip
    sets = []
    for kind, severity in (("contrast", 0), ("fog", 3)):
        images, record = root / kind / "images", root / kind / "set.json"
        corrupt_test_set.main(data.files[2:], data.provenance, "synthetic", kind, severity, 0, images, record)
        sets.append((images, record))
    model_bytes = (run / "model.pt").read_bytes()
    table = evaluate_corrupted.main(run / "settings.json", run / "model.pt", data.files, data.provenance, sets, 320, 1,
                                    root / "scores.csv", root / "predictions.npy")  # fmt: skip
    return table, metrics, model_bytes, (run / "model.pt").read_bytes(), root


def test_every_set_is_scored_in_each_mode_and_clean_matches_the_evaluation(scored) -> None:
    table, metrics, *_ = scored
    assert list(zip(table["corruption"], table["mode"], strict=True)) == [
        (kind, mode) for kind in ("clean", "contrast", "fog") for mode in ("running", "precise", "adapted")
    ]
    clean = table[(table["corruption"] == "clean") & (table["mode"] == "running")].iloc[0]
    assert clean["accuracy"] == metrics["test_acc"] and clean["loss"] == pytest.approx(metrics["test_loss"], rel=1e-6)
    assert (table["correct"] == np.round(table["accuracy"] * table["images"] / 100)).all()


def test_severity_zero_reproduces_clean_accuracy_in_every_mode(scored) -> None:
    table = scored[0].set_index(["corruption", "mode"])
    for mode in ("running", "precise", "adapted"):
        assert table.loc[("contrast", mode), "accuracy"] == table.loc[("clean", mode), "accuracy"]
        assert table.loc[("contrast", mode), "loss"] == table.loc[("clean", mode), "loss"]


def test_adaptation_leaves_the_model_file_untouched_and_predictions_follow_the_rows(scored) -> None:
    table, _, before, after, root = scored
    assert before == after
    predictions = np.load(root / "predictions.npy")
    assert predictions.shape == (len(table), 80) and predictions.dtype == np.int8
    # A set's adapted scoring differs from its running one (its statistics are the set's own).
    fog = table[table["corruption"] == "fog"].set_index("mode")
    assert fog.loc["adapted", "loss"] != fog.loc["running", "loss"]
