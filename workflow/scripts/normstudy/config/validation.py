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
    tuned_config,
    tuned_variant,
    variant_recipe,
)
from normstudy.config.schema import SCHEMA_PATH, key_text, load_schema, schema_problems, with_defaults
from normstudy.config.studies import study_name_problem
from normstudy.controls import control_name, is_control
from normstudy.data.datasets import dataset_spec
from normstudy.data.shift_sets import endpoint_problem
from normstudy.model.architecture import NORMNET, NetworkSpec
from normstudy.model.norm_specs import NORMS, all_params, norm_spec, takes_batch_statistics
from normstudy.settings import ConfigError, short, steps_per_epoch

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


def _schedule_problems(config: dict[str, Any], name: str, images: int, where: str) -> list[str]:
    """OneCycleLR needs more than one warm-up step."""
    return _warm_up_problems(variant_recipe(config, name), images, where)


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


def norm_param_problems(name: str, variant: dict[str, Any], network: NetworkSpec) -> list[str]:
    """A variant's norm parameters: only its own norm's, and each a value the network allows."""
    spec, problems = norm_spec(variant["norm"]), []
    own = {param.name for param in spec.params}
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


def data_problems(data: dict[str, Any]) -> list[str]:
    """A fetched dataset's sources: ones that can deliver it, a local folder that exists, mirrors to try."""
    spec = dataset_spec(data["dataset"])
    if not spec.fetched:
        return []  # generated by the workflow: the fetch keys do not apply
    problems = [
        f"'data.sources': {source} cannot deliver {spec.title} (its sources: {', '.join(spec.sources)})"
        for source in data["sources"]
        if source not in spec.sources
    ]
    if "local" in data["sources"]:
        if not data["local_dir"]:
            problems.append("'data.local_dir': required when data.sources lists 'local'")
        elif not Path(data["local_dir"]).is_dir():
            problems.append(f"'data.local_dir': {short(data['local_dir'])} is not a directory")
    if "mirrors" in data["sources"] and not data["mirrors"]:
        problems.append("'data.mirrors': empty, but data.sources lists 'mirrors'")
    return problems


def rule_problems(config: dict[str, Any]) -> list[str]:
    """Cross-field rules the schema cannot express, on a schema-valid config with defaults."""
    problems = [problem for problem in [study_name_problem(config["study"])] if problem]
    for name, variant in config["variants"].items():
        if not VARIANT_NAME.fullmatch(name):
            problems.append(
                f"'variants': name {short(name)} must consist of letters, digits, '_' or '-' only (at most 40), "
                "with nothing after it (a trailing newline or space included)"
            )
        problems += norm_param_problems(name, variant, NORMNET)
    if not any(variant["enabled"] for variant in config["variants"].values()):
        problems.append("'variants': every variant is disabled (enabled: false); nothing to study")
    reference = config["analysis"]["reference"]
    if reference not in config["variants"] or not config["variants"][reference]["enabled"]:
        enabled = [name for name, variant in config["variants"].items() if variant["enabled"]]
        problems.append(
            f"'analysis.reference': {short(reference)} is not a studied variant (enabled: {', '.join(enabled)}); the "
            "family of comparisons is every other variant against it"
        )
    problems += data_problems(config["data"])
    problems += [problem for problem in [endpoint_problem(config["robustness"])] if problem]
    schedule_problems = []
    for name, variant in config["variants"].items():
        own = variant.get("train", {})
        # Named where the step count comes from: the variant's own keys, or the shared train section.
        own_steps = "epochs" in own or "batch_size" in own or "pct_start" in own.get("schedule", {})
        where = f"variants.{name}.train" if own_steps else "train"
        schedule_problems += _schedule_problems(config, name, train_size(config), where)
    problems += list(dict.fromkeys(schedule_problems))
    if config["data"]["validation"] >= train_size(config):
        problems.append(
            f"'data.validation': {config['data']['validation']} held-out images leave none of the {train_size(config)} "
            "training images to tune on"
        )
    grid = config["misclassified"]
    if grid["rows"] * grid["cols"] < grid["count"]:
        problems.append(
            f"'misclassified.count': {grid['count']} images do not fit a {grid['rows']} x {grid['cols']} grid"
        )
    return problems


