"""Seeding and random state: every generator a run draws from, seeded for determinism and saved for resume."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, device: torch.device) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA), pick deterministic kernels, return the data generator."""
    # Must be set before cuBLAS starts, for deterministic matrix products on CUDA.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    deterministic_kernels()
    # Deterministic mode also fills every new tensor with NaN, a debugging aid that cost 10 % of a CPU step
    # (torch.profiler: aten::fill_, 240 calls a step); no kernel reads memory it has not written.
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.benchmark = False
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def deterministic_kernels() -> None:
    """Make ATen pick deterministic kernels (warning where it has none), as torch.use_deterministic_algorithms does."""
    # The public call also imports torch._inductor to set the compiler's flag: 1.5 s of every training job's 5 s
    # on the smoke study (python -X importtime), for a compiler this project never runs.
    torch._C._set_deterministic_algorithms(True, warn_only=True)


def rng_state(generators: list[torch.Generator]) -> dict[str, Any]:
    """Every random state a run draws from, in types torch.load(weights_only=True) accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.array(keys)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": [generator.get_state() for generator in generators],
    }


def restore_rng_state(state: dict[str, Any], generators: list[torch.Generator]) -> None:
    """Put back what rng_state saved."""
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    for generator, saved in zip(generators, state["generators"], strict=True):
        generator.set_state(saved)
