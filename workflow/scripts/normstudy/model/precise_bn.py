"""PreciseBN (Wu & Johnson 2021): the batch-statistics layers' statistics for evaluation set to the population
statistics of their inputs over a fixed set of images, in place of the running averages training left; the one
algorithm for them, which test-time adaptation (adaptation.py) uses too.

The running averages weight the last steps most (momentum 0.1: about the last 10 batches), and at small statistics
batches they average noisy estimates. Here each layer gets the mean and variance of its inputs over the images,
layer by layer from the first: each layer's inputs are computed with the layers before it already evaluating with
their new statistics, as they will at test time. Every image's activations move through the layer chain once, summed
in float64 batch by batch, at the price of holding them (about 220 MB for 10,000 images at the widest layer).
"""

from __future__ import annotations

import torch
from torch import nn

from normstudy.data.tensors import eval_batch
from normstudy.model.norms import RunningStatistics


@torch.inference_mode()
def set_population_statistics(
    model: nn.Module,
    images: torch.Tensor,
    mean: float,
    std: float,
    batch_size: int = 1000,
    layout: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """Set each batch-statistics layer of `model.layers` (a chain) to the mean and variance of its inputs over `images`
    (uint8, unaugmented), first layer first, and return the chain's outputs on them: what the model, left in eval
    mode with its new statistics, computes for these images (the same operations on the same batches)."""
    model.eval()
    activations = [
        eval_batch(images[i : i + batch_size], mean, std).contiguous(memory_format=layout)
        for i in range(0, len(images), batch_size)
    ]
    for layer in model.layers:
        if isinstance(layer, RunningStatistics):
            total = torch.zeros(layer.num_features, dtype=torch.float64, device=layer.running_mean.device)
            squares, count = torch.zeros_like(total), 0
            for values in activations:
                wide = values.double()
                total += wide.sum(dim=(0, 2, 3))
                # Squared in place: the same values and sum as an out-of-place square, 1.8x faster.
                squares += wide.square_().sum(dim=(0, 2, 3))
                count += wide.numel() // wide.shape[1]
            layer_mean = total / count
            layer.running_mean.copy_(layer_mean)
            layer.running_var.copy_(squares / count - layer_mean.square())
        activations = [layer(values) for values in activations]
    return torch.cat(activations)
