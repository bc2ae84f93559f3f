"""Training and evaluation on in-memory tensors: seeded, resumable from per-epoch checkpoints.

A job trains one run, or a pack: several seeds of one variant and recipe trained as one packed network
(model.NormNet with copies), each with its own initial weights, data order and rotations. Packed and alone, a
seed's model computes the same sums in another order; each mode is bitwise deterministic on its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from normstudy.data.tensors import Splits, eval_batch, training_batch
from normstudy.layout import PACKAGE_DIR, package_files
from normstudy.model.architecture import dataset_network
from normstudy.model.network import build_model, conv_weights
from normstudy.model_file import save_torch
from normstudy.optim import SGD, OneCycleLR
from normstudy.packing import Pack, check_pack, model_losses, pack_state_dicts, per_model
from normstudy.seeding import restore_rng_state, rng_state, seed_everything
from normstudy.settings import RunSettings, run_code_modules, steps_per_epoch


def history_columns(eval_split: str = "test") -> tuple[str, ...]:
    """history.csv's columns; a tuning run's evaluation columns are val_loss and val_acc."""
    return ("epoch", "lr", "train_loss", "train_acc", f"{eval_split}_loss", f"{eval_split}_acc", "seconds")


HISTORY_COLUMNS = history_columns()


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite in `epoch`: the recipe does not train this variant. A study run writes no
    output; a tuning run records the divergence as its result (train.py)."""

    def __init__(self, message: str, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when available, else the CPU; `cuda` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but torch sees no CUDA device")
    return torch.device(name)


def code_digest(dataset: str) -> str:
    """SHA-256 over the modules that decide the numbers of a run on `dataset` (settings.run_code_modules): a checkpoint
    made by other code is never resumed."""
    digest = hashlib.sha256()
    for path in package_files(run_code_modules(dataset), PACKAGE_DIR):
        name = path.relative_to(PACKAGE_DIR).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def checkpoint_key(pack: Pack, data_sha256: dict[str, str], device: torch.device, threads: int) -> str:
    """What a checkpoint must match to be resumed: each run's settings, the data's checksums, code, torch, device,
    threads."""
    key = {
        "settings": [settings.digest() for settings in pack],
        "data": data_sha256,
        "code": [code_digest(dataset) for dataset in sorted({settings.data.dataset for settings in pack})],
        "torch": torch.__version__,
        "device": device.type,
        "threads": threads,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def memory_format(settings: RunSettings) -> torch.memory_format:
    """The tensor layout a run trains and evaluates in (resolved per norm in its settings)."""
    return MEMORY_FORMATS[settings.train.memory_format]


def prepare_model(settings: RunSettings, device: torch.device, copies: int = 1) -> nn.Module:
    """The variant's model (`copies` of it packed) on `device`, in the memory format the run trains and evaluates in:
    the registry network its dataset is studied with."""
    network = dataset_network(settings.data.dataset)
    return build_model(settings.variant, copies, network).to(device=device, memory_format=memory_format(settings))


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of |w| over every convolution weight."""
    return torch.stack([w.abs().sum() for w in conv_weights(model)]).sum()


@torch.inference_mode()
def evaluate_pack(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: float,
    std: float,
    batch_size: int = 1000,
    layout: torch.memory_format = torch.contiguous_format,
) -> list[tuple[float, float, torch.Tensor]]:
    """Per packed model (one for a plain NormNet), with its running statistics: mean NLL loss, accuracy in percent
    and the [N, 10] log-probabilities on a test set, which every model of the pack sees whole."""
    model.eval()
    copies = getattr(model, "copies", 1)
    outputs = [
        per_model(
            model(
                # Each packed model its own copy of the images' channels (a colour image's three for each).
                eval_batch(images[i : i + batch_size], mean, std)
                .repeat(1, copies, 1, 1)
                .contiguous(memory_format=layout)
            )
        )
        for i in range(0, len(images), batch_size)
    ]
    stacked = torch.cat(outputs)
    results = []
    for index in range(copies):
        log_probs = stacked[:, index]
        loss = F.nll_loss(log_probs, labels, reduction="sum").item() / len(labels)
        accuracy = 100.0 * (log_probs.argmax(1) == labels).sum().item() / len(labels)
        results.append((loss, accuracy, log_probs))
    return results


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: float,
    std: float,
    batch_size: int = 1000,
    layout: torch.memory_format = torch.contiguous_format,
) -> tuple[float, float, torch.Tensor]:
    """Mean NLL loss, accuracy in percent, and the [N, 10] log-probabilities of one model on a test set."""
    (result,) = evaluate_pack(model, images, labels, mean, std, batch_size, layout)
    return result


@dataclass
class Run:
    """Everything a training job updates, and what it checkpoints after each epoch: one model, or a packed one."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generators: list[torch.Generator]  # per packed model: its data order and rotations
    histories: list[list[dict[str, float]]] = field(default_factory=list)  # per packed model, one row per epoch
    resumed_from: int = 0
    key: str = ""  # the checkpoint key it was trained under (see checkpoint_key)
    settings_digests: list[str] = field(default_factory=list)  # per packed model, its settings' digest

    @property
    def history(self) -> list[dict[str, float]]:
        """The history of a job that trains one model."""
        (history,) = self.histories
        return history

    def checkpoint(self, path: Path, key: str) -> None:
        """Save the run's whole state atomically, so a killed job resumes where it was."""
        state = {
            "settings_hash": key,
            "settings_digests": self.settings_digests,
            "epoch": len(self.histories[0]),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "histories": self.histories,
            "rng": rng_state(self.generators),
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
        self.histories = [list(history) for history in state["histories"]]
        restore_rng_state(state["rng"], self.generators)
        log(f"resumed from {path} after epoch {state['epoch']}")
        self.resumed_from = int(state["epoch"])
        return self.resumed_from


def new_run(pack: Pack, train_size: int, device: torch.device) -> Run:
    """Seeded model, SGD and OneCycleLR for a pack of runs (one run: a pack of one).

    Each seed's model gets the initial weights and the data generator it would get alone (seed_everything, then
    the model), so that a packed seed starts where its unpacked run starts.
    """
    check_pack(pack)
    settings = pack[0]
    recipe, schedule, sgd = settings.train, settings.train.schedule, settings.train.optimizer
    total_steps = recipe.epochs * steps_per_epoch(train_size, recipe.batch_size)
    if schedule.pct_start * total_steps <= 1:
        raise ValueError(f"OneCycleLR: pct_start {schedule.pct_start} of {total_steps} steps is under one step")
    generators, states = [], []
    for member in pack:
        generators.append(seed_everything(member.seed, device))
        model = prepare_model(member, device)
        states.append(model.state_dict())
    if len(pack) > 1:
        model = prepare_model(settings, device, copies=len(pack))
        model.load_state_dict(pack_state_dicts(states))
    optimizer = SGD(
        model.parameters(),
        lr=schedule.max_lr / schedule.div_factor,
        momentum=sgd.momentum,
        weight_decay=sgd.weight_decay,
        nesterov=sgd.nesterov,
    )
    scheduler = OneCycleLR(
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
    return Run(model, optimizer, scheduler, generators, [[] for _ in pack])


def train_epoch(
    run: Run, splits: Splits, settings: RunSettings, progress: bool = False
) -> tuple[list[float], list[float], float]:
    """One pass over the shuffled training set per packed model: (mean loss, accuracy %) of each, and the learning
    rate of the last step."""
    data, l1 = settings.data, settings.variant.l1
    batch_size, augment = settings.train.batch_size, settings.train.augment
    layout = memory_format(settings)
    images, labels = splits.train_images, splits.train_labels
    orders = [
        torch.randperm(len(images), generator=generator, device=generator.device).to(images.device)
        for generator in run.generators
    ]
    steps = steps_per_epoch(len(images), batch_size)
    copies = len(run.generators)
    loss_sum = torch.zeros(copies, device=images.device)
    correct = torch.zeros(copies, dtype=torch.long, device=images.device)
    seen = 0
    run.model.train()
    for step in tqdm(range(steps), disable=not progress, leave=False, unit="batch"):
        indices = [order[step * batch_size : (step + 1) * batch_size] for order in orders]
        batches = [
            training_batch(
                images[index],
                augment.rotation_degrees,
                data.mean,
                data.std,
                generator,
                augment.crop_padding,
                augment.horizontal_flip,
            )
            for index, generator in zip(indices, run.generators, strict=True)
        ]
        # Model i of a pack reads input channel i: its own images, in its own order and rotations.
        inputs = (batches[0] if copies == 1 else torch.cat(batches, dim=1)).contiguous(memory_format=layout)
        targets = [labels[index] for index in indices]
        log_probs = run.model(inputs)
        losses = model_losses(log_probs, targets)
        objective = losses.sum()
        if l1 > 0:
            # The packed weights' sum of |w| is the models' sums added: each model's gradient is its own.
            objective = objective + l1 * l1_penalty(run.model)
        run.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        lr = run.optimizer.param_groups[0]["lr"]
        run.optimizer.step()
        run.scheduler.step()
        # Accumulated on the device: a .item() per step would wait for the GPU every batch.
        count = len(indices[0])
        loss_sum += losses.detach() * count
        predictions = per_model(log_probs.detach()).argmax(2)
        correct += torch.stack([(predictions[:, i] == target).sum() for i, target in enumerate(targets)])
        seen += count
    return [total / seen for total in loss_sum.tolist()], [100.0 * hits / seen for hits in correct.tolist()], lr


def check_finite(epoch: int, settings: RunSettings, **values: float) -> None:
    """Refuse an epoch whose losses are NaN or infinite, naming the recipe value most likely to blame."""
    bad = {name: value for name, value in values.items() if not math.isfinite(value)}
    if bad:
        said = ", ".join(f"{name} {value}" for name, value in bad.items())
        raise TrainingDivergedError(
            f"{settings.variant.name} seed {settings.seed}: epoch {epoch} ended with {said}; training diverged. "
            f"Lower train.schedule.max_lr (now {settings.train.schedule.max_lr}), train.optimizer.weight_decay "
            f"(now {settings.train.optimizer.weight_decay}) or the L1 weight (now {settings.variant.l1})",
            epoch,
        )


def last_finished(
    pack: Pack,
    splits: Splits,
    device: torch.device,
    threads: int,
    checkpoint_path: Path,
    log: Callable[[str], None] = print,
) -> Run:
    """The pack as its last finished epoch left it (its checkpoint, when it matches these settings, data, code and
    machine), or as it starts: where training resumes, and what a diverged tuning run records."""
    torch.set_num_threads(threads)
    run = new_run(pack, len(splits.train_images), device)
    run.key = checkpoint_key(pack, splits.sha256, device, threads)
    run.settings_digests = [member.digest() for member in pack]
    run.resume(checkpoint_path, run.key, log)
    return run


def fit_pack(
    pack: Pack,
    splits: Splits,
    device: torch.device,
    threads: int,
    checkpoint_path: Path,
    log: Callable[[str], None] = print,
    stop_after_epoch: int | None = None,
) -> Run:
    """Train a pack of runs (seeds of one variant and recipe) as one network, resuming from `checkpoint_path` when
    it matches these settings and data; a pack of one is a plain run."""
    run = last_finished(pack, splits, device, threads, checkpoint_path, log)
    key, done = run.key, run.resumed_from
    progress = sys.stderr.isatty()
    settings = pack[0]
    mean, std, epochs = settings.data.mean, settings.data.std, settings.train.epochs
    split = splits.eval_split
    for epoch in range(done + 1, epochs + 1):
        started = time.perf_counter()
        train_losses, train_accs, lr = train_epoch(run, splits, settings, progress)
        scores = evaluate_pack(
            run.model, splits.eval_images, splits.eval_labels, mean, std, layout=memory_format(settings)
        )
        seconds = time.perf_counter() - started
        for member, train_loss, (eval_loss, _, _) in zip(pack, train_losses, scores, strict=True):
            check_finite(epoch, member, train_loss=train_loss, **{f"{split}_loss": eval_loss})
        for member, history, train_loss, train_acc, (eval_loss, eval_acc, _) in zip(
            pack, run.histories, train_losses, train_accs, scores, strict=True
        ):
            history.append(
                {
                    "epoch": epoch,
                    "lr": lr,
                    "train_loss": train_loss,
                    "train_acc": train_acc,
                    f"{split}_loss": eval_loss,
                    f"{split}_acc": eval_acc,
                    # A pack's epoch is one pass of the packed network: the same seconds for each of its runs.
                    "seconds": seconds,
                }
            )
            seed = f" seed {member.seed}" if len(pack) > 1 else ""
            log(
                f"epoch {epoch:3d}/{epochs}{seed}  lr {lr:.5f}  train loss {train_loss:.4f} acc {train_acc:.2f}%  "
                f"{split} loss {eval_loss:.4f} acc {eval_acc:.2f}%  {seconds:.1f} s"
            )
        run.checkpoint(checkpoint_path, key)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            raise InterruptedError(f"stopped after epoch {epoch} as asked (--stop-after-epoch)")
    return run


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
    return fit_pack((settings,), splits, device, threads, checkpoint_path, log, stop_after_epoch)
