"""Training engine: the L1 term, determinism, and resuming after an interruption."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO
from helpers import synthetic_files, tiny_settings
from test_workflow import package_imports

from normstudy import engine, optim
from normstudy.data.tensors import load_splits
from normstudy.engine import (
    TrainingDivergedError,
    checkpoint_key,
    fit,
    l1_penalty,
    new_run,
    save_torch,
    train_epoch,
)
from normstudy.layout import module_files
from normstudy.model.network import NormNet, build_model, conv_weights
from normstudy.settings import RUN_CODE_MODULES, run_code_modules, steps_per_epoch

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory):
    data = synthetic_files(tmp_path_factory.mktemp("synthetic"), tiny_settings())
    return load_splits(data.files, data.provenance, tiny_settings().data)


def seeded(settings, seed: int):
    return dataclasses.replace(settings, seed=seed)


def with_variant(settings, **changes):
    return dataclasses.replace(settings, variant=dataclasses.replace(settings.variant, **changes))


def state(run) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.model.state_dict().items()}


def test_l1_term_is_lambda_times_sum_of_abs_conv_weights() -> None:
    model = NormNet("batch", 0.05)
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
    grads = {}
    for l1 in (0.0, 0.5):
        settings = tiny_settings(l1=l1, epochs=2)
        run = new_run((settings,), len(splits.train_images), CPU)
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
    run = new_run((seeded(settings, 1),), len(splits.train_images), CPU)
    losses = [train_epoch(run, splits, settings)[0][0] for _ in range(4)]
    assert losses[-1] < losses[0]


def test_same_seed_gives_bitwise_identical_runs(splits, tmp_path: Path) -> None:
    settings = tiny_settings(l1=1e-4, seed=7)
    first = fit(settings, splits, CPU, 1, tmp_path / "a.pt", log=lambda _: None)
    second = fit(settings, splits, CPU, 1, tmp_path / "b.pt", log=lambda _: None)
    for key, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[key]), key
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in first.history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in second.history]
    other = fit(seeded(settings, 8), splits, CPU, 1, tmp_path / "c.pt", log=lambda _: None)
    assert not torch.equal(first.model.layers[0].weight, other.model.layers[0].weight)


@pytest.mark.parametrize("recipe", [{}, {"weight_decay": 1e-3}, {"nesterov": True, "weight_decay": 1e-3}])
def test_our_sgd_and_schedule_step_as_torchs_bit_for_bit(recipe: dict) -> None:
    models, optimizers, schedulers = [], [], []
    for sgd in (optim.SGD, torch.optim.SGD):
        torch.manual_seed(0)
        model = build_model(tiny_settings().variant)
        optimizer = sgd(model.parameters(), lr=0.01, momentum=0.9, **recipe)
        schedule = optim.OneCycleLR(optimizer, max_lr=0.1, total_steps=10, cycle_momentum=False)
        models.append(model), optimizers.append(optimizer), schedulers.append(schedule)
    inputs = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    targets = torch.arange(8)
    for step in range(4):
        for model, optimizer, schedule in zip(models, optimizers, schedulers, strict=True):
            torch.manual_seed(step)  # the same dropout masks for both
            optimizer.zero_grad()
            torch.nn.functional.nll_loss(model(inputs), targets).backward()
            optimizer.step()
            schedule.step()
    ours, theirs = (model.state_dict() for model in models)
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)
    assert str(optimizers[0].state_dict()) == str(optimizers[1].state_dict())
    assert schedulers[0].state_dict() == schedulers[1].state_dict()


def test_training_never_imports_the_compiler() -> None:
    # A fresh interpreter: this one may have imported torch._dynamo for other reasons.
    probe = (
        "import sys, torch; from normstudy import optim; from torch import nn;"
        " model = nn.Linear(3, 2); sgd = optim.SGD(model.parameters(), lr=0.1, momentum=0.9);"
        " schedule = optim.OneCycleLR(sgd, max_lr=0.1, total_steps=4); sgd.zero_grad();"
        " model(torch.ones(1, 3)).sum().backward(); sgd.step(); schedule.step();"
        " sgd.load_state_dict(sgd.state_dict()); schedule.load_state_dict(schedule.state_dict());"
        " print('torch._dynamo' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO / "workflow" / "scripts", capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False"]


def test_seeding_turns_on_deterministic_kernels_without_loading_the_compiler() -> None:
    # A fresh interpreter: the flags are process-wide, and other tests have already seeded this one.
    probe = (
        "import sys, torch; from normstudy.seeding import seed_everything; seed_everything(1, torch.device('cpu'));"
        " print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),"
        " torch.utils.deterministic.fill_uninitialized_memory, 'torch._inductor' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO / "workflow" / "scripts", capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "True", "False", "False"]


def test_resume_after_interruption_equals_an_uninterrupted_run(splits, tmp_path: Path) -> None:
    settings = tiny_settings(epochs=4, seed=3)
    whole = fit(settings, splits, CPU, 1, tmp_path / "whole.pt", log=lambda _: None)
    checkpoint = tmp_path / "cut.pt"
    with pytest.raises(InterruptedError):
        fit(settings, splits, CPU, 1, checkpoint, log=lambda _: None, stop_after_epoch=2)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
    said = []
    # Some other work in between moves the global RNGs; the checkpoint restores them.
    torch.rand(1000)
    resumed = fit(settings, splits, CPU, 1, checkpoint, log=said.append)
    assert said[0] == f"resumed from {checkpoint} after epoch 2"
    assert [line.split()[1] for line in said[1:]] == ["3/4", "4/4"]  # only the remaining epochs ran
    for key, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[key]), key
    assert [r["test_loss"] for r in resumed.history] == [r["test_loss"] for r in whole.history]
    assert [r["lr"] for r in resumed.history] == [r["lr"] for r in whole.history]


def test_checkpoint_from_other_settings_is_not_resumed(splits, tmp_path: Path) -> None:
    settings = tiny_settings(epochs=3, seed=3)
    checkpoint = tmp_path / "cut.pt"
    with pytest.raises(InterruptedError):
        fit(settings, splits, CPU, 1, checkpoint, log=lambda _: None, stop_after_epoch=1)
    changed = tiny_settings(epochs=3, seed=3, schedule={"max_lr": 0.02})
    said = []
    run = fit(changed, splits, CPU, 1, checkpoint, log=said.append)
    assert said[0] == f"checkpoint {checkpoint} is from other settings, data or code; starting afresh"
    assert [r["epoch"] for r in run.history] == [1, 2, 3]
    fresh = fit(changed, splits, CPU, 1, tmp_path / "fresh.pt", log=lambda _: None)
    assert torch.equal(run.model.layers[0].weight, fresh.model.layers[0].weight)


@pytest.fixture(scope="module")
def cut_checkpoint(splits, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of the tiny run after one epoch, made by this package's code."""
    checkpoint = tmp_path_factory.mktemp("cut") / "cut.pt"
    with pytest.raises(InterruptedError):
        fit(tiny_settings(epochs=3, seed=3), splits, CPU, 1, checkpoint, log=lambda _: None, stop_after_epoch=1)
    return checkpoint


