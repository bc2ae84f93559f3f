"""Packed training: seeds of one variant trained as one network compute, per seed, what that seed computes alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from helpers import synthetic_files, tiny_settings

from normstudy.data.tensors import load_splits, training_batch
from normstudy.engine import (
    evaluate,
    evaluate_pack,
    fit,
    fit_pack,
    l1_penalty,
    memory_format,
    new_run,
    prepare_model,
)
from normstudy.packing import PackError, model_losses, unpack_state_dict

CPU = torch.device("cpu")
SEEDS = (3, 4, 5)


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory):
    data = synthetic_files(tmp_path_factory.mktemp("synthetic"), tiny_settings())
    return load_splits(data.files, data.provenance, tiny_settings().data)


def pack_of(norm: str = "batch", l1: float = 0.0, seeds: tuple[int, ...] = SEEDS, **train) -> tuple:
    """Tiny settings for each seed, without dropout (whose masks a pack draws from one generator)."""
    settings = tiny_settings(norm=norm, l1=l1, **train)
    settings = dataclasses.replace(settings, variant=dataclasses.replace(settings.variant, dropout=0.0))
    return tuple(dataclasses.replace(settings, seed=seed) for seed in seeds)


def quiet(_line: str) -> None:
    """A log that drops what it is told."""


@pytest.mark.parametrize(
    ("norm", "l1"), [("batch", 0.0), ("batch", 1e-3), ("group", 0.0), ("layer", 0.0), ("instance", 0.0)]
)
def test_a_packed_step_gives_each_model_its_own_losses_and_gradients(splits, norm: str, l1: float) -> None:
    """The same initial weights and the same batches: the packed network's loss and gradient of each model
    equal that model's alone, to float tolerance."""
    pack = pack_of(norm, l1)
    images, labels = splits.train_images, splits.train_labels
    packed = new_run(pack, len(images), CPU)
    alone = [new_run((settings,), len(images), CPU) for settings in pack]
    for run, state in zip(alone, unpack_state_dict(packed.model.state_dict(), len(pack)), strict=True):
        assert all(torch.equal(state[key], tensor) for key, tensor in run.model.state_dict().items())
    # Each seed's first batch, drawn from its own generator as train_epoch draws it.
    data, layout = pack[0].data, memory_format(pack[0])
    batches = []
    for run in alone:
        (generator,) = run.generators
        index = torch.randperm(len(images), generator=generator)[:32]
        batches.append((training_batch(images[index], 7.0, data.mean, data.std, generator), labels[index]))
    packed.model.train()
    log_probs = packed.model(torch.cat([x for x, _ in batches], dim=1).contiguous(memory_format=layout))
    losses = model_losses(log_probs, [y for _, y in batches])
    (losses.sum() + l1 * l1_penalty(packed.model)).backward()
    gradients = unpack_state_dict({name: p.grad for name, p in packed.model.named_parameters()}, len(pack))
    for index, (run, (x, y)) in enumerate(zip(alone, batches, strict=True)):
        run.model.train()
        (loss,) = model_losses(run.model(x.contiguous(memory_format=layout)), [y])
        (loss + l1 * l1_penalty(run.model)).backward()
        torch.testing.assert_close(losses[index], loss, rtol=1e-5, atol=1e-6)
        for name, parameter in run.model.named_parameters():
            torch.testing.assert_close(gradients[index][name], parameter.grad, rtol=1e-4, atol=1e-6)
        # BatchNorm's running statistics moved as they would alone.
        state = unpack_state_dict(packed.model.state_dict(), len(pack))[index]
        for key, tensor in run.model.state_dict().items():
            torch.testing.assert_close(state[key], tensor, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_packed_training_tracks_each_seed_trained_alone(splits, tmp_path: Path, norm: str) -> None:
    """A whole epoch: the packed seeds' losses are their unpacked runs', up to floating-point order.

    Later epochs drift further apart (1e-3 of the loss after two on this tiny set), as training amplifies any
    rounding difference; each mode is bitwise deterministic on its own (the next test).
    """
    pack = pack_of(norm, epochs=2)
    packed = fit_pack(pack, splits, CPU, 1, tmp_path / "pack.pt", log=quiet, stop_after_epoch=None)
    for index, settings in enumerate(pack):
        alone = fit(settings, splits, CPU, 1, tmp_path / f"alone{index}.pt", log=quiet)
        mine, theirs = packed.histories[index][0], alone.history[0]
        assert mine["epoch"] == theirs["epoch"] == 1 and mine["lr"] == theirs["lr"]
        for column in ("train_loss", "test_loss"):
            assert mine[column] == pytest.approx(theirs[column], rel=1e-4), (settings.seed, column)


def test_packed_training_is_bitwise_deterministic_and_seeds_differ(splits, tmp_path: Path) -> None:
    pack = pack_of("layer", epochs=2)
    first = fit_pack(pack, splits, CPU, 1, tmp_path / "a.pt", log=quiet)
    second = fit_pack(pack, splits, CPU, 1, tmp_path / "b.pt", log=quiet)
    for key, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[key]), key
    strip = [[{k: v for k, v in row.items() if k != "seconds"} for row in h] for h in first.histories]
    assert strip == [[{k: v for k, v in row.items() if k != "seconds"} for row in h] for h in second.histories]
    weights = unpack_state_dict(first.model.state_dict(), len(pack))
    assert not torch.equal(weights[0]["layers.0.weight"], weights[1]["layers.0.weight"])
    assert strip[0] != strip[1]


