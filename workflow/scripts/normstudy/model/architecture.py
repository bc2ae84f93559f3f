"""The network registry: each network as data (its layer table, input shape, classes and receptive field), so config
checks and reports need no torch. network.py builds the torch module from a spec; a dataset names its network.

Each network is one module of `model/nets/`, named as the network, that defines `SPEC`: a run imports and hashes its
own network's module alone, so adding a network reruns nothing of a study of another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from normstudy.data.datasets import dataset_spec, registry_names, registry_spec
from normstudy.model.norm_specs import NormSpec

# The folder of the network modules (listed, never imported as a whole).
NETS_DIR = Path(__file__).resolve().parent / "nets"
# The network a caller that names none builds (tests, benchmarks): the write-ups'.
DEFAULT_NETWORK = "normnet"


class Conv(NamedTuple):
    """A bias-free convolution; `normed` ones are followed by norm -> dropout -> ReLU. With `skip`, the layer's input
    is added to the norm's output, before the ReLU (write-up 004's block: conv -> norm -> + x -> ReLU -> dropout; a
    dropout just before or just after a ReLU gives the same values)."""

    in_channels: int
    out_channels: int
    kernel: int
    normed: bool = True
    padding: int = 0
    skip: bool = False


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

    def __post_init__(self) -> None:
        bad = [
            f"layer {index + 1} ({layer.in_channels}->{layer.out_channels}, kernel {layer.kernel} pad {layer.padding})"
            for index, layer in enumerate(self.layers)
            if isinstance(layer, Conv)
            and layer.skip
            and (layer.in_channels != layer.out_channels or layer.kernel != 2 * layer.padding + 1 or not layer.normed)
        ]
        if bad:
            raise ValueError(f"network {self.name}: a skip needs a normed layer of its input's shape: {'; '.join(bad)}")

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


def network_names() -> list[str]:
    """The registry's networks, from the module names in model/nets/ (listed, not imported: a run imports its own)."""
    return registry_names(NETS_DIR)


def network_spec(name: str) -> NetworkSpec:
    """The registry's network `name`: the SPEC of model/nets/<name>.py."""
    return registry_spec(NETS_DIR, name, "network")


def dataset_network(dataset: str) -> NetworkSpec:
    """The network the registry's dataset `dataset` is studied with."""
    return network_spec(dataset_spec(dataset).network)
