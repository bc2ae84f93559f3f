"""Recipes: the typed study config turned into each run's typed settings (study, tuning and batch-study runs).

Also the tuning grid's points and the batch study's learning-rate scaling: every place a run's settings are
derived from the config is here, so the rules, the summaries and the checks all derive them alike.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

from normstudy.config.study import FetchSettings, Study, VariantConfig
from normstudy.model.norm_specs import norm_spec, takes_batch_statistics
from normstudy.settings import DataSettings, RunSettings, TrainSettings, VariantSettings, build_settings


def train_size(study: Study, validation_size: int = 0) -> int:
    """Images a training epoch draws from, for the configured dataset, less any held-out validation images."""
    spec = study.data.spec
    full = spec.train_size if spec.fetched else study.data.synthetic.train_size
    return full - validation_size


def variant_recipe(study: Study, name: str) -> dict[str, Any]:
    """One variant's training recipe: the train section with the variant's own `train` overrides merged in."""
    return merge(study.train, study.variants[name].train)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge like Snakemake's --configfile: mappings merge recursively, other values replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def variant_settings(study: Study, name: str) -> VariantSettings:
    """The typed settings of one configured variant (group count resolved)."""
    variant = study.variants[name]
    params = dict(variant.params)
    groups = params.pop("groups", None)  # a field of its own: it predates the norms' parameters
    return VariantSettings(name, variant.norm, groups, variant.l1, variant.dropout, 0, params)


def data_settings(study: Study, validation_size: int = 0, train_images: int = 0) -> DataSettings:
    """The data's identity and normalization constants from the study config."""
    data, spec = study.data, study.data.spec
    return DataSettings(
        dataset=spec.name,
        md5=dict(spec.md5),
        gz_md5={} if spec.md5 else dict(spec.gz_md5),
        archive_md5=spec.archive.md5 if spec.archive else "",
        synthetic=None if spec.fetched else data.synthetic,
        mean=data.mean,
        std=data.std,
        validation_size=validation_size,
        train_images=train_images,
    )


def _train_settings(recipe: dict[str, Any], norm: str, where: str) -> TrainSettings:
    """A recipe as typed settings, `auto` memory format resolved for the norm (its spec's faster_layout)."""
    if recipe["memory_format"] == "auto":
        recipe = {**recipe, "memory_format": norm_spec(norm).faster_layout}
    return build_settings(TrainSettings, recipe, where)


def run_settings(study: Study, variant: str, seed: int, validation_size: int = 0) -> RunSettings:
    """The one typed settings object of a run, from the study config (a tuning run holds out images)."""
    norm = study.variants[variant].norm
    train = _train_settings(variant_recipe(study, variant), norm, f"variants.{variant}.train")
    return RunSettings(variant_settings(study, variant), train, data_settings(study, validation_size), int(seed))


# ---- Tuning: a grid of variant settings, each point trained on the training split less the validation images.


def grid_points(study: Study) -> list[dict[str, Any]]:
    """Every combination of the tuning grid's values, in config order: key path -> value."""
    grid = study.tune.grid
    points: list[dict[str, Any]] = [{}]
    for path, values in grid.items():
        points = [{**point, path: value} for point in points for value in values]
    return points


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def point_name(point: dict[str, Any]) -> str:
    """A grid point as a folder name: the last part of each key and its value, e.g. `max_lr=0.05,dropout=0.0`."""
    return ",".join(f"{path.rsplit('.', 1)[-1]}={_value_text(value)}" for path, value in point.items())


