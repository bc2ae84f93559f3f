"""Normalization layers from a name, through one factory (after timm's create_norm): each norm of the registry
(norm_specs.py) has one builder here, taking (channels, copies, **its parameters) as timm's factories take keywords.

`copies` k > 1 builds the layer of k models packed side by side (model i owns channels i*C to (i+1)*C - 1): every
norm here normalizes within channel blocks that never cross a model's boundary, so the packed layer applies each
model's own norm, with its own statistics and affine pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from normstudy.model.ghost_kernel import GhostBatchNormFunction, fits_kernel
from normstudy.model.norm_layers import (
    BatchRenorm2d,
    DynamicTanh2d,
    EvoNormS02d,
    FilterResponseNorm2d,
    RMSNorm2d,
    follow_groups,
)
from normstudy.model.norm_specs import norm_spec


class GhostBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics come from groups of `ghost` images of each batch (ghost batch norm,
    Hoffer et al. 2017): the SGD batch stays what it is, only the batch the statistics are taken over shrinks.

    Each group of `ghost` consecutive images (and a last, smaller group, if the batch leaves one) is normalized with
    its own mean and variance; the running averages follow the mean over the groups of their means and of their
    unbiased variances, with BatchNorm's momentum per step. A batch no larger than `ghost`, and evaluation, are
    plain BatchNorm2d, bit for bit. Channels-last float32 on the CPU runs the fused kernel (ghost_kernel.py);
    elsewhere the groups go through ATen's batch norm as channels of one batch (`_groups`).
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
        if fits_kernel(x):
            out, means, variances = GhostBatchNormFunction.apply(x, self.weight, self.bias, self.ghost, self.eps)
            follow_groups(self, means, variances)
            return out
        whole = len(x) // self.ghost * self.ghost
        parts = [self._groups(x[:whole], whole // self.ghost)]
        if whole < len(x):
            parts.append(self._groups(x[whole:], 1))
        follow_groups(self, torch.cat([mean for _, mean, _ in parts]), torch.cat([var for _, _, var in parts]))
        out = parts[0][0] if len(parts) == 1 else torch.cat([part for part, _, _ in parts])
        # The groups' transpose gives NCHW; the next convolution runs faster in the layout it was given.
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        return out.contiguous(memory_format=layout)

    def _groups(self, x: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`x` split into `count` equal groups, normalized by each group's own statistics; with each group's
        per-channel means and unbiased variances, [count, C]."""
        # Group k's channel c becomes channel k*C + c of a batch of one group's images, so ATen's fused batch norm
        # kernel (and its backward) does the work: about 1.3x a plain BatchNorm2d step on one CPU thread, against 2x
        # for the same formula in tensor operations; on a GPU, one launch per layer whatever the group count.
        n, c, h, w = x.shape
        size = n // count
        stacked = x.reshape(count, size, c, h, w).transpose(0, 1).reshape(size, count * c, h, w)
        mean, var = x.new_zeros(count * c), x.new_zeros(count * c)  # momentum 1: they receive the groups' own
        out = nn.functional.batch_norm(
            stacked, mean, var, self.weight.repeat(count), self.bias.repeat(count), True, 1.0, self.eps
        )
        out = out.reshape(size, count, c, h, w).transpose(0, 1).reshape(n, c, h, w)
        return out, mean.view(count, c), var.view(count, c)


