"""The norms torch does not ship, each from its paper's equations (tests/test_norm_zoo.py checks every one against a
direct float64 computation of them). Each takes `copies` models packed side by side (norms.py): statistics and
per-layer scalars never cross a model's block of channels.
"""

from __future__ import annotations

import torch
from torch import nn


def _channel(values: torch.Tensor) -> torch.Tensor:
    """A per-channel vector shaped to broadcast over [N, C, H, W]."""
    return values.view(1, -1, 1, 1)


def follow_groups(layer: nn.BatchNorm2d, means: torch.Tensor, variances: torch.Tensor) -> None:
    """Move a batch-statistics layer's running averages towards the mean over its groups of their means and unbiased
    variances, [groups, C], with its momentum; count the step (ghost batch norm's and batch renorm's rule)."""
    with torch.no_grad():
        layer.running_mean.lerp_(means.mean(0), layer.momentum)
        layer.running_var.lerp_(variances.mean(0), layer.momentum)
        layer.num_batches_tracked.add_(1)


class BatchRenorm2d(nn.BatchNorm2d):
    """Batch Renormalization (Ioffe 2017, Algorithm 1): in training, x_hat = (x - mu_B) / sigma_B * r + d with
    r = clip(sigma_B / sigma, 1/r_max, r_max) and d = clip((mu_B - mu) / sigma, -d_max, d_max), no gradient through
    r or d; sigma_B = sqrt(var_B + eps) and sigma = sqrt(running_var + eps). Evaluation is BatchNorm2d's.

    The running averages are BatchNorm2d's (the mean and the unbiased variance, momentum 0.1). `warmup` > 0 relaxes
    the bounds as the paper does: r_max from 1 and d_max from 0, linearly over that many training steps. `ghost` > 0
    takes the statistics over groups of that many images of each batch (the batch-size study), each group against
    the same running averages, which then follow the mean over the groups.
    """

    def __init__(self, num_features: int, r_max: float, d_max: float, warmup: int = 0, ghost: int = 0) -> None:
        super().__init__(num_features)
        if r_max < 1 or d_max < 0:
            raise ValueError(f"batch renorm needs r_max >= 1 and d_max >= 0, not {r_max} and {d_max}")
        self.r_max, self.d_max, self.warmup, self.ghost = float(r_max), float(d_max), int(warmup), int(ghost)

    def bounds(self) -> tuple[float, float]:
        """(r_max, d_max) at the current training step."""
        if self.warmup <= 0:
            return self.r_max, self.d_max
        done = min(1.0, int(self.num_batches_tracked) / self.warmup)
        return 1.0 + (self.r_max - 1.0) * done, self.d_max * done

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Renormalized batch statistics in training, the running averages in evaluation."""
        if not self.training:
            return super().forward(x)
        n = len(x)
        size = self.ghost if 0 < self.ghost < n else n
        whole = n // size * size
        parts = [self._renormalize(x[:whole], size)]
        if whole < n:  # a last, smaller group, as ghost batch norm keeps one
            parts.append(self._renormalize(x[whole:], n - whole))
        follow_groups(self, torch.cat([mean for _, mean, _ in parts]), torch.cat([var for _, _, var in parts]))
        out = parts[0][0] if len(parts) == 1 else torch.cat([part for part, _, _ in parts])
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        return out.contiguous(memory_format=layout)

    def _renormalize(self, x: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`x` in groups of `size` images, each renormalized by its own statistics; with each group's per-channel
        means and unbiased variances, [groups, C] (taken before the running averages move)."""
        n, c, h, w = x.shape
        groups = x.reshape(n // size, size, c, h, w)
        var, mean = torch.var_mean(groups, dim=(1, 3, 4), correction=0, keepdim=True)
        sigma_batch = torch.sqrt(var + self.eps)
        r_max, d_max = self.bounds()
        with torch.no_grad():
            sigma = torch.sqrt(self.running_var + self.eps).view(1, 1, c, 1, 1)
            r = (sigma_batch / sigma).clamp(1.0 / r_max, r_max)
            d = ((mean - self.running_mean.view(1, 1, c, 1, 1)) / sigma).clamp(-d_max, d_max)
        normed = ((groups - mean) / sigma_batch * r + d).reshape(n, c, h, w)
        out = normed * _channel(self.weight) + _channel(self.bias)
        count = size * h * w
        unbiased = var.detach() * count / max(count - 1, 1)
        return out, mean.detach().view(-1, c), unbiased.view(-1, c)


class FilterResponseNorm2d(nn.Module):
    """Filter Response Normalization with its thresholded linear unit (Singh & Krishnan 2020, eqs. 1-3):
    nu^2 = mean over H x W of x^2, y = gamma * x / sqrt(nu^2 + eps) + beta, z = max(y, tau), per image and channel."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.tau = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """FRN, then the TLU."""
        nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
        y = x * torch.rsqrt(nu2 + self.eps) * _channel(self.weight) + _channel(self.bias)
        return torch.maximum(y, _channel(self.tau))


class RMSNorm2d(nn.Module):
    """RMS normalization (Zhang & Sennrich 2019) over each image's C x H x W, with a gain per channel:
    y = x / sqrt(mean(x^2) + eps) * g. nn.RMSNorm's gain would be per element of the normalized shape (C x H x W
    weights), so the per-channel form is written here."""

    def __init__(self, channels: int, copies: int = 1, eps: float = 1e-5) -> None:
        super().__init__()
        self.copies, self.eps = copies, eps
        self.weight = nn.Parameter(torch.ones(copies * channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Each model's channels scaled by their root mean square per image."""
        n, c, h, w = x.shape
        per_model = x.reshape(n, self.copies, c // self.copies, h, w)
        rms = torch.rsqrt(per_model.pow(2).mean(dim=(2, 3, 4), keepdim=True) + self.eps)
        return (per_model * rms).reshape(n, c, h, w) * _channel(self.weight)


class EvoNormS02d(nn.Module):
    """EvoNorm-S0 (Liu et al. 2020, Table 1): y = x * sigmoid(v * x) / sqrt(group_var(x) + eps) * gamma + beta, the
    variance per image over each group of channels and the map; it replaces the norm and its activation."""

    def __init__(self, channels: int, groups: int, eps: float = 1e-5) -> None:
        super().__init__()
        if channels % groups:
            raise ValueError(f"EvoNorm-S0: {groups} groups do not divide {channels} channels")
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.v = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The swish-like numerator over the group standard deviation, then the affine pair."""
        n, c, h, w = x.shape
        grouped = x.reshape(n, self.groups, c // self.groups, h, w)
        std = torch.sqrt(grouped.var(dim=(2, 3, 4), correction=0, keepdim=True) + self.eps)
        std = std.expand(n, self.groups, c // self.groups, 1, 1).reshape(n, c, 1, 1)
        numerator = x * torch.sigmoid(_channel(self.v) * x)
        return numerator / std * _channel(self.weight) + _channel(self.bias)


class DynamicTanh2d(nn.Module):
    """Dynamic Tanh (Zhu, Chen, He, LeCun & Liu 2025): y = gamma * tanh(alpha * x) + beta, one learnable alpha per
    layer (per packed model) and an affine pair per channel; no statistics of any kind."""

    def __init__(self, channels: int, copies: int = 1, alpha_init: float = 1.0) -> None:
        super().__init__()
        self.copies = copies
        self.alpha = nn.Parameter(torch.full((copies,), float(alpha_init)))
        self.weight = nn.Parameter(torch.ones(copies * channels))
        self.bias = nn.Parameter(torch.zeros(copies * channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """tanh of the scaled input, then the affine pair."""
        alpha = self.alpha.repeat_interleave(x.shape[1] // self.copies)
        return torch.tanh(_channel(alpha) * x) * _channel(self.weight) + _channel(self.bias)
