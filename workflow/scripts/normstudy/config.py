"""Study config: JSON-schema validation, schema defaults, and the rules a schema cannot express."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from normstudy.architecture import NORMED_CHANNELS, valid_group_counts

# GroupNorm's group count when a group variant names none: 2 divides every channel count of this CNN.
DEFAULT_GROUPS = 2
MNIST_TRAIN_SIZE = 60000
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config the study cannot run with; the message names every offending key."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read the YAML JSON-schema."""
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the offending key and what was expected."""
    path = list(error.absolute_path)
    rule, expected, value = error.validator, error.validator_value, error.instance
    if rule == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        return "; ".join(f"'{_key([*path, k])}': unknown key (allowed here: {', '.join(allowed)})" for k in unknown)
    if rule == "required":
        missing = [k for k in expected if isinstance(value, dict) and k not in value]
        return "; ".join(f"'{_key([*path, k])}': required key is missing" for k in missing)
    if rule == "propertyNames":
        return f"'{_key(path)}': {error.message} (names: letters, digits, '_' or '-', at most 40)"
    if rule == "type":
        wanted = expected if isinstance(expected, str) else " or ".join(expected)
        return f"'{_key(path)}': expected {wanted}, got {type(value).__name__} {value!r}"
    if rule == "enum":
        return f"'{_key(path)}': {value!r} is not one of {', '.join(map(str, expected))}"
    return f"'{_key(path)}': {error.message}"


def schema_problems(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every schema violation in `config`, as one message per offending key."""
    validator = jsonschema.Draft202012Validator(schema)
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


def rule_problems(config: dict[str, Any]) -> list[str]:
    """Cross-field rules the schema cannot express, on a schema-valid config with defaults.

    Also gives group variants their default group count, which only applies to norm 'group'.
    """
    problems = []
    groups_ok = valid_group_counts()
    for name, variant in config["variants"].items():
        if variant["norm"] == "group" and variant.setdefault("groups", DEFAULT_GROUPS) not in groups_ok:
            problems.append(
                f"'variants.{name}.groups': {variant['groups']} does not divide every layer's channel count "
                f"{list(NORMED_CHANNELS)}; possible: {', '.join(map(str, groups_ok))}"
            )
        if variant["norm"] != "group" and "groups" in variant:
            problems.append(f"'variants.{name}.groups': only used with norm 'group', not '{variant['norm']}'")
    if not any(variant["enabled"] for variant in config["variants"].values()):
        problems.append("'variants': every variant is disabled (enabled: false); nothing to study")
    data = config["data"]
    if data["dataset"] == "mnist" and "local" in data["sources"]:
        if not data["local_dir"]:
            problems.append("'data.local_dir': required when data.sources lists 'local'")
        elif not Path(data["local_dir"]).is_dir():
            problems.append(f"'data.local_dir': {data['local_dir']!r} is not a directory")
    if data["dataset"] == "mnist" and "mirrors" in data["sources"] and not data["mirrors"]:
        problems.append("'data.mirrors': empty, but data.sources lists 'mirrors'")
    train_size = MNIST_TRAIN_SIZE if data["dataset"] == "mnist" else data["synthetic"]["train_size"]
    recipe = config["train"]
    total_steps = recipe["epochs"] * -(-train_size // recipe["batch_size"])
    if recipe["schedule"]["pct_start"] * total_steps <= 1:
        problems.append(
            f"'train.schedule.pct_start': {recipe['schedule']['pct_start']} of {total_steps} steps leaves OneCycleLR "
            "less than one warm-up step; raise it, the epochs, or the training-set size per batch"
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
    problems = schema_problems(config, schema)
    if not problems:
        filled = with_defaults(config, schema)
        problems = schema_problems(filled, schema) or rule_problems(filled)
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))
    return filled
