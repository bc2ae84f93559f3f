"""The CUDA path: data and model on the GPU, deterministic, checkpoints and models that load on the CPU.

These run where torch sees a GPU and are skipped, with that reason, where it does not (CI has none).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import synthetic_files, tiny_settings
from test_steps import evaluate_run, train_run

from normstudy.data.tensors import load_splits
from normstudy.engine import evaluate, fit, prepare_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: torch sees no GPU here")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return synthetic_files(tmp_path_factory.mktemp("cuda-data"), tiny_settings(device="cuda"))


def test_training_on_the_gpu_is_bitwise_deterministic(data, tmp_path: Path) -> None:
    settings = tiny_settings(device="cuda", seed=4, l1=1e-4)
    splits = load_splits(data.files, data.provenance, settings.data, CUDA)
    assert splits.train_images.device.type == "cuda"
    first = fit(settings, splits, CUDA, 1, tmp_path / "a.pt", log=lambda _: None)
    second = fit(settings, splits, CUDA, 1, tmp_path / "b.pt", log=lambda _: None)
    for key, tensor in first.model.state_dict().items():
        assert tensor.device.type == "cuda"
        assert torch.equal(tensor, second.model.state_dict()[key]), key


@pytest.mark.parametrize("norm", ["batch", "group", "layer", "instance"])
def test_resume_on_the_gpu_equals_an_uninterrupted_run(data, tmp_path: Path, norm: str) -> None:
    settings = tiny_settings(norm=norm, device="cuda", seed=2, epochs=3)
    splits = load_splits(data.files, data.provenance, settings.data, CUDA)
    whole = fit(settings, splits, CUDA, 1, tmp_path / "whole.pt", log=lambda _: None)
    with pytest.raises(InterruptedError):
        fit(settings, splits, CUDA, 1, tmp_path / "cut.pt", log=lambda _: None, stop_after_epoch=1)
    resumed = fit(settings, splits, CUDA, 1, tmp_path / "cut.pt", log=lambda _: None)
    assert [r["test_loss"] for r in resumed.history] == [r["test_loss"] for r in whole.history]


def test_a_gpu_run_is_recorded_and_its_model_evaluates_on_the_cpu(data, tmp_path: Path) -> None:
    settings = tiny_settings(device="cuda", seed=1)
    train_run(tmp_path, data, settings)
    job = json.loads((tmp_path / "job.json").read_text())
    assert job["device"].startswith("cuda") and job["device_name"] == torch.cuda.get_device_name(0)
    on_gpu = evaluate_run(data, tmp_path)
    # The file is a CPU state dict: it loads on a machine without a GPU, into the CPU model.
    state = torch.load(tmp_path / "model.pt", map_location="cpu", weights_only=True)
    assert all(t.device.type == "cpu" for t in state.values())
    cpu_settings = tiny_settings(device="cpu", seed=1)
    model = prepare_model(cpu_settings, torch.device("cpu"))
    model.load_state_dict(state)
    splits = load_splits(data.files, data.provenance, cpu_settings.data)
    _, accuracy, _ = evaluate(model, splits.eval_images, splits.eval_labels, 0.1307, 0.3081)
    assert accuracy == pytest.approx(on_gpu["test_acc"], abs=100 / len(splits.eval_labels) + 1e-9)
