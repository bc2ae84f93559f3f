"""Normalization layers from a name, through one factory (after timm's create_norm).

`copies` k > 1 builds the layer of k models packed side by side (model i owns channels i*C to (i+1)*C - 1): every
norm here normalizes within channel blocks that never cross a model's boundary, so the packed layer applies each
model's own norm, with its own statistics and affine pair.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from normstudy.architecture import normalize_name


def _batch(channels: int, groups: int | None, copies: int) -> nn.Module:
    # Statistics per channel (over the batch and the map): a packed model's channels are its own.
    return nn.BatchNorm2d(copies * channels)


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


def create_norm(name: str, channels: int, groups: int | None = None, copies: int = 1) -> nn.Module:
    """The layer `name` for `channels` channels (`groups`: group norm only), for `copies` models packed side by side."""
    key = normalize_name(name)
    if key not in NORM_MAP:
        raise ValueError(f"unknown norm '{name}'; known: {', '.join(NORM_MAP)}")
    if copies < 1:
        raise ValueError(f"copies must be at least 1, not {copies}")
    return NORM_MAP[key](channels, groups, copies)
