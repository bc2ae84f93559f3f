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
    # The value an optional parameter takes when a variant leaves it out (written into the run's settings).
    default: Any = None


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
    # The convolutions before it keep a bias (a norm that centres makes one redundant; the control keeps none either).
    conv_bias: bool = False
    # How those convolutions' weights start: "default" (torch's, which a norm after them makes harmless) or "he"
    # (He et al. 2015, normal with variance 2 / fan_in: the scale a ReLU network needs to pass its signal on without
    # a norm; under torch's, each of the 8 layers shrinks the second moment about 6-fold and the control cannot train).
    conv_init: str = "default"
    # Computes no statistics of its activations at all (the control, dynamic tanh): nothing to recompute at test time.
    stateless: bool = False
    # Parameters of which a variant names exactly one (group norm: `groups` or `channels_per_group`).
    one_of: tuple[str, ...] = ()
    # Where the layer's learnable parameters differ from the usual affine pair (2 per channel): the model section.
    parameters_text: str = "a scale and a shift per channel"
    aliases: tuple[str, ...] = field(default=())

    def layer(self, params: dict[str, Any] | None = None) -> str:
        """The layer this norm stands for with these parameter values, e.g. 'GroupNorm(2, C)', 'GroupNorm(C/2, C)'."""
        values = dict(params or {})
        if "channels_per_group" in values and "groups" not in values:
            values["groups"] = f"C/{values['channels_per_group']}"
        return self.layer_text.format(**values)

    def required_params(self) -> list[str]:
        """The parameters every variant of this norm must name (one of `one_of` apart)."""
        return [param.name for param in self.params if param.required and param.name not in self.one_of]

    def with_defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        """`values` with each optional parameter left out at its default, in the spec's order."""
        out = {}
        for param in self.params:
            if param.name in values:
                out[param.name] = values[param.name]
            elif param.default is not None:
                out[param.name] = param.default
        return out