def validate_config(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Return `config` with defaults filled in, or raise ConfigError listing every problem."""
    schema = load_schema(schema_path)
    problems = non_finite_problems(config) + control_character_problems(config) + schema_problems(config, schema)
    if not problems:
        filled = with_defaults(config, schema)
        problems = (
            schema_problems(filled, schema)
            or rule_problems(filled)
            or tune_problems(filled, schema)
            or batch_study_problems(filled, schema)
        )
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))
    return filled


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


def tune_problems(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every grid point must give every variant a valid config, on the training images tuning runs keep."""
    variant_schema = schema["properties"]["variants"]["additionalProperties"]
    wrong = [grid_key_problem(path, variant_schema) for path in config["tune"]["grid"]]
    if any(wrong):
        return [problem for problem in wrong if problem]
    points = grid_points(config)
    names = [point_name(point) for point in points]
    leaves = [path.rsplit(".", 1)[-1] for path in config["tune"]["grid"]]
    if len(set(leaves)) < len(leaves):
        return [f"'tune.grid': keys {list(config['tune']['grid'])} end in the same name; point folders would clash"]
    if len(set(names)) < len(names):
        return [f"'tune.grid': values that print alike ({', '.join(names)}) would share a folder"]
    shared = sorted(set(config["tune"]["seeds"]) & set(config["seeds"]))
    if shared:
        return [
            f"'tune.seeds': {', '.join(map(str, shared))} also in 'seeds'; a study run would repeat a tuning run's "
            "initialization and data order, so the test set would score a run the search chose on"
        ]
    problems = []
    images = train_size(config, config["data"]["validation"])
    for point, name in zip(points, names, strict=True):
        for variant, settings in config["variants"].items():
            where = f"tune.grid point {name}, variant {variant}"
            found = [f"{where}: {p}" for p in schema_problems(tuned_variant(settings, point), variant_schema)]
            found = found or _schedule_problems(tuned_config(config, point), variant, images, f"{where}: train")
            if found:
                problems += found
                break  # the same value usually fails every variant: one is enough to name it
    return problems


def ghost_problems(config: dict[str, Any]) -> list[str]:
    """The ghost design's rules: its largest size is the batch norms' SGD batch, every size divides it (no last
    group smaller than the rest), and some variant takes batch statistics (the only ones a statistics batch changes)."""
    reference, key = study_batch_sizes(config)[-1], "'batch_study.batch_sizes'"
    batch_norms = [
        name for name in batch_study_variants(config) if takes_batch_statistics(config["variants"][name]["norm"])
    ]
    if not batch_norms:
        return [
            f"'batch_study.variants': none of {', '.join(batch_study_variants(config))} takes batch statistics, "
            "and in the ghost design only those see a statistics batch: every size would train the same network, "
            "so the study could test nothing; list a batch-norm variant, or set batch_study.enabled: false"
        ]
    wrong = [
        f"{key}: the ghost design's largest size is its reference, the whole SGD batch, but {reference} is not "
        f"{name}'s train.batch_size {variant_recipe(config, name)['batch_size']}"
        for name in batch_norms
        if variant_recipe(config, name)["batch_size"] != reference
    ]
    divisors = ", ".join(str(size) for size in range(2, reference) if reference % size == 0)
    return wrong or [
        f"{key}: {size} does not divide the SGD batch of {reference}, so each step's last group would hold "
        f"{reference % size} image{'s' * (reference % size > 1)}, not {size}; choose divisors of it ({divisors})"
        for size in study_batch_sizes(config)
        if reference % size
    ]


def batch_study_problems(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The batch study must name known variants, some enabled, and every batch size must be a valid recipe."""
    study = config["batch_study"]
    if not study["enabled"]:
        return []
    unknown = [name for name in study["variants"] if name not in config["variants"]]
    if unknown:
        return [
            f"'batch_study.variants': {short(name)} is not a variant (variants: {', '.join(config['variants'])})"
            for name in unknown
        ]
    if not batch_study_variants(config):
        return [
            "'batch_study.variants': every variant it lists is disabled (enabled: false); list an enabled one, "
            "or set batch_study.enabled: false to leave the batch study out"
        ]
    images, available = batch_train_images(config), train_size(config)
    if images > available:
        return [f"'batch_study.train_images': {images} is more than the {available} training images"]
    precise = study["precise_bn_images"]
    if precise > images:
        return [f"'batch_study.precise_bn_images': {precise} is more than the {images} training images of a run"]
    ghost = ghost_problems(config) if ghost_design(config) else []
    if ghost:
        return ghost
    problems = []
    for batch_size in study_batch_sizes(config):
        sgd_batch = max(batch_recipe(config, name, batch_size)["batch_size"] for name in batch_study_variants(config))
        if max(batch_size, sgd_batch) > images:
            within = f"{batch_size} (its SGD batch {sgd_batch})" if sgd_batch > batch_size else str(batch_size)
            problems.append(f"'batch_study.batch_sizes': {within} is more than the {images} training images")
            continue
        for name in batch_study_variants(config):
            recipe, where = (
                batch_recipe(config, name, batch_size),
                f"batch_study batch size {batch_size}, variant {name}",
            )
            found = [f"{where}: {p}" for p in schema_problems(recipe, schema["properties"]["train"])]
            found = found or _warm_up_problems(recipe, images, f"{where}: train")
            if found:
                problems += found
                break  # one variant is enough to name a batch size that fails
    return problems
