"""The norm registry: one torch-free spec per normalization, so the schema, the recipes, the resource estimates, the
batch-size and robustness studies and the report ask a spec what a norm is, and never compare its name.

A norm's torch layer is its builder in norms.py, registered under the same name (a test checks that every spec has
one). Adding a norm is its spec here, its builder there, and its entry in config.yaml's comment (docs/extending.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NormParam:
    """A setting of a norm, written as a key of the variants that use it (`groups: 2`)."""

    name: str
    schema: dict[str, Any]  # the JSON schema of its value, put into the config schema's variant properties
    description: str
    required: bool = True
    # The value must divide the channel count of every normalized layer of the network (group norm's groups).
    divides_channels: bool = False


@dataclass(frozen=True)
class NormSpec:
    """What one normalization is, as the study asks it."""

    name: str  # the config's `norm` value
    title: str  # how a sentence names it: "batch norm"
    layer_text: str  # how the report names its layer; C is the channel count, {param} a parameter's value
    description: str  # the config schema's words for it
    # Takes its training statistics over the batch: PreciseBN, test-time adaptation and ghost batches apply to it,
    # and the batch-size study compares it against the norms that do not.
    batch_statistics: bool
    params: tuple[NormParam, ...] = ()
    # The tensor layout its training step runs faster in on the CPU (train.memory_format: auto), from `make bench`.
    faster_layout: str = "channels_last"
    # A training epoch of 60,000 images on one core, in seconds: the resource estimate's basis (resources.smk).
    seconds_per_epoch: float = 20.0
    # The layer applies its own activation: the block leaves out its ReLU (filter response norm + TLU, EvoNorm).
    owns_activation: bool = False
    # How the convolution before it is parameterized: "plain", or "standardized" (weight standardization).
    conv: str = "plain"
    # Normalizes each image and channel on its own, centring and scaling: a per-image affine change of the input
    # pixels passed through a bias-free, unpadded first convolution is removed (the report's contrast claim).
    removes_image_affine: bool = False
    aliases: tuple[str, ...] = field(default=())

    def layer(self, params: dict[str, Any] | None = None) -> str:
        """The layer this norm stands for with these parameter values, e.g. 'GroupNorm(2, C)'."""
        return self.layer_text.format(**(params or {}))


GROUPS = NormParam(
    "groups",
    {"type": "integer", "minimum": 1},
    "GroupNorm groups (norm group only, and required there); must divide every normalized layer's channel count",
    divides_channels=True,
)

# Layouts measured by `make bench` (1 thread, batch 128, 2-core development machine, img/s channels_last vs
# contiguous): batch 4,284 vs 3,720, group 4,226 vs 4,292, layer 5,100 vs 4,195, instance 2,472 vs 4,075
# (GroupNorm(C, C) over NHWC is 1.6x slower).
NORMS: dict[str, NormSpec] = {
    spec.name: spec
    for spec in (
        NormSpec(
            "batch",
            "batch norm",
            "BatchNorm2d(C)",
            "BatchNorm2d: statistics per channel over the batch and the map",
            batch_statistics=True,
        ),
        NormSpec(
            "group",
            "group norm",
            "GroupNorm({groups}, C)",
            "GroupNorm with `groups` groups: statistics per image over each group of channels",
            batch_statistics=False,
            params=(GROUPS,),
        ),
        # Layer norm for CNNs: statistics over C x H x W per image, one affine pair per channel. Write-up 001's
        # nn.LayerNorm(W) normalizes over the width alone (52 params on [8, 26, 26]): a known mistake.
        NormSpec(
            "layer",
            "layer norm",
            "GroupNorm(1, C)",
            "GroupNorm(1, C): statistics per image over all channels and the map",
            batch_statistics=False,
        ),
        # GroupNorm(C, C) rather than nn.InstanceNorm2d, whose affine is off by default: same statistics, and the
        # same 2C parameters as every other norm.
        NormSpec(
            "instance",
            "instance norm",
            "GroupNorm(C, C)",
            "GroupNorm(C, C): statistics per image and channel over the map",
            batch_statistics=False,
            faster_layout="contiguous",
            removes_image_affine=True,
        ),
    )
}


def canonical_name(name: str) -> str:
    """Canonical norm name: 'BatchNorm', 'batch_norm' and 'batch' all become 'batch'; a registered name that ends in
    'norm' itself ('batch_renorm') is matched as written before the suffix is dropped."""
    key = name.strip().lower().replace("_", "").replace("-", "")
    for candidate in (key, key.removesuffix("2d"), key.removesuffix("norm2d").removesuffix("norm")):
        for spec in NORMS.values():
            if candidate and candidate in (spec.name.replace("_", ""), *spec.aliases):
                return spec.name
    return key


def norm_spec(name: str) -> NormSpec:
    """The spec of the norm `name` (any spelling canonical_name knows)."""
    key = canonical_name(name)
    if key not in NORMS:
        raise ValueError(f"unknown norm '{name}'; known: {', '.join(NORMS)}")
    return NORMS[key]


def takes_batch_statistics(name: str) -> bool:
    """Whether the norm `name` takes its training statistics over the batch."""
    return norm_spec(name).batch_statistics


def norm_params(variant: dict[str, Any]) -> dict[str, Any]:
    """A configured variant's values of its norm's parameters, by name."""
    return {param.name: variant[param.name] for param in norm_spec(variant["norm"]).params if param.name in variant}


def all_params() -> dict[str, NormParam]:
    """Every norm parameter by name (a name two norms share means the same setting)."""
    return {param.name: param for spec in NORMS.values() for param in spec.params}
