"""Test-time adaptation of the batch-statistics layers (Schneider et al. 2020; Nado et al. 2020): to a whole corrupted
set, with precise_bn.set_population_statistics (the one algorithm for population statistics), or a batch at a time,
as a deployed model meets test images (`per_batch_statistics`); and the statistics saved to restore between sets.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from normstudy.data.tensors import eval_batch
from normstudy.model.norms import RunningStatistics


def buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's batch statistics (running means and variances), by state-dict name."""
    return {name: value.clone() for name, value in model.state_dict().items() if "running_" in name}


@torch.inference_mode()
def per_batch_statistics(
    model: nn.Module,
    images: torch.Tensor,
    mean: float,
    std: float,
    batch_size: int,
    layout: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """The model's log-probabilities on `images` (uint8, unaugmented) taken `batch_size` at a time in order (the last
    batch holds the rest), every batch-statistics layer normalizing each batch by that batch's own mean and biased
    variance: prediction-time BN as a deployed model meets a stream of test batches (Nado et al. 2020). `model` is
    unchanged."""
    adapted = copy.deepcopy(model).eval()
    for layer in adapted.modules():
        if isinstance(layer, RunningStatistics):
            # Batch statistics in the forward pass, and no running average updated (no buffer is passed).
            layer.train()
            layer.track_running_stats = False
    return torch.cat(
        [
            adapted(eval_batch(images[i : i + batch_size], mean, std).contiguous(memory_format=layout))
            for i in range(0, len(images), batch_size)
        ]
    )
