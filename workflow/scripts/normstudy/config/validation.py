"""Config validation: a config's values checked before the schema (finite, no control characters, not an alias bomb),
the schema (normstudy.config.schema), and every cross-field rule a schema cannot express (tuning grid and batch study
included)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from normstudy.config.recipes import (
    batch_recipe,
    batch_study_variants,
    batch_train_images,
    ghost_design,
    grid_points,
    point_name,
    study_batch_sizes,
    train_size,
    tuned_study,
    tuned_variant,
    variant_recipe,
)
from normstudy.config.schema import SCHEMA_PATH, key_text, load_schema, schema_problems, with_defaults
from normstudy.config.studies import study_name_problem
from normstudy.config.study import DataConfig, Study
from normstudy.controls import control_name, is_control
from normstudy.data.datasets import dataset_spec
from normstudy.data.shift_sets import endpoint_problem
from normstudy.model.architecture import network_spec
from normstudy.model.norm_specs import NORMS, all_params, norm_spec
from normstudy.settings import steps_per_epoch
from normstudy.values import ConfigError, short

__all__ = ["ConfigError", "load_schema", "validate_config"]

# The schema's pattern is matched with re.search, where '$' also matches before a final newline.
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
# A study config has about a hundred values; YAML aliases can make a few lines stand for billions.
MAX_CONFIG_NODES = 10_000


def walk(value: Any, path: tuple = (), limit: int = MAX_CONFIG_NODES) -> Iterator[tuple[tuple, Any]]:
    """Every (key path, value) of a nested config, refusing more than `limit` nodes (expanded aliases count)."""
    stack, seen = [(path, value)], 0
    while stack:
        where, node = stack.pop()
        seen += 1
        if seen > limit:
            raise ConfigError(
                f"invalid config: more than {limit:,} values (expanded YAML aliases count); "
                "a study config has about a hundred, so this file is refused unread"
            )
        yield where, node
        if isinstance(node, dict):
            stack.extend(((*where, k), v) for k, v in node.items())
        elif isinstance(node, list | tuple):
            stack.extend(((*where, i), v) for i, v in enumerate(node))


def non_finite_problems(config: Any) -> list[str]:
    """One message per NaN or infinite number: the schema's ranges let them through (NaN compares false)."""
    return [
        f"'{key_text(path)}': {value!r} is not a finite number"
        for path, value in walk(config)
        if isinstance(value, float) and not math.isfinite(value)
    ]


def control_character_problems(config: Any) -> list[str]:
    """One message per text value holding a control character (NUL, ESC, newline, ...) or a bidirectional
    control: the report shows these values, and a terminal or browser would act on such characters."""
    problems = []
    for path, value in walk(config):
        first = next((i for i, char in enumerate(value) if is_control(char)), None) if isinstance(value, str) else None
        if first is not None:
            name = control_name(value[first])
            problems.append(
                f"'{key_text(path)}': holds the control character {name} at position {first + 1}; remove it"
            )
    return sorted(problems)


def _schedule_problems(study: Study, name: str, images: int, where: str) -> list[str]:
    """OneCycleLR needs more than one warm-up step."""
    return _warm_up_problems(variant_recipe(study, name), images, where)


def _warm_up_problems(recipe: dict[str, Any], images: int, where: str) -> list[str]:
    """A recipe's batch must fit in `images` training images, and its OneCycleLR needs more than one warm-up step."""
    if recipe["batch_size"] > images:
        return [f"'{where}.batch_size': {recipe['batch_size']} is more than the {images} training images"]
    total_steps = recipe["epochs"] * steps_per_epoch(images, recipe["batch_size"])
    pct_start = recipe["schedule"]["pct_start"]
    if pct_start * total_steps > 1:
        return []
    return [
        f"'{where}.schedule.pct_start': {pct_start} of {total_steps} steps ({images} images) leaves OneCycleLR "
        "less than one warm-up step; raise it, the epochs, or the training-set size per batch"
    ]


