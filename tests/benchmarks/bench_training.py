#!/usr/bin/env python3
"""Benchmark: normstudy's in-memory engine against a training loop written the write-ups' way.

Prints images per second for each configuration and the speed-up; it asserts nothing (not a test).
The reference is seeds 000-004's loop: torchvision MNIST, per-image PIL RandomRotation + ToTensor +
Normalize, a DataLoader with 2 workers, one process with torch's default threads. The engine runs as the
workflow runs it: one thread per job, jobs side by side on the cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow" / "scripts"))

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from torchvision import datasets, transforms

from normstudy.config.recipes import PACKING_PAYS_UP_TO, batch_run_settings, run_settings
from normstudy.config.sources import load_config
from normstudy.config.study import Study
from normstudy.data.datasets import RAW_FILES
from normstudy.data.tensors import Splits, load_splits
from normstudy.engine import MEMORY_FORMATS, new_run, resolve_device, train_epoch
from normstudy.model.network import build_model
from normstudy.model.norm_specs import norm_spec
from normstudy.settings import RunSettings, steps_per_epoch

REPO = Path(__file__).resolve().parents[2]


def study_settings(variant: str) -> RunSettings:
    """The default study's settings for one variant (seed 0), as the workflow writes them to settings.json."""
    return run_settings(Study.from_config(load_config(REPO / "config.yaml")), variant, 0)


def load_mnist(raw_dir: str, settings: RunSettings, device: torch.device) -> Splits:
    """The verified MNIST files of `raw_dir` on `device`."""
    folder = Path(raw_dir)
    return load_splits([folder / name for name in RAW_FILES], folder / "provenance.json", settings.data, device)


def engine_timing(
    raw_dir: str, variant: str, images: int, threads: int, barrier=None, layout: str | None = None
) -> tuple[float, float]:
    """Wall-clock start and end of the engine's training loop over the first `images` training images."""
    torch.set_num_threads(threads)
    settings = study_settings(variant)
    if layout is not None:
        settings = replace(settings, train=replace(settings.train, memory_format=layout))
    device = resolve_device(settings.train.device)
    full = load_mnist(raw_dir, settings, device)
    splits = Splits(full.train_images[:images], full.train_labels[:images], full.eval_images, full.eval_labels)
    warm = Splits(full.train_images[:1024], full.train_labels[:1024], full.eval_images, full.eval_labels)
    run = new_run((settings,), images + 1024, device)
    train_epoch(run, warm, settings)
    if barrier is not None:
        barrier.wait()
    started = time.time()
    train_epoch(run, splits, settings)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return started, time.time()


def engine_throughput(raw_dir: str, variant: str, images: int, threads: int, layout: str | None = None) -> float:
    """Images per second of one engine job (in the variant's configured layout unless told)."""
    started, ended = engine_timing(raw_dir, variant, images, threads, layout=layout)
    return images / (ended - started)


def layout_table(raw_dir: str, images: int) -> None:
    """Per norm, one job and one thread: img/s in each memory layout, and the layout `auto` picks."""
    config = load_config(REPO / "config.yaml")
    print(
        f"\nmemory layout per norm (1 job, 1 thread, batch {config['train']['batch_size']}; "
        "auto: the norm's faster_layout)"
    )
    print(f"{'variant':<8} {'norm':<9} {'channels_last':>14} {'contiguous':>11}  {'faster':<14} {'auto picks':<13}")
    for variant, settings in config["variants"].items():
        rates = {layout: engine_throughput(raw_dir, variant, images, 1, layout) for layout in MEMORY_FORMATS}
        faster = max(rates, key=rates.get)
        picked = norm_spec(settings["norm"]).faster_layout
        print(
            f"{variant:<8} {settings['norm']:<9} {rates['channels_last']:14.0f} {rates['contiguous']:11.0f}  "
            f"{faster:<14} {picked:<13}"
        )


