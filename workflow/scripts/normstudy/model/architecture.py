"""The network registry: each network as data (its layer table, input shape, classes and receptive field), so config
checks and reports need no torch. network.py builds the torch module from a spec; a dataset names its network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from normstudy.model.norm_specs import NormSpec


class Conv(NamedTuple):
    """A bias-free convolution; `normed` ones are followed by norm -> dropout -> ReLU."""

    in_channels: int
    out_channels: int
    kernel: int
    normed: bool = True
    padding: int = 0


class Pool(NamedTuple):
    """A pooling layer: `max` 2x2 stride 2, or `avg` over the whole remaining map."""

    kind: str
    kernel: int


@dataclass(frozen=True)
class NetworkSpec:
    """One network: its layers in order, the images it takes and the classes it scores."""

    name: str
    title: str  # how the report names it
    layers: tuple[Conv | Pool, ...]
    input_shape: tuple[int, int, int]  # channels, height, width
    num_classes: int

    @property
    def normed_channels(self) -> tuple[int, ...]:
        """The channel count of each normalized layer, in order."""
        return tuple(layer.out_channels for layer in self.layers if isinstance(layer, Conv) and layer.normed)

    def valid_divisors(self) -> list[int]:
        """Values that divide every normalized layer's channel count (group norm's possible group counts)."""
        channels = self.normed_channels
        return [g for g in range(1, min(channels) + 1) if all(c % g == 0 for c in channels)]

    def removes_image_affine(self, norm: NormSpec) -> bool:
        """Whether the network's output cannot change under a per-image affine change of the input pixels (a
        contrast change): true for a norm over each image and channel alone behind a first convolution without bias
        or padding, which passes such a change on as a per-channel affine change that the norm removes (up to its
        epsilon)."""
        first = self.layers[0]
        return norm.removes_image_affine and isinstance(first, Conv) and first.normed and first.padding == 0

    def receptive_field_rows(self) -> list[dict[str, int | str]]:
        """The receptive-field table (write-up 004's columns): size, jump and receptive field in and out per layer.

        Convolutions have stride 1; pools stride as wide as their kernel (PyTorch's default).
        """
        size, jump, field = self.input_shape[1], 1, 1
        rows: list[dict[str, int | str]] = []
        for spec in self.layers:
            if isinstance(spec, Conv):
                name = f"conv {spec.in_channels}→{spec.out_channels} {spec.kernel}×{spec.kernel}"
                kernel, stride, padding = spec.kernel, 1, spec.padding
            else:
                name = f"{spec.kind}-pool {spec.kernel}"
                kernel, stride, padding = spec.kernel, spec.kernel, 0
            out_size = (size + 2 * padding - kernel) // stride + 1
            out_field = field + (kernel - 1) * jump
            rows.append(
                {
                    "layer": name,
                    "n_in": size,
                    "n_out": out_size,
                    "kernel": kernel,
                    "stride": stride,
                    "padding": padding,
                    "jump_in": jump,
                    "jump_out": jump * stride,
                    "rf_in": field,
                    "rf_out": out_field,
                }
            )
            size, jump, field = out_size, jump * stride, out_field
        return rows


# Write-ups 000/001: conv 1->8 3x3 (26x26), 8->8, 8->8, max-pool 2, 8->12, 12->14, 14->8 1x1, 8->26,
# 26->50 1x1, average-pool 5, 50->10 1x1, log-softmax.
NORMNET = NetworkSpec(
    "normnet",
    "the write-ups' 7,652-parameter CNN",
    (
        Conv(1, 8, 3),
        Conv(8, 8, 3),
        Conv(8, 8, 3),
        Pool("max", 2),
        Conv(8, 12, 3),
        Conv(12, 14, 3),
        Conv(14, 8, 1),
        Conv(8, 26, 3),
        Conv(26, 50, 1),
        Pool("avg", 5),
        Conv(50, 10, 1, normed=False),
    ),
    (1, 28, 28),
    10,
)
NETWORKS: dict[str, NetworkSpec] = {spec.name: spec for spec in (NORMNET,)}


def network_spec(name: str) -> NetworkSpec:
    """The registry's network `name`."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network '{name}'; known: {', '.join(NETWORKS)}")
    return NETWORKS[name]
