"""PreciseBN (Wu & Johnson 2021): BatchNorm's statistics for evaluation recomputed after training, over a fixed set of
images, in place of the running averages training left.

The running averages weight the last steps most (momentum 0.1: about the last 10 batches), and at small statistics
batches they average noisy estimates. Here every BatchNorm layer gets the population mean and variance of its
inputs over the images, layer by layer from the first: each layer's inputs are computed with the layers before it
already evaluating with their new statistics, as they will at test time.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from normstudy.data import eval_batch


class _Collected(Exception):
    """Raised by the hook once it has a batch's inputs: the layers after it need not run."""


def batch_norms(model: nn.Module) -> list[nn.BatchNorm2d]:
    """The model's BatchNorm layers, in forward order."""
    return [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]


@torch.inference_mode()
def input_statistics(
    model: nn.Module, layer: nn.BatchNorm2d, inputs: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance (over images and positions, divided by their count) of `layer`'s inputs, per channel, with
    `model` evaluating every batch of `inputs`; summed in float64."""
    total = torch.zeros(layer.num_features, dtype=torch.float64, device=layer.running_mean.device)
    squares, count = torch.zeros_like(total), 0

    def collect(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        nonlocal total, squares, count
        values = args[0].double()
        total += values.sum(dim=(0, 2, 3))
        squares += values.square().sum(dim=(0, 2, 3))
        count += values.numel() // values.shape[1]
        raise _Collected

    hook = layer.register_forward_pre_hook(collect)
    try:
        for batch in inputs:
            with contextlib.suppress(_Collected):
                model(batch)
    finally:
        hook.remove()
    mean = total / count
    return mean, squares / count - mean.square()


def recompute_statistics(
    model: nn.Module,
    images: torch.Tensor,
    mean: float,
    std: float,
    batch_size: int = 1000,
    layout: torch.memory_format = torch.contiguous_format,
) -> int:
    """Set every BatchNorm layer's running mean and variance to the population statistics of its inputs over
    `images` (uint8, unaugmented), layer by layer; the number of layers set (0: the model has no BatchNorm)."""
    layers = batch_norms(model)
    model.eval()
    inputs = [
        eval_batch(images[i : i + batch_size], mean, std).contiguous(memory_format=layout)
        for i in range(0, len(images), batch_size)
    ]
    for layer in layers:
        layer_mean, layer_var = input_statistics(model, layer, inputs)
        layer.running_mean.copy_(layer_mean)
        layer.running_var.copy_(layer_var)
    return len(layers)
