"""Config validation: the safe YAML loader, the JSON schema and its messages, the schema's defaults, and every
cross-field rule a schema cannot express (tuning grid and batch study included)."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from normstudy.architecture import NORMED_CHANNELS, valid_group_counts
from normstudy.controls import control_name, is_control
from normstudy.recipes import (
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
from normstudy.settings import MAX_QUOTED, ConfigError, short, steps_per_epoch, strict_integer
from normstudy.studies import study_name_problem

__all__ = ["ConfigError", "load_schema", "validate_config"]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
# The schema's pattern is matched with re.search, where '$' also matches before a final newline.
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
# A study config has about a hundred values; YAML aliases can make a few lines stand for billions.
MAX_CONFIG_NODES = 10_000


def _key(path: Iterable[Any]) -> str:
    text = ".".join(str(part) for part in path) or "(top level)"
    return text if len(text) <= MAX_QUOTED * 2 else text[: MAX_QUOTED * 2] + "..."


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
        f"'{_key(path)}': {value!r} is not a finite number"
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
            problems.append(f"'{_key(path)}': holds the control character {name} at position {first + 1}; remove it")
    return sorted(problems)


def _without_defaults(node: Any) -> Any:
    """A schema node with every `default` and `required` removed, at any depth."""
    if isinstance(node, dict):
        return {key: _without_defaults(value) for key, value in node.items() if key not in ("default", "required")}
    if isinstance(node, list):
        return [_without_defaults(value) for value in node]
    return node


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read the YAML JSON-schema; a variant's `train` overrides get the train section's checks."""
    with open(path, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    overrides = schema["properties"]["variants"]["additionalProperties"]["properties"]["train"]
    overrides.update(_without_defaults(schema["properties"]["train"]))
    return schema


def _strict_integer(_checker: Any, instance: Any) -> bool:
    return strict_integer(instance)


Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)
# Snakemake's --config train='{epochs: 1}' gives {"epochs": "1"}: nested values arrive as text.
CONFIG_CLI_HINT = (
    "the value is text (quoted in YAML, or nested in Snakemake's --config, which passes nested values as text); "
    "write nested keys in a YAML file and pass it with --configfile FILE"
)


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the offending key and what was expected, quoting at most a short prefix of the value."""
    path = list(error.absolute_path)
    rule, expected, value = error.validator, error.validator_value, error.instance
    if rule == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(map(str, set(value) - set(allowed))) if isinstance(value, dict) else []
        more = f"; and {len(unknown) - 5} more unknown keys" if len(unknown) > 5 else ""
        return (
            "; ".join(f"'{_key([*path, k])}': unknown key (allowed here: {', '.join(allowed)})" for k in unknown[:5])
            + more
        )
    if rule == "required":
        missing = [k for k in expected if isinstance(value, dict) and k not in value]
        return "; ".join(f"'{_key([*path, k])}': required key is missing" for k in missing)
    if rule == "propertyNames":
        return (
            f"'{_key(path)}': name {short(value)} does not match {expected['pattern']} "
            "(names: letters, digits, '_' or '-', at most 40)"
        )
    if rule == "pattern" and "propertyNames" in error.schema_path:
        return f"'{_key(path)}': key {short(value)} does not match {expected}, so it is not allowed here"
    if path == ["study"] and rule in ("pattern", "not"):
        return study_name_problem(value) or f"'study': {short(value)} is not allowed"
    if rule == "type":
        wanted = expected if isinstance(expected, str) else " or ".join(expected)
        said = f"'{_key(path)}': expected {wanted}, got {type(value).__name__} {short(value)}"
        if wanted == "integer" and isinstance(value, float):
            return f"{said} (write {value:.0f}, without a decimal point)"
        if isinstance(value, str) and wanted != "string":
            return f"{said}: {CONFIG_CLI_HINT}"
        return said
    if rule == "enum":
        return f"'{_key(path)}': {short(value)} is not one of {', '.join(map(str, expected))}"
    # jsonschema's own messages start with the whole value's repr; keep only a short one.
    message, full = error.message, repr(value)
    if message.startswith(full):
        message = short(value) + message[len(full) :]
    return f"'{_key(path)}': {message[:200]}"


def schema_problems(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every schema violation in `config`, as one message per offending key."""
    validator = Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [_describe(error) for error in errors]


