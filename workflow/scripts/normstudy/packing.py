"""Packed seeds: how a pack of one variant's seeds is built as one network and split (recipes.is_packed decides
where the batch study packs).

A pack is several seeds of one variant and recipe trained as one NormNet with `copies` (grouped convolutions,
each model's norm over its own channels); each model gets its own loss, so each gets its own gradient.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from normstudy.settings import RunSettings

if TYPE_CHECKING:
    import torch


# The runs one job trains: one, or several seeds of one variant and recipe packed into one network.
Pack = tuple[RunSettings, ...]


class PackError(ValueError):
    """Runs that cannot be trained as one packed network."""


def check_pack(pack: Pack) -> None:
    """A pack is runs that differ in their seed alone, each seed once."""
    if not pack:
        raise PackError("a pack needs at least one run")
    seeds = [settings.seed for settings in pack]
    if len(set(seeds)) < len(seeds):
        raise PackError(f"a pack trains each seed once, not seeds {seeds}")
    first = pack[0]
    for settings in pack[1:]:
        if dataclasses.replace(settings, seed=first.seed) != first:
            raise PackError(
                f"seed {settings.seed} has other settings than seed {first.seed}: only runs that differ in their seed "
                "can be packed into one network"
            )


def pack_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The state dict of a packed NormNet holding these models, model i as block i of every tensor.

    Every weight, affine and running statistic of this network has the output channel first, so packing is a
    concatenation along dim 0; BatchNorm's step counter is a scalar the models share.
    """
    # Imported here: the workflow reads this module's policy at parse time, and torch takes seconds to load.
    import torch

    first = states[0]
    return {
        key: first[key].clone() if first[key].dim() == 0 else torch.cat([state[key] for state in states])
        for key in first
    }


def unpack_state_dict(packed: dict[str, torch.Tensor], copies: int) -> list[dict[str, torch.Tensor]]:
    """The state dicts of the `copies` models a packed NormNet holds (the inverse of pack_state_dicts)."""
    return [
        {
            key: tensor.clone() if tensor.dim() == 0 else tensor.chunk(copies)[index].clone()
            for key, tensor in packed.items()
        }
        for index in range(copies)
    ]


def per_model(log_probs: torch.Tensor) -> torch.Tensor:
    """A model's [N, 10] output, or a packed model's [N, k, 10], as [N, k, 10]."""
    return log_probs.unsqueeze(1) if log_probs.dim() == 2 else log_probs


def model_losses(log_probs: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
    """Each packed model's mean NLL loss on its own batch, as a [k] tensor; their sum trains each on its own."""
    import torch  # see pack_state_dicts
    import torch.nn.functional as F

    packed = per_model(log_probs)
    return torch.stack([F.nll_loss(packed[:, index], target) for index, target in enumerate(targets)])