def first_word_on_a_copy(splits, cut_checkpoint: Path, folder: Path) -> tuple[Path, str]:
    """Train the tiny run from a copy of the cut checkpoint for one more epoch: the copy, and what fit said first."""
    checkpoint = folder / "cut.pt"
    shutil.copyfile(cut_checkpoint, checkpoint)
    said = []
    with pytest.raises(InterruptedError):
        fit(tiny_settings(epochs=3, seed=3), splits, CPU, 1, checkpoint, log=said.append, stop_after_epoch=2)
    return checkpoint, said[0]


def test_the_unedited_code_resumes_the_checkpoint(splits, cut_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint, said = first_word_on_a_copy(splits, cut_checkpoint, tmp_path)
    assert said == f"resumed from {checkpoint} after epoch 1"


# The shared modules, and the registry modules of the tiny runs' dataset (synthetic) and its network (normnet).
@pytest.mark.parametrize("module", run_code_modules("synthetic"))
def test_an_edit_to_any_module_that_decides_a_runs_numbers_is_never_resumed(
    module: str, splits, cut_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same list is every training and evaluation job's module inputs (tests/test_workflow.py checks them).
    package = tmp_path / "normstudy"
    shutil.copytree(engine.PACKAGE_DIR, package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(module_files(package)[module], "a", encoding="utf-8") as handle:
        handle.write("\n# an edit\n")
    monkeypatch.setattr(engine, "PACKAGE_DIR", package)
    checkpoint, said = first_word_on_a_copy(splits, cut_checkpoint, tmp_path)
    assert said == f"checkpoint {checkpoint} is from other settings, data or code; starting afresh"


def test_the_training_jobs_list_the_code_the_checkpoint_key_hashes() -> None:
    imported = package_imports(REPO / "workflow" / "scripts" / "train.py") | package_imports(
        REPO / "workflow" / "scripts" / "evaluate.py"
    )
    # Everything training and evaluation import is hashed, except helpers that decide no number: the metrics
    # writers and how a script reports bad input.
    assert imported - {"metrics", "cli"} <= set(RUN_CODE_MODULES), imported - set(RUN_CODE_MODULES)


def test_checkpoint_key_covers_settings_data_threads_and_device(splits) -> None:
    settings = tiny_settings()
    base = checkpoint_key((settings,), splits.sha256, CPU, 1)
    assert checkpoint_key((tiny_settings(),), dict(splits.sha256), CPU, 1) == base
    assert checkpoint_key((settings,), splits.sha256, CPU, 2) != base
    assert checkpoint_key((with_variant(settings, dropout=0.1),), splits.sha256, CPU, 1) != base
    other_data = {**splits.sha256, "train-labels-idx1-ubyte": "0" * 64}
    assert checkpoint_key((settings,), other_data, CPU, 1) != base
    assert checkpoint_key((tiny_settings(data_seed=4),), splits.sha256, CPU, 1) != base
    # A pack's checkpoint is its seeds', in their order: another pack never resumes from it.
    pack = (settings, seeded(settings, 1))
    assert checkpoint_key(pack, splits.sha256, CPU, 1) not in {base, checkpoint_key(pack[::-1], splits.sha256, CPU, 1)}


def test_checkpoint_on_other_data_is_not_resumed(splits, tmp_path: Path) -> None:
    """Interrupted on one dataset, rerun on another: the result is a clean run's on the new data."""
    settings = tiny_settings(epochs=3, seed=3)
    checkpoint = tmp_path / "cut.pt"
    with pytest.raises(InterruptedError):
        fit(settings, splits, CPU, 1, checkpoint, log=lambda _: None, stop_after_epoch=1)
    other = tiny_settings(epochs=3, seed=3, data_seed=9)
    other_data = synthetic_files(tmp_path / "other", other)
    other_splits = load_splits(other_data.files, other_data.provenance, other.data)
    said = []
    resumed = fit(other, other_splits, CPU, 1, checkpoint, log=said.append)
    assert "starting afresh" in said[0]
    clean = fit(other, other_splits, CPU, 1, tmp_path / "clean.pt", log=lambda _: None)
    for key, tensor in clean.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[key]), key


def test_diverging_training_fails_with_a_clear_error(splits, tmp_path: Path) -> None:
    # Weight decay 1 at a learning rate of 10 multiplies the weights by about -9 per step: they overflow. Over 6
    # epochs (30 steps) the annealed rate shrank them back before float32 overflowed on some CPUs; 20 epochs keep
    # the rate high for long enough (it fails in epoch 4 on the 2-core development machine).
    settings = tiny_settings(epochs=20, schedule={"max_lr": 10.0}, optimizer={"momentum": 0.99, "weight_decay": 1.0})
    with pytest.raises(TrainingDivergedError, match=r"training diverged\. Lower train\.schedule\.max_lr"):
        fit(settings, splits, CPU, 1, tmp_path / "nan.pt", log=lambda _: None)


def test_saved_models_are_byte_identical_whatever_the_file_name(splits, tmp_path: Path) -> None:
    model = NormNet("group", 0.0, groups=2)
    save_torch(tmp_path / "a.pt", model.state_dict())
    save_torch(tmp_path / "other_name.pt", model.state_dict())
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "other_name.pt").read_bytes()
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


def test_corrupt_checkpoint_starts_afresh(splits, tmp_path: Path) -> None:
    checkpoint = tmp_path / "broken.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    said = []
    run = fit(tiny_settings(epochs=2, seed=3), splits, CPU, 1, checkpoint, log=said.append)
    assert said and "unreadable" in said[0]
    assert len(run.history) == 2


def test_too_few_steps_for_the_warm_up_is_refused() -> None:
    with pytest.raises(ValueError, match="under one step"):
        new_run((tiny_settings(epochs=1, train_size=1000),), 32, CPU)
