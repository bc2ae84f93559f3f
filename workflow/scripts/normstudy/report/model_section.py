"""The report's model section: each variant's norm, layer and parameters, and what its group norm is here."""

from __future__ import annotations

from typing import Any

import pandas as pd

from normstudy.config.study import Study
from normstudy.model.architecture import dataset_network
from normstudy.values import flat_keys

# Wu & He 2018 (Group Normalization), section 4: 32 groups on ResNet-50's layers, 64 to 2,048 channels wide.
GN_PAPER_GROUPS = 32
GN_PAPER_WIDTHS = (64, 2048)


def span(values: tuple[int, ...]) -> str:
    """The range of a per-layer count: '4', or '4–25' (an en dash, as the report prints ranges)."""  # noqa: RUF002
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def layer_groups(study: Study, name: str) -> tuple[int, ...] | None:
    """Each normalized layer's group count for one variant (None: its norm forms no groups)."""
    params = study.variants[name].params
    channels = dataset_network(study.data.dataset).normed_channels
    if "channels_per_group" in params:
        return tuple(width // params["channels_per_group"] for width in channels)
    if "groups" in params:
        return tuple(params["groups"] for _ in channels)
    return None


def variant_rows(study: Study, summary: pd.DataFrame) -> list[dict[str, Any]]:
    """Per variant of the summary: its norm, the layer it stands for, group count per layer, L1 weight, dropout, its
    own train keys, and its parameter count with what its norm's own parameters are."""
    rows = []
    params = dict(zip(summary["variant"], summary["params"].astype(int), strict=True))
    for name in params:
        variant = study.variants[name]
        groups = layer_groups(study, name)
        own = flat_keys(variant.train)
        rows.append(
            {
                "name": name,
                "norm": variant.norm,
                "layer": variant.spec.layer(variant.params),
                "groups": "–" if groups is None else span(groups),
                "l1": variant.l1,
                "dropout": variant.dropout,
                "own_train": ", ".join(f"{key} {value}" for key, value in own.items()) or "–",
                "params": params[name],
                "norm_params": variant.spec.parameters_text,
                "owns_activation": variant.spec.owns_activation,
            }
        )
    return rows


def group_note(study: Study, names: list[str]) -> str:
    """What group norm is on this network beside the GN paper's operating point ('' without a grouped variant)."""
    network = dataset_network(study.data.dataset)
    channels = network.normed_channels
    grouped = []
    for name in names:
        groups = layer_groups(study, name)
        if groups is not None:
            widths = tuple(width // count for width, count in zip(channels, groups, strict=True))
            grouped.append(f"{name}, {span(groups)} groups of {span(widths)} channels")
    if not grouped:
        return ""
    fixed = " or ".join(map(str, network.valid_divisors()))
    return (
        f"The GN paper (Wu & He 2018) used {GN_PAPER_GROUPS} groups on layers {GN_PAPER_WIDTHS[0]:,} to "
        f"{GN_PAPER_WIDTHS[1]:,} channels wide ({GN_PAPER_WIDTHS[0] // GN_PAPER_GROUPS} channels or more per group). "
        f"This network's normalized layers are {min(channels)} to {max(channels)} channels wide, so a group count "
        f"that divides them all is {fixed}, or the group holds a fixed number of channels (the paper's second form). "
        f"Per layer, here: {'; '.join(grouped)}. Neither form reaches the paper's operating point on every layer."
    )


def conv_note(study: Study, names: list[str]) -> str:
    """How the normalized convolutions are parameterized per variant: bias or none, and how their weights start."""
    specs = {name: study.variants[name].spec for name in names}
    with_bias = [name for name, spec in specs.items() if spec.conv_bias]
    he = [name for name, spec in specs.items() if spec.conv_init == "he"]
    standardized = [name for name, spec in specs.items() if spec.conv == "standardized"]
    bias = (
        "The normalized convolutions have no bias in any variant"
        if not with_bias
        else f"The normalized convolutions have a bias in {', '.join(with_bias)} only"
    )
    init = "their weights start from torch's default initialization"
    if he:
        init += (
            f", except in {', '.join(he)}: He-initialized (normal, variance 2 / fan-in), since without a norm torch's "
            "default shrinks the signal's second moment layer by layer"
        )
    weights = ""
    if standardized:
        weights = (
            f". In {', '.join(standardized)} each convolution's weights are standardized per output channel before "
            "use (zero mean, unit variance)"
        )
    return f"{bias}; {init}{weights}."


def model_note(study: Study, names: list[str]) -> str:
    """The paragraph under the model table: the convolutions' parameterization, and group norm here."""
    return " ".join(note for note in (conv_note(study, names), group_note(study, names)) if note)