def norm_param_problems(name: str, variant: dict[str, Any], network_name: str) -> list[str]:
    """A variant's norm parameters (its keys as written): only its own norm's, and each a value the network
    allows."""
    network = network_spec(network_name)
    spec, problems = norm_spec(variant["norm"]), []
    own = {param.name for param in spec.params}
    named = [name for name in spec.one_of if name in variant]
    if spec.one_of and len(named) != 1:
        problems.append(
            f"'variants.{name}': norm '{spec.name}' takes exactly one of {' or '.join(spec.one_of)}, "
            f"not {' and '.join(named) if named else 'neither'}"
        )
    for param in all_params().values():
        if param.name not in variant:
            continue
        if param.name not in own:
            users = [other.name for other in NORMS.values() if param in other.params]
            problems.append(
                f"'variants.{name}.{param.name}': only used with norm {' or '.join(map(repr, users))}, "
                f"not '{spec.name}'"
            )
        elif param.divides_channels and variant[param.name] not in network.valid_divisors():
            problems.append(
                f"'variants.{name}.{param.name}': {variant[param.name]} does not divide every layer's channel count "
                f"{list(network.normed_channels)}; possible: {', '.join(map(str, network.valid_divisors()))}"
            )
    return problems


def data_problems(data: DataConfig) -> list[str]:
    """A fetched dataset's sources: ones that can deliver it, a local folder that exists, mirrors to try."""
    spec, fetch = data.spec, data.fetch
    if not spec.fetched or fetch is None:
        return []  # generated by the workflow: the fetch keys do not apply
    problems = [
        f"'data.sources': {source} cannot deliver {spec.title} (its sources: {', '.join(spec.sources)})"
        for source in fetch.sources
        if source not in spec.sources
    ]
    if "local" in fetch.sources:
        if not fetch.local_dir:
            problems.append("'data.local_dir': required when data.sources lists 'local'")
        elif not Path(fetch.local_dir).is_dir():
            problems.append(f"'data.local_dir': {short(fetch.local_dir)} is not a directory")
    if "mirrors" in fetch.sources and not (fetch.mirrors or spec.mirrors):
        problems.append(
            f"'data.mirrors': empty, and {spec.title} has no mirrors of its own, but data.sources lists 'mirrors'"
        )
    return problems


# The images MNIST-C's kinds are drawn on (data/corruptions.py's SIDE, one grey channel): kept here, not read from
# there, so that planning never imports scipy and scikit-image.
CORRUPTIBLE_SHAPE = (1, 28, 28)


def robustness_problems(study: Study) -> list[str]:
    """A robustness study over images its corruptions are drawn on, with an endpoint over some of its kinds."""
    corruptions, spec = list(study.robustness.corruptions), study.data.spec
    if not corruptions:
        return []  # no robustness study
    if spec.image_shape != CORRUPTIBLE_SHAPE:
        channels, height, width = spec.image_shape
        return [
            f"'robustness.corruptions': MNIST-C's kinds are drawn on 28x28 grey images, and {spec.title}'s are "
            f"{channels}x{height}x{width}; set robustness.corruptions: [] to leave the robustness study out"
        ]
    return [problem for problem in [endpoint_problem(study.robustness.endpoint, corruptions)] if problem]


