"""Training and evaluation on in-memory tensors: seeded, resumable from per-epoch checkpoints."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from normstudy import atomic
from normstudy.config import RunSettings, steps_per_epoch
from normstudy.data import Splits, eval_batch, training_batch
from normstudy.model import build_model, conv_weights


def history_columns(eval_split: str = "test") -> tuple[str, ...]:
    """history.csv's columns; a tuning run's evaluation columns are val_loss and val_acc."""
    return ("epoch", "lr", "train_loss", "train_acc", f"{eval_split}_loss", f"{eval_split}_acc", "seconds")


HISTORY_COLUMNS = history_columns()
# The files whose code decides a run's numbers: a checkpoint from other code is never resumed.
PACKAGE_DIR = Path(__file__).resolve().parent
ENGINE_MODULES = ("engine.py", "data.py", "model.py", "norms.py", "architecture.py", "idx.py", "config.py")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite: the recipe does not train this variant, and no output is written."""


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when available, else the CPU; `cuda` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but torch sees no CUDA device")
    return torch.device(name)


def seed_everything(seed: int, device: torch.device) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA), pick deterministic kernels, return the data generator."""
    # Must be set before cuBLAS starts, for deterministic matrix products on CUDA.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a run draws from, in types torch.load(weights_only=True) accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.array(keys)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": generator.get_state(),
    }


def restore_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Put back what rng_state saved."""
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["generator"])


def code_digest() -> str:
    """SHA-256 over the modules that decide a run's numbers."""
    digest = hashlib.sha256()
    for name in ENGINE_MODULES:
        digest.update(name.encode() + b"\0" + (PACKAGE_DIR / name).read_bytes())
    return digest.hexdigest()


def checkpoint_key(settings: RunSettings, data_sha256: dict[str, str], device: torch.device, threads: int) -> str:
    """What a checkpoint must match to be resumed: settings, the data's checksums, code, torch, device, threads."""
    key = {
        "settings": settings.digest(),
        "data": data_sha256,
        "code": code_digest(),
        "torch": torch.__version__,
        "device": device.type,
        "threads": threads,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def memory_format(settings: RunSettings) -> torch.memory_format:
    """The tensor layout a run trains and evaluates in (resolved per norm in its settings)."""
    return MEMORY_FORMATS[settings.train.memory_format]


def prepare_model(settings: RunSettings, device: torch.device) -> nn.Module:
    """The variant's model on `device`, in the memory format the run trains (and evaluates) in."""
    return build_model(settings.variant).to(device=device, memory_format=memory_format(settings))


def save_torch(path: Path, obj: Any) -> None:
    """torch.save, atomically and byte-reproducibly.

    Saved to a path, torch names the zip's inner folder after the (temporary) file name; saved to a buffer it is
    always "archive", so identical objects give identical files.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic.write_bytes(path, buffer.getvalue())


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of |w| over every convolution weight."""
    return torch.stack([w.abs().sum() for w in conv_weights(model)]).sum()


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: float,
    std: float,
    batch_size: int = 1000,
    layout: torch.memory_format = torch.contiguous_format,
) -> tuple[float, float, torch.Tensor]:
    """Mean NLL loss, accuracy in percent, and the [N, 10] log-probabilities on a test set."""
    model.eval()
    outputs = [
        model(eval_batch(images[i : i + batch_size], mean, std).contiguous(memory_format=layout))
        for i in range(0, len(images), batch_size)
    ]
    log_probs = torch.cat(outputs)
    loss = F.nll_loss(log_probs, labels, reduction="sum").item() / len(labels)
    accuracy = 100.0 * (log_probs.argmax(1) == labels).sum().item() / len(labels)
    return loss, accuracy, log_probs


@dataclass
class Run:
    """Everything a training run updates, and what it checkpoints after each epoch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0
    key: str = ""  # the checkpoint key it was trained under (see checkpoint_key)

    def checkpoint(self, path: Path, key: str) -> None:
        """Save the run's whole state atomically, so a killed job resumes where it was."""
        state = {
            "settings_hash": key,
            "epoch": len(self.history),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "rng": rng_state(self.generator),
        }
        save_torch(path, state)

    def resume(self, path: Path, key: str, log: Callable[[str], None]) -> int:
        """Load a checkpoint made with the same settings hash; return the epochs it holds (0 if none)."""
        if not path.exists():
            return 0
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a checkpoint torch cannot read is as good as none
            log(f"checkpoint {path} unreadable ({error}); starting afresh")
            return 0
        if state.get("settings_hash") != key:
            log(f"checkpoint {path} is from other settings, data or code; starting afresh")
            return 0
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = list(state["history"])
        restore_rng_state(state["rng"], self.generator)
        log(f"resumed from {path} after epoch {state['epoch']}")
        self.resumed_from = int(state["epoch"])
        return self.resumed_from