# One builder per norm of the registry (norm_specs.NORMS), under its name: (channels, copies, **its parameters).
BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def builds(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register the decorated function as the builder of the registry's norm `name`."""

    def register(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        BUILDERS[norm_spec(name).name] = builder
        return builder

    return register


@builds("batch")
def batch_norm(channels: int, copies: int, ghost: int = 0) -> nn.Module:
    """Statistics per channel (over the batch and the map): a packed model's channels are its own."""
    return GhostBatchNorm2d(copies * channels, ghost) if ghost else nn.BatchNorm2d(copies * channels)


@builds("group")
def group_norm(
    channels: int, copies: int, groups: int | None = None, channels_per_group: int | None = None
) -> nn.Module:
    """GroupNorm with `groups` groups of each model's channels, or groups of `channels_per_group` channels."""
    if channels_per_group is not None:
        if channels % channels_per_group:
            raise ValueError(f"GroupNorm: groups of {channels_per_group} channels do not divide {channels} channels")
        groups = channels // channels_per_group
    if groups is None or channels % groups:
        raise ValueError(f"GroupNorm: {groups} groups do not divide {channels} channels")
    return nn.GroupNorm(copies * groups, copies * channels)


@builds("group_ws")
def group_norm_after_standardized_weights(channels: int, copies: int, groups: int) -> nn.Module:
    """GroupNorm as group norm's; the block's convolution standardizes its weights (the spec's conv)."""
    return group_norm(channels, copies, groups)


@builds("layer")
def layer_norm(channels: int, copies: int) -> nn.Module:
    """Statistics over C x H x W per image: one group per model."""
    return nn.GroupNorm(copies, copies * channels)


@builds("instance")
def instance_norm(channels: int, copies: int) -> nn.Module:
    """Statistics per image and channel."""
    return nn.GroupNorm(copies * channels, copies * channels)


@builds("none")
def no_norm(channels: int, copies: int) -> nn.Module:
    """The control: nothing between the convolution and its activation."""
    return nn.Identity()


@builds("batch_renorm")
def batch_renorm(
    channels: int, copies: int, r_max: float, d_max: float, renorm_warmup: int, ghost: int = 0
) -> nn.Module:
    """Batch renorm per channel (a packed model's channels are its own), over ghost groups when given."""
    return BatchRenorm2d(copies * channels, r_max, d_max, renorm_warmup, ghost)


@builds("filter_response")
def filter_response_norm(channels: int, copies: int) -> nn.Module:
    """FRN + TLU per image and channel."""
    return FilterResponseNorm2d(copies * channels)


@builds("rms")
def rms_norm(channels: int, copies: int) -> nn.Module:
    """RMS over each model's C x H x W per image."""
    return RMSNorm2d(channels, copies)


@builds("evonorm_s0")
def evonorm_s0(channels: int, copies: int, groups: int) -> nn.Module:
    """EvoNorm-S0 with `groups` groups of each model's channels."""
    if channels % groups:
        raise ValueError(f"EvoNorm-S0: {groups} groups do not divide {channels} channels")
    return EvoNormS02d(copies * channels, copies * groups)


@builds("dyt")
def dynamic_tanh(channels: int, copies: int, alpha_init: float) -> nn.Module:
    """DyT with one alpha per packed model."""
    return DynamicTanh2d(channels, copies, alpha_init)


def create_norm(name: str, channels: int, copies: int = 1, ghost: int = 0, **params: Any) -> nn.Module:
    """The layer `name` for `channels` channels with its parameters (`groups=2`), for `copies` models packed side by
    side; `ghost` > 0: a batch-statistics norm's training statistics over groups of that many images."""
    spec = norm_spec(name)
    if copies < 1:
        raise ValueError(f"copies must be at least 1, not {copies}")
    known, required = {param.name for param in spec.params}, set(spec.required_params())
    chosen = [name for name in spec.one_of if name in params]
    if not required <= set(params) <= known or (spec.one_of and len(chosen) != 1):
        choice = f", and one of {sorted(spec.one_of)}" if spec.one_of else ""
        raise ValueError(f"{spec.title} takes the parameters {sorted(known)}{choice}, not {sorted(params)}")
    params = spec.with_defaults(params)
    if ghost:
        if not spec.batch_statistics:
            raise ValueError(f"ghost statistics batches are batch norm's; {spec.title} has no batch statistics")
        params["ghost"] = ghost
    return BUILDERS[spec.name](channels, copies, **params)


@runtime_checkable
class RunningStatistics(Protocol):
    """A layer that normalizes by statistics of its training batches and evaluates with their running averages, per
    channel: what PreciseBN and test-time adaptation set (BatchNorm2d, GhostBatchNorm2d, and any batch-statistics
    norm's layer that keeps these buffers)."""

    num_features: int
    running_mean: torch.Tensor
    running_var: torch.Tensor


def batch_statistics_layers(model: nn.Module) -> list[nn.Module]:
    """The model's layers that keep running statistics of their training batches, in forward order."""
    return [module for module in model.modules() if isinstance(module, RunningStatistics)]