def tuned_variant(variant: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """A variant's config with one grid point's values put in (they take precedence over its own)."""
    tuned = copy.deepcopy(variant)
    for path, value in point.items():
        *parents, leaf = path.split(".")
        node = tuned
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tuned


def tuned_study(study: Study, point: dict[str, Any]) -> Study:
    """The study with every variant set to one grid point."""
    return study.with_variants(
        {name: VariantConfig.from_values(name, tuned_variant(variant.values(), point)) for name, variant in
         study.variants.items()}
    )  # fmt: skip


def tuning_points(study: Study) -> dict[str, dict[str, Any]]:
    """Point name -> point, for every grid point."""
    return {point_name(point): point for point in grid_points(study)}


def tuning_settings(study: Study, variant: str, point: str, seed: int) -> RunSettings:
    """The settings of one tuning run: a variant at one grid point, holding out the validation images."""
    tuned = tuned_study(study, tuning_points(study)[point])
    return run_settings(tuned, variant, seed, validation_size=study.data.validation)


# ---- The batch-size study: listed variants at each batch size, the learning rate scaled from their own recipe's.

LR_SCALING = {"linear": lambda ratio: ratio, "sqrt": math.sqrt, "none": lambda ratio: 1.0}


def scaled_lr(max_lr: float, batch_size: int, base_batch_size: int, rule: str) -> float:
    """The peak learning rate at `batch_size` from the recipe's at `base_batch_size`: linear (Goyal et al. 2017,
    as in the GN paper), square root, or unchanged."""
    return max_lr * LR_SCALING[rule](batch_size / base_batch_size)


def study_batch_sizes(study: Study) -> list[int]:
    """The batch study's statistics batch sizes, smallest first; the largest is the reference."""
    return sorted(study.batch_study.batch_sizes)


def ghost_design(study: Study) -> bool:
    """Whether the batch study shrinks BatchNorm's statistics batch alone (ghost batch norm, the SGD batch and recipe
    kept), rather than the SGD batch with it."""
    return study.batch_study.design == "ghost"


def variant_batch_sizes(study: Study, variant: str) -> list[int]:
    """The sizes a variant of the batch study runs at: all of them; in the ghost design a batch-free norm runs only
    at the reference, since without batch statistics it does not depend on the size."""
    sizes = study_batch_sizes(study)
    if ghost_design(study) and not takes_batch_statistics(study.variants[variant].norm):
        return sizes[-1:]
    return sizes


def sgd_batch_size(study: Study, variant: str, batch_size: int) -> int:
    """The SGD batch of a batch-study run at statistics batch `batch_size`: the recipe's in the ghost design, `devices`
    statistics batches in the paper design (the GN paper's 8 GPUs), the size itself in the sgd_batch design."""
    design = study.batch_study.design
    if design == "ghost":
        return variant_recipe(study, variant)["batch_size"]
    return batch_size * study.batch_study.devices if design == "paper" else batch_size


def batch_recipe(study: Study, variant: str, batch_size: int) -> dict[str, Any]:
    """A variant's recipe at one size of the batch study: the study's epochs; outside the ghost design also its SGD
    batch (sgd_batch_size) and the peak LR scaled to that by the study's rule."""
    batch, recipe = study.batch_study, variant_recipe(study, variant)
    if ghost_design(study):
        return {**recipe, "epochs": batch.epochs}
    sgd_batch, schedule = sgd_batch_size(study, variant, batch_size), recipe["schedule"]
    schedule["max_lr"] = scaled_lr(schedule["max_lr"], sgd_batch, recipe["batch_size"], batch.lr_scaling)
    return {**recipe, "batch_size": sgd_batch, "epochs": batch.epochs, "schedule": schedule}


# The batch study packs a variant's seeds into one network at batch sizes up to this (batch_study.pack: auto).
# `make bench` (1 thread, 3 seeds packed against one model, img/s of every model's images, 2-core development
# machine, two runs): packing paid 1.25-2.24x for bn, gn and ln at every batch size from 2 to 16, 0.93-1.40x at
# 32, and cost 0.60-0.94x at 128 (docs/measurements.md).
PACKING_PAYS_UP_TO = 16


def is_packed(study: Study, batch_size: int) -> bool:
    """Whether the batch study trains its seeds at this size packed into one network (one job per variant): where
    the SGD batch of every variant that runs at this size, its own recipe's (sgd_batch_size), is small enough for
    packing to pay on a CPU; at every size where all of them train on a GPU (train.device: cuda), which a network
    this small leaves idle between launches (one launch per layer serves every packed seed)."""
    batch = study.batch_study
    if len(batch.seeds) < 2:
        return False
    running = [name for name in batch_study_variants(study) if batch_size in variant_batch_sizes(study, name)]
    sgd_batch = max((sgd_batch_size(study, name, batch_size) for name in running), default=batch_size)
    on_gpu = bool(running) and all(variant_recipe(study, name)["device"] == "cuda" for name in running)
    return {"always": True, "never": False, "auto": on_gpu or sgd_batch <= PACKING_PAYS_UP_TO}[batch.pack]


def batch_train_images(study: Study) -> int:
    """Training images of a batch-study run (the first N of the training set)."""
    return study.batch_study.train_images or train_size(study)


def batch_run_settings(study: Study, variant: str, batch_size: int, seed: int) -> RunSettings:
    """The settings of one batch-study run: a variant at a statistics batch size, on the first train_images images.

    A batch norm whose statistics batch is below its SGD batch (ghost and paper designs) normalizes groups of
    `batch_size` images within it (ghost batch norm).
    """
    norm = study.variants[variant].norm
    where = f"batch_study batch size {batch_size}, variant {variant}"
    recipe = batch_recipe(study, variant, batch_size)
    train = _train_settings(recipe, norm, where)
    # The whole training set is 0, as in every other run's settings: one run, one digest.
    images = batch_train_images(study)
    data = data_settings(study, train_images=0 if images == train_size(study) else images)
    ghost = batch_size if takes_batch_statistics(norm) and batch_size < recipe["batch_size"] else 0
    return RunSettings(dataclasses.replace(variant_settings(study, variant), ghost=ghost), train, data, int(seed))


def shares_main_run(study: Study, variant: str, batch_size: int, seed: int) -> bool:
    """Whether a batch-study run has a main-study run's settings, and so its bytes: it is read from the main study,
    never trained twice (the ghost design's reference, where the study keeps the main recipe's epochs and images)."""
    if not study.variants[variant].enabled or seed not in study.seeds:
        return False
    batch_run = batch_run_settings(study, variant, batch_size, seed)
    return batch_run.to_json() == run_settings(study, variant, seed).to_json()


def shared_references(study: Study) -> list[str]:
    """The batch study's variants whose reference runs, every seed, are the main study's runs."""
    reference = study_batch_sizes(study)[-1]
    return [
        name
        for name in batch_study_variants(study)
        if all(shares_main_run(study, name, reference, seed) for seed in study.batch_study.seeds)
    ]


def batch_study_variants(study: Study) -> list[str]:
    """The batch study's variants, in its own order: those it lists that are enabled (`enabled: false` skips a
    variant everywhere)."""
    return [name for name in study.batch_study.variants if study.variants[name].enabled]


def fetch_settings(study: Study) -> FetchSettings:
    """How the study config says its dataset is fetched (never part of a run's settings): its mirrors are the
    config's, or where it gives none, the dataset's own (its spec's)."""
    fetch = study.data.fetch
    if fetch is None:
        raise ValueError("this config was recorded without how its data is fetched")
    return dataclasses.replace(fetch, mirrors=fetch.mirrors or study.data.spec.mirrors)