def with_defaults(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` with the schema's defaults filled in where keys are absent."""
    filled = copy.deepcopy(config)

    def fill(instance: Any, node: dict[str, Any]) -> None:
        if not isinstance(instance, dict):
            return
        for name, sub in node.get("properties", {}).items():
            if name not in instance and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
            if name in instance:
                fill(instance[name], sub)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for name, value in instance.items():
                if name not in node.get("properties", {}):
                    fill(value, extra)

    fill(filled, schema)
    return filled


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


def rule_problems(config: dict[str, Any]) -> list[str]:
    """Cross-field rules the schema cannot express, on a schema-valid config with defaults.

    Also gives group variants their default group count, which only applies to norm 'group'.
    """
    problems = [problem for problem in [study_name_problem(config["study"])] if problem]
    groups_ok = valid_group_counts()
    for name, variant in config["variants"].items():
        if not VARIANT_NAME.fullmatch(name):
            problems.append(
                f"'variants': name {short(name)} must consist of letters, digits, '_' or '-' only (at most 40), "
                "with nothing after it (a trailing newline or space included)"
            )
        if variant["norm"] == "group" and variant["groups"] not in groups_ok:
            problems.append(
                f"'variants.{name}.groups': {variant['groups']} does not divide every layer's channel count "
                f"{list(NORMED_CHANNELS)}; possible: {', '.join(map(str, groups_ok))}"
            )
        if variant["norm"] != "group" and "groups" in variant:
            problems.append(f"'variants.{name}.groups': only used with norm 'group', not '{variant['norm']}'")
    if not any(variant["enabled"] for variant in config["variants"].values()):
        problems.append("'variants': every variant is disabled (enabled: false); nothing to study")
    reference = config["analysis"]["reference"]
    if reference not in config["variants"] or not config["variants"][reference]["enabled"]:
        enabled = [name for name, variant in config["variants"].items() if variant["enabled"]]
        problems.append(
            f"'analysis.reference': {short(reference)} is not a studied variant (enabled: {', '.join(enabled)}); the "
            "family of comparisons is every other variant against it"
        )
    data = config["data"]
    if data["dataset"] == "mnist" and "local" in data["sources"]:
        if not data["local_dir"]:
            problems.append("'data.local_dir': required when data.sources lists 'local'")
        elif not Path(data["local_dir"]).is_dir():
            problems.append(f"'data.local_dir': {short(data['local_dir'])} is not a directory")
    if data["dataset"] == "mnist" and "mirrors" in data["sources"] and not data["mirrors"]:
        problems.append("'data.mirrors': empty, but data.sources lists 'mirrors'")
    schedule_problems = []
    for name, variant in config["variants"].items():
        own = variant.get("train", {})
        # Named where the step count comes from: the variant's own keys, or the shared train section.
        own_steps = "epochs" in own or "batch_size" in own or "pct_start" in own.get("schedule", {})
        where = f"variants.{name}.train" if own_steps else "train"
        schedule_problems += _schedule_problems(config, name, train_size(config), where)
    problems += list(dict.fromkeys(schedule_problems))
    if data["validation"] >= train_size(config):
        problems.append(
            f"'data.validation': {data['validation']} held-out images leave none of the {train_size(config)} "
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
    batch_norms = [name for name in batch_study_variants(config) if config["variants"][name]["norm"] == "batch"]
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
        if batch_size > images:
            problems.append(f"'batch_study.batch_sizes': {batch_size} is more than the {images} training images")
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