def rule_problems(study: Study) -> list[str]:
    """Cross-field rules the schema cannot express, on the typed study of a schema-valid config with defaults."""
    problems = [problem for problem in [study_name_problem(study.name)] if problem]
    for name in study.variants:
        if not VARIANT_NAME.fullmatch(name):
            problems.append(
                f"'variants': name {short(name)} must consist of letters, digits, '_' or '-' only (at most 40), "
                "with nothing after it (a trailing newline or space included)"
            )
        # The keys as written: a parameter of another norm is not in the typed variant, and must be refused.
        problems += norm_param_problems(name, study.values["variants"][name], study.data.spec.network)
    enabled = study.enabled_variants()
    if not enabled:
        problems.append("'variants': every variant is disabled (enabled: false); nothing to study")
    reference = study.analysis.reference
    if reference not in enabled:
        problems.append(
            f"'analysis.reference': {short(reference)} is not a studied variant (enabled: {', '.join(enabled)}); the "
            "family of comparisons is every other variant against it"
        )
    control = study.analysis.control
    if control is not None and (control not in enabled or control == reference):
        problems.append(
            f"'analysis.control': {short(control)} is not a studied variant other than the reference {short(reference)}"
            f" (enabled: {', '.join(enabled)}); every other variant is compared with the control"
        )
    problems += data_problems(study.data)
    problems += robustness_problems(study)
    schedule_problems = []
    for name, variant in study.variants.items():
        own = variant.train
        # Named where the step count comes from: the variant's own keys, or the shared train section.
        own_steps = "epochs" in own or "batch_size" in own or "pct_start" in own.get("schedule", {})
        where = f"variants.{name}.train" if own_steps else "train"
        schedule_problems += _schedule_problems(study, name, train_size(study), where)
    problems += list(dict.fromkeys(schedule_problems))
    if study.data.validation >= train_size(study):
        problems.append(
            f"'data.validation': {study.data.validation} held-out images leave none of the {train_size(study)} "
            "training images to tune on"
        )
    grid = study.misclassified
    if grid.rows * grid.cols < grid.count:
        problems.append(f"'misclassified.count': {grid.count} images do not fit a {grid.rows} x {grid.cols} grid")
    return problems


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Return `config` with defaults filled in, or raise ConfigError listing every problem."""
    schema = load_schema(schema_path)
    problems = non_finite_problems(config) + control_character_problems(config) + schema_problems(config, schema)
    if not problems:
        filled = with_own_constants(with_defaults(config, schema))
        problems = schema_problems(filled, schema)
    if not problems:
        study = Study.from_config(filled)
        problems = rule_problems(study) or tune_problems(study, schema) or batch_study_problems(study, schema)
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))
    return filled


def with_own_constants(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with a null data.mean or data.std replaced by its dataset's own (the spec's), so that the recorded
    config says the values the runs use."""
    data = dict(config["data"])
    spec = dataset_spec(data["dataset"])
    data.update({key: getattr(spec, key) for key in ("mean", "std") if data[key] is None})
    return {**config, "data": data}


