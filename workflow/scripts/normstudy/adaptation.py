"""BatchNorm statistics set to the population statistics of a set of images in one pass through the network.

The same statistics as precise_bn.recompute_statistics (tested bitwise equal): each layer's inputs computed with the
layers before it already using their new statistics, summed in float64 batch by batch. That function runs the
network again up to each layer (seven passes for NormNet); this one keeps every image's activations and moves them
through the layer chain once, at the price of holding them (about 220 MB for 10,000 images at the widest layer). It
serves the evaluations that set statistics many times per model: PreciseBN from clean training images, and
test-time adaptation to each corrupted set (Schneider et al. 2020; Nado et al. 2020). Adaptation a batch at a time,
as a deployed model meets test images, is `per_batch_statistics`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from normstudy.data import eval_batch


def buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's BatchNorm statistics (running means and variances), by state-dict name."""
    return {name: value.clone() for name, value in model.state_dict().items() if "running_" in name}


@torch.inference_mode()
def set_population_statistics(
    model: nn.Module,
    images: torch.Tensor,
    mean: float,
    std: float,
    batch_size: int = 1000,
    layout: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """Set each BatchNorm layer of `model.layers` (a chain) to the mean and variance of its inputs over `images`
    (uint8, unaugmented), first layer first, and return the chain's outputs on them: what the model, left in eval
    mode with its new statistics, computes for these images (the same operations on the same batches)."""
    model.eval()
    activations = [
        eval_batch(images[i : i + batch_size], mean, std).contiguous(memory_format=layout)
        for i in range(0, len(images), batch_size)
    ]
    for layer in model.layers:
        if isinstance(layer, nn.BatchNorm2d):
            total = torch.zeros(layer.num_features, dtype=torch.float64, device=layer.running_mean.device)
            squares, count = torch.zeros_like(total), 0
            for values in activations:
                wide = values.double()
                total += wide.sum(dim=(0, 2, 3))
                # Squared in place: the same values and sum as precise_bn's out-of-place square, 1.8x faster.
                squares += wide.square_().sum(dim=(0, 2, 3))
                count += wide.numel() // wide.shape[1]
            layer_mean = total / count
            layer.running_mean.copy_(layer_mean)
            layer.running_var.copy_(squares / count - layer_mean.square())
        activations = [layer(values) for values in activations]
    return torch.cat(activations)


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
    batch holds the rest), every BatchNorm layer normalizing each batch by that batch's own mean and biased variance:
    prediction-time BN as a deployed model meets a stream of test batches (Nado et al. 2020). `model` is unchanged."""
    adapted = copy.deepcopy(model).eval()
    for layer in adapted.modules():
        if isinstance(layer, nn.BatchNorm2d):
            # Batch statistics in the forward pass, and no running average updated (no buffer is passed).
            layer.train()
            layer.track_running_stats = False
    return torch.cat(
        [
            adapted(eval_batch(images[i : i + batch_size], mean, std).contiguous(memory_format=layout))
            for i in range(0, len(images), batch_size)
        ]
    )
