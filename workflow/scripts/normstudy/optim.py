"""torch's SGD and OneCycleLR, used without importing torch's compiler.

torch routes the optimizer's and scheduler's methods through torch._dynamo so that its compiler never traces
them, and imports the compiler on first use: about 3 s of every training job on the development machine
(cProfile of a smoke-study job: 8.5 s in all, 1.3 s of it training), for a compiler this project never runs.
Outside compilation those routes call the plain methods, which is what these do; the numbers are the same bits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR

__all__ = ["SGD", "OneCycleLR"]


class SGD(torch.optim.SGD):
    """torch.optim.SGD, stepped without the compiler's graph breaks (and so without importing the compiler)."""

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One SGD step under no_grad, as torch's own step does for a non-differentiable optimizer."""
        if self.defaults["differentiable"]:
            return super().step(closure)
        with torch.no_grad():
            return torch.optim.SGD.step.__wrapped__(self, closure)


def _call_directly() -> None:
    """Let the methods torch wraps with torch._compile._disable_dynamo call the plain method from their first use.

    The wrapper looks for the function to call under `__dynamo_disable` and imports the compiler only to make it.
    """
    wrapper_code = torch._compile._disable_dynamo(lambda: None).__code__
    for owner in (torch.optim.Optimizer, torch.optim.SGD, LRScheduler, OneCycleLR):
        for attribute in vars(owner).values():
            if getattr(attribute, "__code__", None) is wrapper_code:
                setattr(attribute.__wrapped__, "__dynamo_disable", attribute.__wrapped__)


_call_directly()