def load_study(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> Study:
    """The typed study of a config (defaults filled in), or ConfigError listing every problem."""
    return Study.from_config(validate_config(config, schema_path))


def grid_key_problem(path: str, variant_schema: dict[str, Any]) -> str | None:
    """Why a tuning grid key is not the path of one setting of a variant (None when it is)."""
    node, parts = variant_schema, path.split(".")
    for depth, part in enumerate(parts):
        keys = node.get("properties", {})
        where = ".".join(parts[:depth]) or "a variant"
        if part not in keys:
            return f"'tune.grid': {path} names no setting: {where} has no key {part!r} (its keys: {', '.join(keys)})"
        node = keys[part]
        if depth < len(parts) - 1 and node.get("type") != "object":
            return f"'tune.grid': {path} goes through {'.'.join(parts[: depth + 1])}, a value, not a section"
    if node.get("type") == "object":
        return f"'tune.grid': {path} is a section; name one of its keys ({', '.join(node.get('properties', {}))})"
    return None


def tune_problems(study: Study, schema: dict[str, Any]) -> list[str]:
    """Every grid point must give every variant a valid config, on the training images tuning runs keep."""
    variant_schema = schema["properties"]["variants"]["additionalProperties"]
    grid = study.tune.grid
    wrong = [grid_key_problem(path, variant_schema) for path in grid]
    if any(wrong):
        return [problem for problem in wrong if problem]
    points = grid_points(study)
    names = [point_name(point) for point in points]
    leaves = [path.rsplit(".", 1)[-1] for path in grid]
    if len(set(leaves)) < len(leaves):
        return [f"'tune.grid': keys {list(grid)} end in the same name; point folders would clash"]
    if len(set(names)) < len(names):
        return [f"'tune.grid': values that print alike ({', '.join(names)}) would share a folder"]
    shared = sorted(set(study.tune.seeds) & set(study.seeds))
    if shared:
        return [
            f"'tune.seeds': {', '.join(map(str, shared))} also in 'seeds'; a study run would repeat a tuning run's "
            "initialization and data order, so the test set would score a run the search chose on"
        ]
    problems = []
    images = train_size(study, study.data.validation)
    for point, name in zip(points, names, strict=True):
        for variant, settings in study.variants.items():
            where = f"tune.grid point {name}, variant {variant}"
            found = [f"{where}: {p}" for p in schema_problems(tuned_variant(settings.values(), point), variant_schema)]
            found = found or _schedule_problems(tuned_study(study, point), variant, images, f"{where}: train")
            if found:
                problems += found
                break  # the same value usually fails every variant: one is enough to name it
    return problems


def ghost_problems(study: Study) -> list[str]:
    """The ghost design's rules: its largest size is the batch norms' SGD batch, every size divides it (no last
    group smaller than the rest), and some variant takes batch statistics (the only ones a statistics batch changes)."""
    reference, key = study_batch_sizes(study)[-1], "'batch_study.batch_sizes'"
    batch_norms = [name for name in batch_study_variants(study) if study.variants[name].spec.batch_statistics]
    if not batch_norms:
        return [
            f"'batch_study.variants': none of {', '.join(batch_study_variants(study))} takes batch statistics, "
            "and in the ghost design only those see a statistics batch: every size would train the same network, "
            "so the study could test nothing; list a batch-norm variant, or set batch_study.enabled: false"
        ]
    wrong = [
        f"{key}: the ghost design's largest size is its reference, the whole SGD batch, but {reference} is not "
        f"{name}'s train.batch_size {variant_recipe(study, name)['batch_size']}"
        for name in batch_norms
        if variant_recipe(study, name)["batch_size"] != reference
    ]
    divisors = ", ".join(str(size) for size in range(2, reference) if reference % size == 0)
    return wrong or [
        f"{key}: {size} does not divide the SGD batch of {reference}, so each step's last group would hold "
        f"{reference % size} image{'s' * (reference % size > 1)}, not {size}; choose divisors of it ({divisors})"
        for size in study_batch_sizes(study)
        if reference % size
    ]


def batch_study_problems(study: Study, schema: dict[str, Any]) -> list[str]:
    """The batch study must name known variants, some enabled, and every batch size must be a valid recipe."""
    batch = study.batch_study
    if not batch.enabled:
        return []
    unknown = [name for name in batch.variants if name not in study.variants]
    if unknown:
        return [
            f"'batch_study.variants': {short(name)} is not a variant (variants: {', '.join(study.variants)})"
            for name in unknown
        ]
    if not batch_study_variants(study):
        return [
            "'batch_study.variants': every variant it lists is disabled (enabled: false); list an enabled one, "
            "or set batch_study.enabled: false to leave the batch study out"
        ]
    images, available = batch_train_images(study), train_size(study)
    if images > available:
        return [f"'batch_study.train_images': {images} is more than the {available} training images"]
    precise = batch.precise_bn_images
    if precise > images:
        return [f"'batch_study.precise_bn_images': {precise} is more than the {images} training images of a run"]
    ghost = ghost_problems(study) if ghost_design(study) else []
    if ghost:
        return ghost
    problems = []
    for batch_size in study_batch_sizes(study):
        sgd_batch = max(batch_recipe(study, name, batch_size)["batch_size"] for name in batch_study_variants(study))
        if max(batch_size, sgd_batch) > images:
            within = f"{batch_size} (its SGD batch {sgd_batch})" if sgd_batch > batch_size else str(batch_size)
            problems.append(f"'batch_study.batch_sizes': {within} is more than the {images} training images")
            continue
        for name in batch_study_variants(study):
            recipe, where = (
                batch_recipe(study, name, batch_size),
                f"batch_study batch size {batch_size}, variant {name}",
            )
            found = [f"{where}: {p}" for p in schema_problems(recipe, schema["properties"]["train"])]
            found = found or _warm_up_problems(recipe, images, f"{where}: train")
            if found:
                problems += found
                break  # one variant is enough to name a batch size that fails
    return problems
