"""Statistics set in one pass (PreciseBN and test-time adaptation) and the evaluation of a trained run on corrupted
sets, on a tiny synthetic study through the step's own entry point."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import corrupt_test_set
import evaluate
import evaluate_corrupted
import numpy as np
import pandas as pd
import precise_statistics
import pytest
import torch
import torch.nn.functional as F
import train
import write_settings
from helpers import synthetic_files, tiny_settings

from normstudy.data.stroke_digits import generate
from normstudy.data.tensors import eval_batch
from normstudy.engine import prepare_model
from normstudy.model.adaptation import per_batch_statistics
from normstudy.model.norms import batch_statistics_layers
from normstudy.model.precise_bn import set_population_statistics
from normstudy.runs import RunMismatchError


def layer_by_layer_statistics(model: torch.nn.Module, images: torch.Tensor, batch_size: int) -> None:
    """The definition, computed the slow way: for each BatchNorm layer in turn, the whole network run on every batch
    (the layers before it already evaluating with their new statistics), its inputs' mean and biased variance
    summed in float64."""
    model.eval()
    for layer in batch_statistics_layers(model):
        seen: list[torch.Tensor] = []
        hook = layer.register_forward_pre_hook(lambda _m, args, seen=seen: seen.append(args[0].double()))
        with torch.inference_mode():
            for i in range(0, len(images), batch_size):
                model(eval_batch(images[i : i + batch_size], 0.13, 0.31))
        hook.remove()
        total = sum(values.sum(dim=(0, 2, 3)) for values in seen)
        squares = sum(values.square().sum(dim=(0, 2, 3)) for values in seen)
        count = sum(values.numel() // values.shape[1] for values in seen)
        layer.running_mean.copy_(total / count)
        layer.running_var.copy_(squares / count - (total / count).square())


def test_one_pass_statistics_equal_the_layer_by_layer_ones_bit_for_bit_and_give_the_model_outputs() -> None:
    torch.manual_seed(0)
    settings = tiny_settings()
    model = prepare_model(settings, torch.device("cpu"))
    images = torch.from_numpy(generate(120, 1)[0]).unsqueeze(1)
    reference = copy.deepcopy(model)
    outputs = set_population_statistics(model, images, 0.13, 0.31, batch_size=50)
    layer_by_layer_statistics(reference, images, 50)
    assert len(batch_statistics_layers(model)) == 8
    for ours, theirs in zip(batch_statistics_layers(model), batch_statistics_layers(reference), strict=True):
        assert torch.equal(ours.running_mean, theirs.running_mean) and torch.equal(ours.running_var, theirs.running_var)
    # The outputs it returns are the adapted model's own: one forward pass in eval mode, batch for batch.
    with torch.inference_mode():
        forward = torch.cat([model(eval_batch(images[i : i + 50], 0.13, 0.31)) for i in range(0, 120, 50)])
    assert torch.equal(F.log_softmax(outputs.flatten(1), dim=1), forward)
    group = prepare_model(tiny_settings(norm="group"), torch.device("cpu"))
    before = copy.deepcopy(group.state_dict())
    set_population_statistics(group, images, 0.13, 0.31)
    assert all(torch.equal(before[k], v) for k, v in group.state_dict().items())


def test_adapting_a_batch_at_a_time_normalizes_each_batch_by_its_own_statistics_and_leaves_the_model() -> None:
    torch.manual_seed(0)
    model = prepare_model(tiny_settings(), torch.device("cpu"))
    images = torch.from_numpy(generate(120, 1)[0]).unsqueeze(1)
    before, mode = copy.deepcopy(model.state_dict()), model.training
    outputs = per_batch_statistics(model, images, 0.13, 0.31, 50)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and model.training == mode
    # Batch by batch (50, 50 and the last 20): each the model with its statistics set to that batch alone.
    for start in (0, 50, 100):
        batch = images[start : start + 50]
        alone = copy.deepcopy(model)
        logits = set_population_statistics(alone, batch, 0.13, 0.31)
        expected = F.log_softmax(logits.flatten(1), dim=1)
        assert torch.allclose(outputs[start : start + len(batch)], expected, atol=1e-5)
    # The whole set as one batch is the whole-set adaptation, up to float32 statistics against float64 ones.
    whole = set_population_statistics(copy.deepcopy(model), images, 0.13, 0.31)
    assert torch.allclose(per_batch_statistics(model, images, 0.13, 0.31, 120), F.log_softmax(whole.flatten(1), 1),
                          atol=1e-5)  # fmt: skip
    # Outputs are repeatable bit for bit.
    assert torch.equal(outputs, per_batch_statistics(model, images, 0.13, 0.31, 50))


def trained_run(folder: Path, settings, data) -> Path:
    """A run trained and evaluated by its steps' own entry points; its folder."""
    write_settings.main(settings.to_dict(), folder / "settings.json")
    train.main([folder / "settings.json"], data.files, data.provenance, [folder / "model.pt"],
               [folder / "history.csv"], [folder / "job.json"], folder / "checkpoint.pt")  # fmt: skip
    evaluate.main(folder / "settings.json", folder / "model.pt", data.files, data.provenance,
                  folder / "predictions.csv", folder / "metrics.json")  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A batch-norm run and a group-norm run trained by train.py's main, scored by evaluate_corrupted.py's main on
    the clean images and on two sets: contrast at severity 0 (the clean images again) and fog at 3."""
    root = tmp_path_factory.mktemp("adaptation")
    settings = tiny_settings(epochs=2, seed=5, train_size=320, test_size=80, data_seed=4)
    data = synthetic_files(root / "raw", settings)
    bn = trained_run(root / "bn", settings, data)
    gn = trained_run(root / "gn", tiny_settings(norm="group", epochs=2, seed=6, train_size=320, test_size=80,
                                                data_seed=4), data)  # fmt: skip
    precise_statistics.main(bn / "settings.json", bn / "model.pt", data.files, data.provenance, 320, 1,
                            bn / "precise_bn.json")  # fmt: skip
    runs = [
        (bn / "settings.json", bn / "model.pt", bn / "precise_bn.json"),
        (gn / "settings.json", gn / "model.pt", None),
    ]
    models = {run: (run / "model.pt").read_bytes() for run in (bn, gn)}
    tables = {"clean": evaluate_corrupted.main(runs, data.files, data.provenance, None, 1, root / "clean.csv",
                                               root / "clean.npy", [16, 80])}  # fmt: skip
    for kind, severity in (("contrast", 0), ("fog", 3)):
        images, record = root / kind / "images", root / kind / "set.json"
        corrupt_test_set.main(data.files[2:], data.provenance, "synthetic", kind, severity, 0, images, record)
        tables[kind] = evaluate_corrupted.main(runs, data.files, data.provenance, (images, record), 1,
                                               root / f"{kind}.csv", root / f"{kind}.npy", [16, 80])  # fmt: skip
    return {"tables": tables, "models": models, "root": root, "runs": runs, "data": data, "bn": bn, "gn": gn}


def test_every_run_is_scored_in_each_mode_and_clean_matches_the_evaluation(scored) -> None:
    for kind, table in scored["tables"].items():
        assert list(zip(table["seed"], table["mode"], table["corruption"], strict=True)) == [
            (5, "running", kind), (5, "precise", kind), (5, "adapted", kind), (5, "adapted_16", kind),
            (5, "adapted_80", kind), (6, "running", kind)
        ]  # fmt: skip
    clean = scored["tables"]["clean"].set_index(["seed", "mode"])
    for run, seed in ((scored["bn"], 5), (scored["gn"], 6)):
        metrics = json.loads((run / "metrics.json").read_text())
        assert clean.loc[(seed, "running"), "accuracy"] == metrics["test_acc"]
        assert clean.loc[(seed, "running"), "loss"] == metrics["test_loss"]
    table = pd.concat(scored["tables"].values())
    assert (table["correct"] == np.round(table["accuracy"] * table["images"] / 100)).all()


def test_severity_zero_reproduces_clean_accuracy_in_every_mode(scored) -> None:
    clean, contrast = (scored["tables"][kind].set_index(["seed", "mode"]) for kind in ("clean", "contrast"))
    assert contrast[["accuracy", "loss", "correct"]].equals(clean[["accuracy", "loss", "correct"]])


def test_scoring_leaves_the_model_files_untouched_and_predictions_follow_the_rows(scored) -> None:
    for run, before in scored["models"].items():
        assert (run / "model.pt").read_bytes() == before
    predictions = np.load(scored["root"] / "fog.npy")
    assert predictions.shape == (6, 80) and predictions.dtype == np.int8
    # A set's adapted scoring differs from its running one (its statistics are the set's own), and a batch's
    # statistics from the whole set's; a batch of every image is the whole set again, to float32 rounding.
    fog = scored["tables"]["fog"].set_index(["seed", "mode"])
    assert fog.loc[(5, "adapted"), "loss"] != fog.loc[(5, "running"), "loss"]
    assert fog.loc[(5, "adapted_16"), "loss"] != fog.loc[(5, "adapted"), "loss"]
    assert fog.loc[(5, "adapted_80"), "loss"] == pytest.approx(fog.loc[(5, "adapted"), "loss"], abs=1e-4)


def test_precise_statistics_of_another_run_are_refused(scored, tmp_path: Path) -> None:
    bn, gn = scored["bn"], scored["gn"]
    facts = json.loads((bn / "precise_bn.json").read_text())
    (tmp_path / "precise_bn.json").write_text(json.dumps({**facts, "seed": 9}))
    runs = [(bn / "settings.json", bn / "model.pt", tmp_path / "precise_bn.json")]
    with pytest.raises(RunMismatchError, match="not tiny seed 5"):
        evaluate_corrupted.main(runs, scored["data"].files, scored["data"].provenance, None, 1, tmp_path / "t.csv",
                                tmp_path / "t.npy", [])  # fmt: skip
    with pytest.raises(ValueError, match="has no BatchNorm"):
        precise_statistics.main(gn / "settings.json", gn / "model.pt", scored["data"].files,
                                scored["data"].provenance, 10, 1, tmp_path / "p.json")  # fmt: skip
    assert not (tmp_path / "t.csv").exists() and not (tmp_path / "p.json").exists()