def pack_rate(splits: Splits, settings: RunSettings, seeds: int, model_images: int) -> float:
    """Images per second of every model together, `seeds` seeds of `settings` packed (1: one model alone)."""
    pack = tuple(replace(settings, seed=seed) for seed in range(seeds))
    per_model = max(model_images // seeds, 10 * settings.train.batch_size)
    timed = Splits(
        splits.train_images[:per_model], splits.train_labels[:per_model], splits.eval_images, splits.eval_labels
    )
    warm = Splits(
        splits.train_images[: per_model // 4],
        splits.train_labels[: per_model // 4],
        splits.eval_images,
        splits.eval_labels,
    )
    run = new_run(pack, 10 * per_model, splits.train_images.device)
    train_epoch(run, warm, settings)
    started = time.perf_counter()
    train_epoch(run, timed, settings)
    return seeds * per_model / (time.perf_counter() - started)


def packing_table(raw_dir: str, repeats: int = 3) -> None:
    """Per batch-study variant and batch size: one model's img/s against its seeds packed, in each layout.

    One job, one thread; the three are timed in turn, `repeats` times, and the medians printed (a shared machine's
    speed drifts by tens of percent within minutes). img/s counts every packed model's images.
    """
    torch.set_num_threads(1)
    config = load_config(REPO / "config.yaml")
    study = config["batch_study"]
    seeds = len(study["seeds"])
    print(
        f"\npacking ({seeds} seeds as one network against one model; 1 job, 1 thread, median of {repeats}; "
        f"auto packs batch sizes up to {PACKING_PAYS_UP_TO}, in the norm's faster_layout)"
    )
    print(f"{'variant':<8} {'batch':>5} {'1 model':>8} {'packed NHWC':>12} {'packed NCHW':>12} {'speed-up':>9}  auto")
    for variant in study["variants"]:
        settings = batch_run_settings(Study.from_config(config), variant, 128, 0)
        full = load_mnist(raw_dir, settings, resolve_device(settings.train.device))
        norm = settings.variant.norm
        for batch_size in sorted(study["batch_sizes"]):
            model_images = int(600 * batch_size**0.5)
            modes = {
                "alone": (1, norm_spec(norm).faster_layout),
                "channels_last": (seeds, "channels_last"),
                "contiguous": (seeds, "contiguous"),
            }
            rates: dict[str, list[float]] = {mode: [] for mode in modes}
            for _ in range(repeats):
                for mode, (count, layout) in modes.items():
                    train = replace(settings.train, batch_size=batch_size, memory_format=layout)
                    rates[mode].append(pack_rate(full, replace(settings, train=train), count, model_images))
            median = {mode: sorted(values)[len(values) // 2] for mode, values in rates.items()}
            chosen = median[norm_spec(norm).faster_layout]
            auto = "packed" if batch_size <= PACKING_PAYS_UP_TO else "alone"
            print(
                f"{variant:<8} {batch_size:5d} {median['alone']:8.0f} {median['channels_last']:12.0f} "
                f"{median['contiguous']:12.0f} {chosen / median['alone']:8.2f}x  {auto}",
                flush=True,
            )


def step_ms(splits: Splits, settings: RunSettings, images: int) -> float:
    """Milliseconds of one engine training step of `settings` (data preparation included), over `images` images after
    a warm-up pass."""
    batch = settings.train.batch_size
    timed = Splits(splits.train_images[:images], splits.train_labels[:images], splits.eval_images, splits.eval_labels)
    warm = Splits(splits.train_images[:1024], splits.train_labels[:1024], splits.eval_images, splits.eval_labels)
    run = new_run((settings,), 10 * images, splits.train_images.device)
    train_epoch(run, warm, settings)
    started = time.perf_counter()
    train_epoch(run, timed, settings)
    return (time.perf_counter() - started) * 1000 / steps_per_epoch(images, batch)


def step_flops(settings: RunSettings) -> float:
    """Floating-point operations of one training step (forward and backward of every convolution and matrix
    product), counted by torch's FlopCounterMode on a batch of the recipe's size."""
    model = build_model(settings.variant).train()
    batch = torch.randn(settings.train.batch_size, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        model(batch).sum().backward()
    return float(counter.get_total_flops())


def sgemm_gflops(size: int = 1024, repeats: int = 20) -> float:
    """This core's fp32 matrix-product rate on one thread, GFLOP/s: the attainable peak the step is measured against."""
    torch.set_num_threads(1)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def step_cases(ghosts: tuple[int, ...] = (2, 32)) -> dict[str, RunSettings]:
    """Each variant of config.yaml at its study recipe (seed 0), and bn with ghost batches of each size in `ghosts`."""
    study = Study.from_config(load_config(REPO / "config.yaml"))
    cases = {name: run_settings(study, name, 0) for name in study.variants}
    reference = cases["bn"]
    for ghost in ghosts:
        cases[f"bn ghost {ghost}"] = replace(reference, variant=replace(reference.variant, ghost=ghost))
    return cases


def _step_worker(raw_dir: str, settings: RunSettings, images: int, barrier, results) -> None:
    torch.set_num_threads(1)
    splits = load_mnist(raw_dir, settings, torch.device("cpu"))
    barrier.wait()
    results.put(step_ms(splits, settings, images))


def side_by_side(worker, args: tuple, jobs: int) -> list:
    """What `worker(*args, barrier, results)` put in `results`, from `jobs` spawned processes started together (the
    barrier lets each time its own work once all have loaded their data)."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(jobs), context.Queue()
    workers = [context.Process(target=worker, args=(*args, barrier, results)) for _ in range(jobs)]
    for process in workers:
        process.start()
    out = [results.get() for _ in workers]
    for process in workers:
        process.join()
    return out


def side_by_side_ms(raw_dir: str, settings: RunSettings, images: int, jobs: int = 2) -> float:
    """Mean ms per step of `jobs` one-thread processes training `settings` at once (the workflow's way)."""
    times = side_by_side(_step_worker, (raw_dir, settings, images), jobs)
    return sum(times) / len(times)


def step_table(raw_dir: str, images: int, repeats: int = 3) -> None:
    """ms per training step per norm and for ghost batch norm at statistics batch 2 and 32, on one thread (timed in
    turn, `repeats` times, medians) and with two jobs side by side; each against plain batch norm, and the step's
    fp32 operations against this core's measured matrix-product rate."""
    torch.set_num_threads(1)
    cases = step_cases()
    splits = load_mnist(raw_dir, cases["bn"], torch.device("cpu"))
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, settings in cases.items():
            times[name].append(step_ms(splits, settings, images))
    median = {name: sorted(values)[len(values) // 2] for name, values in times.items()}
    peak = sgemm_gflops()
    batch = cases["bn"].train.batch_size
    print(
        f"\ntraining step per norm (batch {batch}, data preparation included; 1 job, 1 thread, median of {repeats}); "
        f"share of peak: the step's fp32 operations against this core's 1-thread sgemm, {peak:.0f} GFLOP/s"
    )
    print(f"{'case':<12} {'norm':<9} {'layout':<14} {'ms/step':>8} {'vs bn':>6} {'GFLOP/s':>8} {'of peak':>8}")
    for name, settings in cases.items():
        gflops = step_flops(settings) / median[name] / 1e6
        print(
            f"{name:<12} {settings.variant.norm:<9} {settings.train.memory_format:<14} {median[name]:8.1f} "
            f"{median[name] / median['bn']:5.2f}x {gflops:8.1f} {100 * gflops / peak:7.1f}%",
            flush=True,
        )
    print("\nghost batch norm with two jobs side by side (1 thread each; ms per step, mean of the two jobs)")
    side = {name: side_by_side_ms(raw_dir, cases[name], images) for name in ("bn", "bn ghost 2", "bn ghost 32")}
    for name, ms in side.items():
        print(f"{name:<12} {ms:8.1f} {ms / side['bn']:5.2f}x", flush=True)


def _engine_worker(raw_dir, variant, images, threads, barrier, results) -> None:
    results.put(engine_timing(raw_dir, variant, images, threads, barrier))


def engine_side_by_side(raw_dir: str, variant: str, images: int, jobs: int) -> float:
    """Images per second of `jobs` one-thread engine processes together: all images over the whole span."""
    spans = side_by_side(_engine_worker, (raw_dir, variant, images, 1), jobs)
    return jobs * images / (max(end for _, end in spans) - min(start for start, _ in spans))


def reference_throughput(data_root: str, variant: str, images: int, workers: int) -> float:
    """Images per second of the write-ups' loop: torchvision dataset, PIL transforms, DataLoader workers."""
    settings = study_settings(variant)
    mean, std = settings.data.mean, settings.data.std
    degrees = settings.train.augment.rotation_degrees
    transform = transforms.Compose(
        [
            transforms.RandomRotation((-degrees, degrees), fill=(0,)),
            transforms.ToTensor(),
            transforms.Normalize((mean,), (std,)),
        ]
    )
    dataset = datasets.MNIST(data_root, train=True, download=False, transform=transform)
    batch_size = settings.train.batch_size
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0
    )
    torch.manual_seed(0)
    model = build_model(settings.variant)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    warm_batches, batches = 1024 // batch_size, images // batch_size
    seen, started = 0, None
    for step, (inputs, targets) in enumerate(loader):
        if step == warm_batches:
            started, seen = time.perf_counter(), 0
        optimizer.zero_grad()
        loss = F.nll_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        seen += len(inputs)
        if step + 1 >= warm_batches + batches:
            break
    return seen / (time.perf_counter() - started)


def main(data_root: Path, variant: str, images: int, repeats: int = 3) -> None:
    """Time every configuration in this one run and print a table and the ratios."""
    raw_dir = str(data_root / "MNIST" / "raw")
    cores = os.cpu_count() or 1
    print(
        f"normstudy training benchmark: variant {variant}, {images} images per timing, {cores} cores, "
        f"torch {torch.__version__}, device {resolve_device(study_settings(variant).train.device)}"
    )
    rows = [
        (
            "reference: write-ups' loop, DataLoader 2 workers, 1 process",
            reference_throughput(str(data_root), variant, images, 2),
        ),
        ("engine: 1 job, 1 thread", engine_throughput(raw_dir, variant, images, 1)),
        ("engine: 1 job, 2 threads", engine_throughput(raw_dir, variant, images, 2)),
        (
            f"engine: {min(cores, 2)} jobs side by side, 1 thread each",
            engine_side_by_side(raw_dir, variant, images, min(cores, 2)),
        ),
    ]
    reference = rows[0][1]
    print(f"{'configuration':<62} {'img/s':>8} {'ratio':>6}")
    for name, rate in rows:
        print(f"{name:<62} {rate:8.0f} {rate / reference:5.2f}x")
    print(f"study speed-up (jobs side by side vs the write-ups' loop): {rows[-1][1] / reference:.2f}x")
    layout_table(raw_dir, images)
    packing_table(raw_dir, repeats)
    step_table(raw_dir, images, repeats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-root",
        type=Path,
        default=REPO / "results" / "data",
        help="torchvision root holding MNIST/raw (make bench downloads it)",
    )
    parser.add_argument("--variant", default="bn", help="variant of config.yaml to time")
    parser.add_argument("--images", type=int, default=12800, help="training images per timing")
    parser.add_argument("--layouts-only", action="store_true", help="time only the memory layout per norm")
    parser.add_argument("--packing-only", action="store_true", help="time only packed against unpacked seeds")
    parser.add_argument(
        "--steps-only", action="store_true", help="time only the step per norm and ghost batch norm against plain"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timings per packing figure (the median is printed)")
    args = parser.parse_args()
    if args.layouts_only:
        layout_table(str(args.data_root / "MNIST" / "raw"), args.images)
    elif args.packing_only:
        packing_table(str(args.data_root / "MNIST" / "raw"), args.repeats)
    elif args.steps_only:
        step_table(str(args.data_root / "MNIST" / "raw"), args.images, args.repeats)
    else:
        main(args.data_root, args.variant, args.images, args.repeats)
