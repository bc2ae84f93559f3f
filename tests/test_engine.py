"""Training engine: the L1 term, determinism, and resuming after an interruption."""

from __future__ import annotations

import copy
from pathlib import Path

import make_synthetic
import pytest
import torch

from normstudy.data import load_splits
from normstudy.engine import (
    fit,
    l1_penalty,
    new_run,
    seed_everything,
    settings_hash,
    steps_per_epoch,
    train_epoch,
)
from normstudy.model import NormNet, conv_weights

CPU = torch.device("cpu")


def tiny_settings(norm: str = "batch", l1: float = 0.0, epochs: int = 3) -> dict:
    return {
        "variant": {"norm": norm, "groups": 2, "dropout": 0.05, "l1": l1},
        "train": {
            "epochs": epochs,
            "batch_size": 32,
            "optimizer": {"momentum": 0.9, "weight_decay": 0.0, "nesterov": False},
            "schedule": {
                "max_lr": 0.05,
                "pct_start": 0.2,
                "div_factor": 10.0,
                "final_div_factor": 100.0,
                "anneal_strategy": "cos",
            },
            "augment": {"rotation_degrees": 7.0},
            "device": "cpu",
            "channels_last": True,
            "threads": 1,
        },
        "data": {"mean": 0.1307, "std": 0.3081},
    }


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory):
    raw = tmp_path_factory.mktemp("synthetic")
    make_synthetic.main(raw, train_size=160, test_size=40, seed=3)
    return load_splits(raw)


def state(run) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.model.state_dict().items()}


def test_l1_term_is_lambda_times_sum_of_abs_conv_weights() -> None:
    model = NormNet("batch")
    expected = sum(w.detach().abs().sum().item() for w in conv_weights(model))
    assert len(conv_weights(model)) == 9
    assert l1_penalty(model).item() == pytest.approx(expected, rel=1e-6)
    # Norm weights are not penalized: changing them leaves the term as it was.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.fill_(5.0)
    assert l1_penalty(model).item() == pytest.approx(expected, rel=1e-6)


def test_l1_changes_the_gradient_by_lambda_times_sign(splits) -> None:
    settings = tiny_settings(l1=0.0, epochs=2)
    grads = {}
    for l1 in (0.0, 0.5):
        settings["variant"]["l1"] = l1
        generator = seed_everything(0, CPU)
        run = new_run(settings, len(splits.train_images), CPU, generator)
        run.model.eval()  # no dropout, fixed BN statistics: the data term is identical in both runs
        x = splits.train_images[:8].float() / 255
        loss = torch.nn.functional.nll_loss(run.model(x), splits.train_labels[:8])
        (loss + l1 * l1_penalty(run.model)).backward()
        grads[l1] = [w.grad.clone() for w in conv_weights(run.model)]
        signs = [w.detach().sign() for w in conv_weights(run.model)]
    for without, with_l1, sign in zip(grads[0.0], grads[0.5], signs, strict=True):
        torch.testing.assert_close(with_l1 - without, 0.5 * sign, atol=1e-6, rtol=0)


def test_steps_per_epoch_leaves_out_a_lone_last_image() -> None:
    assert steps_per_epoch(60000, 128) == 469
    assert steps_per_epoch(129, 128) == 1
    assert steps_per_epoch(130, 128) == 2


@pytest.mark.parametrize("norm", ["batch", "group", "layer", "instance"])
def test_training_reduces_the_loss(splits, norm: str) -> None:
    settings = tiny_settings(norm, epochs=4)
    generator = seed_everything(1, CPU)
    run = new_run(settings, len(splits.train_images), CPU, generator)
    losses = [train_epoch(run, splits, settings)[0] for _ in range(4)]
    assert losses[-1] < losses[0]


def test_same_seed_gives_bitwise_identical_runs(splits, tmp_path: Path) -> None:
    settings = tiny_settings(l1=1e-4)
    first = fit(settings, splits, 7, CPU, 1, tmp_path / "a.pt", log=lambda _: None)
    second = fit(settings, splits, 7, CPU, 1, tmp_path / "b.pt", log=lambda _: None)
    for key, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[key]), key
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in first.history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in second.history]
    other = fit(settings, splits, 8, CPU, 1, tmp_path / "c.pt", log=lambda _: None)
    assert not torch.equal(first.model.layers[0].weight, other.model.layers[0].weight)


def test_resume_after_interruption_equals_an_uninterrupted_run(splits, tmp_path: Path) -> None:
    settings = tiny_settings(epochs=4)
    whole = fit(settings, splits, 3, CPU, 1, tmp_path / "whole.pt", log=lambda _: None)
    checkpoint = tmp_path / "cut.pt"
    with pytest.raises(InterruptedError):
        fit(settings, splits, 3, CPU, 1, checkpoint, log=lambda _: None, stop_after_epoch=2)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
    said = []
    # Some other work in between moves the global RNGs; the checkpoint restores them.
    torch.rand(1000)
    resumed = fit(settings, splits, 3, CPU, 1, checkpoint, log=said.append)
    assert said[0] == f"resumed from {checkpoint} after epoch 2"
    assert [line.split()[1] for line in said[1:]] == ["3/4", "4/4"]  # only the remaining epochs ran
    for key, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[key]), key
    assert [r["test_loss"] for r in resumed.history] == [r["test_loss"] for r in whole.history]
    assert [r["lr"] for r in resumed.history] == [r["lr"] for r in whole.history]


def test_checkpoint_from_other_settings_is_not_resumed(splits, tmp_path: Path) -> None:
    settings = tiny_settings(epochs=3)
    checkpoint = tmp_path / "cut.pt"
    with pytest.raises(InterruptedError):
        fit(settings, splits, 3, CPU, 1, checkpoint, log=lambda _: None, stop_after_epoch=1)
    changed = copy.deepcopy(settings)
    changed["train"]["schedule"]["max_lr"] = 0.02
    said = []
    run = fit(changed, splits, 3, CPU, 1, checkpoint, log=said.append)
    assert said[0] == f"checkpoint {checkpoint} is from other settings or code; starting afresh"
    assert [r["epoch"] for r in run.history] == [1, 2, 3]
    fresh = fit(changed, splits, 3, CPU, 1, tmp_path / "fresh.pt", log=lambda _: None)
    assert torch.equal(run.model.layers[0].weight, fresh.model.layers[0].weight)


def test_settings_hash_covers_settings_threads_and_device() -> None:
    settings = tiny_settings()
    base = settings_hash(settings, CPU, 1)
    assert settings_hash(copy.deepcopy(settings), CPU, 1) == base
    assert settings_hash(settings, CPU, 2) != base
    changed = copy.deepcopy(settings)
    changed["variant"]["dropout"] = 0.1
    assert settings_hash(changed, CPU, 1) != base


def test_corrupt_checkpoint_starts_afresh(splits, tmp_path: Path) -> None:
    checkpoint = tmp_path / "broken.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    said = []
    run = fit(tiny_settings(epochs=2), splits, 3, CPU, 1, checkpoint, log=said.append)
    assert said and "unreadable" in said[0]
    assert len(run.history) == 2


def test_too_few_steps_for_the_warm_up_is_refused() -> None:
    with pytest.raises(ValueError, match="under one step"):
        new_run(tiny_settings(epochs=1), 32, CPU, seed_everything(0, CPU))