def test_a_packed_run_resumed_after_an_interruption_equals_an_uninterrupted_one(splits, tmp_path: Path) -> None:
    pack = pack_of("batch", epochs=3)
    whole = fit_pack(pack, splits, CPU, 1, tmp_path / "whole.pt", log=quiet)
    checkpoint = tmp_path / "cut.pt"
    with pytest.raises(InterruptedError):
        fit_pack(pack, splits, CPU, 1, checkpoint, log=quiet, stop_after_epoch=1)
    torch.rand(100)  # other work moves the global generator; the checkpoint puts it back
    said = []
    resumed = fit_pack(pack, splits, CPU, 1, checkpoint, log=said.append)
    assert said[0] == f"resumed from {checkpoint} after epoch 1"
    for key, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[key]), key
    assert [[r["test_loss"] for r in h] for h in resumed.histories] == [
        [r["test_loss"] for r in h] for h in whole.histories
    ]
    # Another pack of the same seeds (here: in another order) never resumes from a cut run's checkpoint.
    checkpoint.unlink()  # train.py deletes it once the outputs are written
    with pytest.raises(InterruptedError):
        fit_pack(pack, splits, CPU, 1, checkpoint, log=quiet, stop_after_epoch=1)
    said = []
    fit_pack(pack[::-1], splits, CPU, 1, checkpoint, log=said.append)
    assert "starting afresh" in said[0]


def test_only_runs_that_differ_in_their_seed_alone_can_be_packed(splits) -> None:
    pack = pack_of()
    other = dataclasses.replace(pack[1], variant=dataclasses.replace(pack[1].variant, l1=0.5))
    with pytest.raises(PackError, match="seed 4 has other settings than seed 3"):
        new_run((pack[0], other), len(splits.train_images), CPU)
    with pytest.raises(PackError, match=r"each seed once, not seeds \[3, 3\]"):
        new_run((pack[0], pack[0]), len(splits.train_images), CPU)


def test_packed_evaluation_scores_each_model_with_its_running_statistics(splits, tmp_path: Path) -> None:
    """evaluate_pack on the packed network is evaluate on each unpacked model, in eval mode (running statistics)."""
    pack = pack_of("batch", epochs=2)
    run = fit_pack(pack, splits, CPU, 1, tmp_path / "pack.pt", log=quiet)
    data, layout = pack[0].data, memory_format(pack[0])
    scores = evaluate_pack(run.model, splits.eval_images, splits.eval_labels, data.mean, data.std, layout=layout)
    assert not run.model.training
    for settings, state, (loss, accuracy, log_probs), history in zip(
        pack, unpack_state_dict(run.model.state_dict(), len(pack)), scores, run.histories, strict=True
    ):
        model = prepare_model(settings, CPU)
        model.load_state_dict(state)
        alone_loss, alone_accuracy, alone_log_probs = evaluate(
            model, splits.eval_images, splits.eval_labels, data.mean, data.std, layout=layout
        )
        assert loss == pytest.approx(alone_loss, rel=1e-5)
        torch.testing.assert_close(log_probs, alone_log_probs, rtol=1e-4, atol=1e-5)
        assert accuracy == alone_accuracy == history[-1]["test_acc"]
        # The statistics of the test batch itself would give other outputs: these are the running ones.
        model.train()
        with torch.no_grad():
            batch_stats = model(
                ((splits.eval_images.float() / 255 - data.mean) / data.std).contiguous(memory_format=layout)
            )
        assert not torch.allclose(batch_stats, alone_log_probs, atol=1e-3)
