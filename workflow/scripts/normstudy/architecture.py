"""The write-ups' 7,652-parameter CNN and its norms' names as data, so config checks and reports need no torch."""

from __future__ import annotations

from typing import NamedTuple


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


# Write-ups 000/001: conv 1->8 3x3 (26x26), 8->8, 8->8, max-pool 2, 8->12, 12->14, 14->8 1x1, 8->26,
# 26->50 1x1, average-pool 5, 50->10 1x1, log-softmax.
LAYERS: tuple[Conv | Pool, ...] = (
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
)
INPUT_SIZE = 28
NUM_CLASSES = 10
NORMED_CHANNELS: tuple[int, ...] = tuple(
    layer.out_channels for layer in LAYERS if isinstance(layer, Conv) and layer.normed
)


def removes_per_image_affine_input(norm: str, layers: tuple[Conv | Pool, ...] = LAYERS) -> bool:
    """Whether the network's output cannot change under a per-image affine change of the input pixels (a contrast
    change): true for a norm over each image and channel alone behind a first convolution without bias or padding,
    which passes such a change on as a per-channel affine change that the norm removes (up to its epsilon)."""
    first = layers[0]
    return norm == "instance" and isinstance(first, Conv) and first.normed and first.padding == 0


def valid_group_counts() -> list[int]:
    """Group counts that divide every normalized layer's channel count."""
    return [g for g in range(1, min(NORMED_CHANNELS) + 1) if all(c % g == 0 for c in NORMED_CHANNELS)]


def receptive_field_rows(
    layers: tuple[Conv | Pool, ...] = LAYERS, input_size: int = INPUT_SIZE
) -> list[dict[str, int | str]]:
    """The receptive-field table (write-up 004's columns): size, jump and receptive field in and out per layer.

    Convolutions have stride 1; pools stride as wide as their kernel (PyTorch's default).
    """
    size, jump, field = input_size, 1, 1
    rows: list[dict[str, int | str]] = []
    for spec in layers:
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


def normalize_name(name: str) -> str:
    """Canonical norm name: 'BatchNorm', 'batch_norm' and 'batch' all become 'batch'."""
    key = name.strip().lower().replace("_", "").replace("-", "")
    return key.removesuffix("norm2d").removesuffix("norm") or key


# How the report names each norm's layer; C is the channel count.
NORM_LAYERS = {
    "batch": "BatchNorm2d(C)",
    "group": "GroupNorm({groups}, C)",
    "layer": "GroupNorm(1, C)",
    "instance": "GroupNorm(C, C)",
}


def describe_norm(name: str, groups: int | None = None) -> str:
    """The layer a norm name stands for, e.g. 'GroupNorm(2, C)' for group norm with two groups."""
    key = normalize_name(name)
    if key not in NORM_LAYERS:
        raise ValueError(f"unknown norm '{name}'; known: {', '.join(NORM_LAYERS)}")
    return NORM_LAYERS[key].format(groups=groups)
