"""Packed seeds: when the batch study trains a variant's seeds as one network, and how a pack is built and split.

A pack is several seeds of one variant and recipe trained as one NormNet with `copies` (grouped convolutions,
each model's norm over its own channels); each model gets its own loss, so each gets its own gradient.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from normstudy.settings import RunSettings

if TYPE_CHECKING:
    import torch

# The batch study packs a variant's seeds into one network at batch sizes up to this (batch_study.pack: auto).
# `make bench` (1 thread, 3 seeds packed against one model, img/s of every model's images, 2-core development
# machine, two runs): packing paid 1.25-2.24x for bn, gn and ln at every batch size from 2 to 16, 0.93-1.40x at
# 32, and cost 0.60-0.94x at 128 (README, Benchmark).
PACKING_PAYS_UP_TO = 16

# The runs one job trains: one, or several seeds of one variant and recipe packed into one network.
Pack = tuple[RunSettings, ...]


class PackError(ValueError):
    """Runs that cannot be trained as one packed network."""


def is_packed(config: dict[str, Any], batch_size: int) -> bool:
    """Whether the batch study trains its seeds at this size packed into one network (one job per variant): where
    the SGD batch is small enough for packing to pay (the ghost design keeps the recipe's batch at every size, the
    paper design takes `devices` statistics batches)."""
    study = config["batch_study"]
    if len(study["seeds"]) < 2:
        return False
    sgd_batch = {"ghost": config["train"]["batch_size"], "paper": batch_size * study["devices"]}.get(
        study["design"], batch_size
    )
    return {"always": True, "never": False, "auto": sgd_batch <= PACKING_PAYS_UP_TO}[study["pack"]]


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