GROUPS = NormParam(
    "groups",
    {"type": "integer", "minimum": 1},
    "Groups of channels per layer (norms group, group_ws, evonorm_s0); must divide every normalized layer's channel "
    "count. Group norm takes it or channels_per_group",
    divides_channels=True,
)
# The GN paper's second form (Wu & He 2018, section 3.1): a fixed number of channels in each group, whatever the width.
CHANNELS_PER_GROUP = NormParam(
    "channels_per_group",
    {"type": "integer", "minimum": 1},
    "Group norm's channels per group (GroupNorm(C / n, C)), instead of `groups`; must divide every normalized "
    "layer's channel count",
    required=False,
    divides_channels=True,
)
R_MAX = NormParam(
    "r_max",
    {"type": "number", "minimum": 1},
    "Batch renorm's bound on r = sigma_batch / sigma (clipped to [1/r_max, r_max]); 1 with d_max 0 is batch norm",
    required=False,
    default=3.0,
)
D_MAX = NormParam(
    "d_max",
    {"type": "number", "minimum": 0},
    "Batch renorm's bound on d = (mu_batch - mu) / sigma (clipped to [-d_max, d_max])",
    required=False,
    default=5.0,
)
RENORM_WARMUP = NormParam(
    "renorm_warmup",
    {"type": "integer", "minimum": 0},
    "Batch renorm's relaxation: r_max rises from 1 and d_max from 0 linearly over this many training steps, as the "
    "paper's schedule does (0: the bounds from the first step)",
    required=False,
    default=0,
)
# The paper's alpha_0 outside language models is 0.5, for networks with residual paths. In this plain 8-layer ReLU net
# (He-initialized) tanh(0.5 x) quarters the second moment at every layer: the logits start with a standard deviation
# of 0.00075 and 12 epochs of the synthetic test set leave the loss at ln 10. At 1.0 they start at 0.059, batch norm's
# net at 0.15 (64 random images, seed 0).
DYT_ALPHA = NormParam(
    "alpha_init",
    {"type": "number", "exclusiveMinimum": 0},
    "Dynamic tanh's initial alpha, one learnable scalar per layer (1.0 here; the paper's 0.5 starts this plain net's "
    "signal 400 times smaller)",
    required=False,
    default=1.0,
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
            "GroupNorm with `groups` groups, or groups of `channels_per_group` channels: statistics per image over "
            "each group of channels",
            batch_statistics=False,
            params=(GROUPS, CHANNELS_PER_GROUP),
            one_of=("groups", "channels_per_group"),
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
        # The control: the same network with the norm left out, and no bias added in its place.
        NormSpec(
            "none",
            "no normalization",
            "Identity (no norm; He-initialized convolutions without bias)",
            "no normalization: the norm left out (identity), the convolutions without bias and He-initialized",
            batch_statistics=False,
            stateless=True,
            conv_init="he",
            parameters_text="none: the network has no normalization parameters",
            aliases=("identity", "nonorm"),
        ),
        # Ioffe 2017: batch norm corrected towards its running averages by r and d (no gradient through either), so
        # training and evaluation see the same transform as the statistics batch shrinks.
        NormSpec(
            "batch_renorm",
            "batch renorm",
            "BatchRenorm2d(C, r_max={r_max}, d_max={d_max})",
            "Batch Renormalization: batch norm's batch statistics corrected towards the running ones by r and d",
            batch_statistics=True,
            params=(R_MAX, D_MAX, RENORM_WARMUP),
            aliases=("batchrenorm", "brn"),
        ),
        NormSpec(
            "group_ws",
            "group norm with weight standardization",
            "WS-Conv2d + GroupNorm({groups}, C)",
            "GroupNorm after weight-standardized convolutions (Qiao et al. 2019)",
            batch_statistics=False,
            params=(GROUPS,),
            conv="standardized",
            aliases=("gnws", "groupws"),
        ),
        # Singh & Krishnan 2020: no centring; its thresholded linear unit replaces the ReLU.
        NormSpec(
            "filter_response",
            "filter response norm",
            "FRN(C) + TLU",
            "Filter Response Normalization with its thresholded linear unit (replaces the ReLU)",
            batch_statistics=False,
            owns_activation=True,
            parameters_text="a scale, a shift and the TLU's threshold per channel (3 per channel)",
            aliases=("frn",),
        ),
        NormSpec(
            "rms",
            "RMS norm",
            "RMSNorm over (C, H, W), gain per channel",
            "RMS normalization over C x H x W per image with a gain per channel: layer norm without the centring",
            batch_statistics=False,
            parameters_text="a gain per channel, no shift (1 per channel)",
            aliases=("rmsnorm",),
        ),
        # Liu et al. 2020, the sample-based S0: x * sigmoid(v x) / group std(x), then the affine pair.
        NormSpec(
            "evonorm_s0",
            "EvoNorm-S0",
            "EvoNorm-S0({groups}, C)",
            "EvoNorm-S0: x * sigmoid(v x) over the group standard deviation per image (owns its activation)",
            batch_statistics=False,
            params=(GROUPS,),
            owns_activation=True,
            parameters_text="a scale, a shift and the sigmoid's v per channel (3 per channel)",
            aliases=("evonorms0", "evonorm"),
        ),
        # Zhu, Chen, He, LeCun & Liu 2025: tanh(alpha x) with a per-channel affine, no statistics at all.
        NormSpec(
            "dyt",
            "dynamic tanh",
            "DyT(C): tanh(alpha x), scale and shift per channel (He-initialized convolutions)",
            "Dynamic Tanh: tanh(alpha x) with a learnable scalar alpha per layer and a per-channel affine",
            batch_statistics=False,
            params=(DYT_ALPHA,),
            stateless=True,
            # No statistics rescale the signal, so the convolutions start as a ReLU network without a norm needs.
            conv_init="he",
            parameters_text="a scale and a shift per channel, and one alpha per layer",
            aliases=("dynamictanh",),
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
    """A configured variant's values of its norm's parameters, by name, the optional ones left out at their
    defaults."""
    return norm_spec(variant["norm"]).with_defaults(variant)


def all_params() -> dict[str, NormParam]:
    """Every norm parameter by name (a name two norms share means the same setting)."""
    return {param.name: param for spec in NORMS.values() for param in spec.params}


def statistics_words(variants: dict[str, str]) -> str:
    """How the variants (name -> norm) compute their statistics, for the robustness section: which are per image,
    which keep none; the batch-statistics norms are the section's subject and are not listed."""
    per_image = [
        name for name, norm in variants.items() if not NORMS[norm].batch_statistics and not NORMS[norm].stateless
    ]
    stateless = [name for name, norm in variants.items() if NORMS[norm].stateless]
    said = []
    if per_image:
        said.append(
            f"{', '.join(per_image)} compute their statistics per image, so their one mode is already per image"
        )
    if stateless:
        said.append(
            f"{', '.join(stateless)} compute no statistics at all: there is nothing for PreciseBN or adaptation to "
            "recompute, and their one mode is the model as trained"
        )
    return ("; ".join(said) + ".") if said else ""