def new_run(settings: RunSettings, train_size: int, device: torch.device, generator: torch.Generator) -> Run:
    """Model, SGD and OneCycleLR for one variant's settings."""
    recipe, schedule, sgd = settings.train, settings.train.schedule, settings.train.optimizer
    total_steps = recipe.epochs * steps_per_epoch(train_size, recipe.batch_size)
    if schedule.pct_start * total_steps <= 1:
        raise ValueError(f"OneCycleLR: pct_start {schedule.pct_start} of {total_steps} steps is under one step")
    model = prepare_model(settings, device)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=schedule.max_lr / schedule.div_factor,
        momentum=sgd.momentum,
        weight_decay=sgd.weight_decay,
        nesterov=sgd.nesterov,
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=schedule.max_lr,
        total_steps=total_steps,
        pct_start=schedule.pct_start,
        div_factor=schedule.div_factor,
        final_div_factor=schedule.final_div_factor,
        anneal_strategy=schedule.anneal_strategy,
        # The momentum is the configured one; OneCycleLR would otherwise cycle it between 0.85 and 0.95.
        cycle_momentum=False,
    )
    return Run(model, optimizer, scheduler, generator)


def train_epoch(run: Run, splits: Splits, settings: RunSettings, progress: bool = False) -> tuple[float, float, float]:
    """One pass over the shuffled training set: (mean loss, accuracy %, learning rate of its last step)."""
    data, l1 = settings.data, settings.variant.l1
    batch_size, degrees = settings.train.batch_size, settings.train.augment.rotation_degrees
    layout = memory_format(settings)
    images, labels = splits.train_images, splits.train_labels
    order = torch.randperm(len(images), generator=run.generator, device=run.generator.device).to(images.device)
    steps = steps_per_epoch(len(images), batch_size)
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    seen = 0
    run.model.train()
    for step in tqdm(range(steps), disable=not progress, leave=False, unit="batch"):
        index = order[step * batch_size : (step + 1) * batch_size]
        inputs = training_batch(images[index], degrees, data.mean, data.std, run.generator)
        inputs = inputs.contiguous(memory_format=layout)
        targets = labels[index]
        log_probs = run.model(inputs)
        loss = F.nll_loss(log_probs, targets)
        objective = loss + l1 * l1_penalty(run.model) if l1 > 0 else loss
        run.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        lr = run.optimizer.param_groups[0]["lr"]
        run.optimizer.step()
        run.scheduler.step()
        # Accumulated on the device: a .item() per step would wait for the GPU every batch.
        loss_sum += loss.detach() * len(index)
        correct += (log_probs.detach().argmax(1) == targets).sum()
        seen += len(index)
    return loss_sum.item() / seen, 100.0 * correct.item() / seen, lr


def check_finite(epoch: int, settings: RunSettings, **values: float) -> None:
    """Refuse an epoch whose losses are NaN or infinite, naming the recipe value most likely to blame."""
    bad = {name: value for name, value in values.items() if not math.isfinite(value)}
    if bad:
        said = ", ".join(f"{name} {value}" for name, value in bad.items())
        raise TrainingDivergedError(
            f"{settings.variant.name} seed {settings.seed}: epoch {epoch} ended with {said}; training diverged. "
            f"Lower train.schedule.max_lr (now {settings.train.schedule.max_lr}), train.optimizer.weight_decay "
            f"(now {settings.train.optimizer.weight_decay}) or the L1 weight (now {settings.variant.l1}); "
            "nothing was written"
        )


def fit(
    settings: RunSettings,
    splits: Splits,
    device: torch.device,
    threads: int,
    checkpoint_path: Path,
    log: Callable[[str], None] = print,
    stop_after_epoch: int | None = None,
) -> Run:
    """Train one variant for one seed, resuming from `checkpoint_path` when it matches these settings and data."""
    torch.set_num_threads(threads)
    generator = seed_everything(settings.seed, device)
    run = new_run(settings, len(splits.train_images), device, generator)
    key = run.key = checkpoint_key(settings, splits.sha256, device, threads)
    done = run.resume(checkpoint_path, key, log)
    progress = sys.stderr.isatty()
    mean, std, epochs = settings.data.mean, settings.data.std, settings.train.epochs
    for epoch in range(done + 1, epochs + 1):
        started = time.perf_counter()
        train_loss, train_acc, lr = train_epoch(run, splits, settings, progress)
        eval_loss, eval_acc, _ = evaluate(
            run.model, splits.eval_images, splits.eval_labels, mean, std, layout=memory_format(settings)
        )
        split = splits.eval_split
        check_finite(epoch, settings, train_loss=train_loss, **{f"{split}_loss": eval_loss})
        row = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": train_loss,
            "train_acc": train_acc,
            f"{split}_loss": eval_loss,
            f"{split}_acc": eval_acc,
            "seconds": time.perf_counter() - started,
        }
        run.history.append(row)
        run.checkpoint(checkpoint_path, key)
        log(
            f"epoch {epoch:3d}/{epochs}  lr {lr:.5f}  train loss {train_loss:.4f} "
            f"acc {train_acc:.2f}%  {split} loss {eval_loss:.4f} acc {eval_acc:.2f}%  {row['seconds']:.1f} s"
        )
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            raise InterruptedError(f"stopped after epoch {epoch} as asked (--stop-after-epoch)")
    return run
