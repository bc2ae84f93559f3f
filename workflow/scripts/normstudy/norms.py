"""Normalization layers from a name, through one factory (after timm's create_norm).

`copies` k > 1 builds the layer of k models packed side by side (model i owns channels i*C to (i+1)*C - 1): every
norm here normalizes within channel blocks that never cross a model's boundary, so the packed layer applies each
model's own norm, with its own statistics and affine pair.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from normstudy.architecture import normalize_name


class GhostBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics come from groups of `ghost` images of each batch (ghost batch norm,
    Hoffer et al. 2017): the SGD batch stays what it is, only the batch the statistics are taken over shrinks.

    Each group of `ghost` consecutive images (and a last, smaller group, if the batch leaves one) is normalized with
    its own mean and variance; the running averages follow the mean over the groups of their means and of their
    unbiased variances, with BatchNorm's momentum per step. A batch no larger than `ghost`, and evaluation, are
    plain BatchNorm2d, bit for bit.
    """

    def __init__(self, num_features: int, ghost: int) -> None:
        super().__init__(num_features)
        if ghost < 2:
            raise ValueError(f"ghost batch norm needs groups of at least 2 images, not {ghost}")
        self.ghost = ghost

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize each group of `ghost` images with its own statistics (training), or as BatchNorm2d."""
        if not self.training or len(x) <= self.ghost:
            return super().forward(x)
        whole = len(x) // self.ghost * self.ghost
        parts = [self._groups(x[:whole], whole // self.ghost)]
        if whole < len(x):
            parts.append(self._groups(x[whole:], 1))
        with torch.no_grad():
            self.running_mean.lerp_(torch.cat([mean for _, mean, _ in parts]).mean(0), self.momentum)
            self.running_var.lerp_(torch.cat([var for _, _, var in parts]).mean(0), self.momentum)
            self.num_batches_tracked.add_(1)
        out = parts[0][0] if len(parts) == 1 else torch.cat([part for part, _, _ in parts])
        # The groups' transpose gives NCHW; the next convolution runs faster in the layout it was given.
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        return out.contiguous(memory_format=layout)

    def _groups(self, x: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`x` split into `count` equal groups, normalized by each group's own statistics; with each group's
        per-channel means and unbiased variances, [count, C]."""
        # Group k's channel c becomes channel k*C + c of a batch of one group's images, so ATen's fused batch norm
        # kernel (and its backward) does the work: about 1.3x a plain BatchNorm2d step here, against 2x for the
        # same formula in tensor operations (measured on this network, one CPU thread).
        n, c, h, w = x.shape
        size = n // count
        stacked = x.reshape(count, size, c, h, w).transpose(0, 1).reshape(size, count * c, h, w)
        mean, var = x.new_zeros(count * c), x.new_zeros(count * c)  # momentum 1: they receive the groups' own
        out = nn.functional.batch_norm(
            stacked, mean, var, self.weight.repeat(count), self.bias.repeat(count), True, 1.0, self.eps
        )
        out = out.reshape(size, count, c, h, w).transpose(0, 1).reshape(n, c, h, w)
        return out, mean.view(count, c), var.view(count, c)


def _batch(channels: int, groups: int | None, copies: int, ghost: int = 0) -> nn.Module:
    # Statistics per channel (over the batch and the map): a packed model's channels are its own.
    return GhostBatchNorm2d(copies * channels, ghost) if ghost else nn.BatchNorm2d(copies * channels)


def _group(channels: int, groups: int | None, copies: int) -> nn.Module:
    if groups is None:
        raise ValueError("GroupNorm needs a group count")
    if channels % groups:
        raise ValueError(f"GroupNorm: {groups} groups do not divide {channels} channels")
    return nn.GroupNorm(copies * groups, copies * channels)


def _layer(channels: int, groups: int | None, copies: int) -> nn.Module:
    # Layer norm for CNNs: statistics over C x H x W per sample, one affine pair per channel. Write-up 001's
    # nn.LayerNorm(W) normalizes over the width alone (52 params on [8, 26, 26]): a known mistake.
    return nn.GroupNorm(copies, copies * channels)


def _instance(channels: int, groups: int | None, copies: int) -> nn.Module:
    # GroupNorm(C, C) rather than nn.InstanceNorm2d, whose affine is off by default: same statistics,
    # and the same 2C parameters as every other variant.
    return nn.GroupNorm(copies * channels, copies * channels)


NORM_MAP: dict[str, Callable[[int, int | None, int], nn.Module]] = {
    "batch": _batch,
    "group": _group,
    "layer": _layer,
    "instance": _instance,
}


def create_norm(name: str, channels: int, groups: int | None = None, copies: int = 1, ghost: int = 0) -> nn.Module:
    """The layer `name` for `channels` channels (`groups`: group norm only), for `copies` models packed side by side;
    `ghost` > 0: batch norm's training statistics over groups of that many images (GhostBatchNorm2d)."""
    key = normalize_name(name)
    if key not in NORM_MAP:
        raise ValueError(f"unknown norm '{name}'; known: {', '.join(NORM_MAP)}")
    if copies < 1:
        raise ValueError(f"copies must be at least 1, not {copies}")
    if ghost and key != "batch":
        raise ValueError(f"ghost statistics batches are batch norm's; {name} norm has no batch statistics")
    return _batch(channels, groups, copies, ghost) if ghost else NORM_MAP[key](channels, groups, copies)
