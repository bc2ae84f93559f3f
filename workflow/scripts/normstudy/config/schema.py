"""The config's JSON schema (workflow/schemas/config.schema.yaml): reading it, checking a config against it with one
line per offending key, and filling in its defaults."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from normstudy.config.studies import study_name_problem
from normstudy.data.datasets import all_datasets
from normstudy.model.norm_specs import NORMS, all_params
from normstudy.values import MAX_QUOTED, short, strict_integer

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "config.schema.yaml"


def key_text(path: Iterable[Any]) -> str:
    """A key path as the messages name it ("train.schedule.max_lr"), shortened when very long."""
    text = ".".join(str(part) for part in path) or "(top level)"
    return text if len(text) <= MAX_QUOTED * 2 else text[: MAX_QUOTED * 2] + "..."


def _without_defaults(node: Any) -> Any:
    """A schema node with every `default` and `required` removed, at any depth."""
    if isinstance(node, dict):
        return {key: _without_defaults(value) for key, value in node.items() if key not in ("default", "required")}
    if isinstance(node, list):
        return [_without_defaults(value) for value in node]
    return node


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read the YAML JSON-schema; a variant's `train` overrides get the train section's checks, its `norm` and the
    norms' parameters the norm registry's, and `data.dataset` the dataset registry's names."""
    with open(path, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    dataset = schema["properties"]["data"]["properties"]["dataset"]
    dataset["enum"] = list(all_datasets())
    dataset["description"] += ": " + "; ".join(f"{spec.name} ({spec.title})" for spec in all_datasets().values())
    variant = schema["properties"]["variants"]["additionalProperties"]
    overrides = variant["properties"]["train"]
    overrides.update({**_without_defaults(schema["properties"]["train"]), "description": overrides["description"]})
    norm = variant["properties"]["norm"]
    norm["enum"] = list(NORMS)
    norm["description"] += ": " + "; ".join(f"{spec.name} ({spec.description})" for spec in NORMS.values())
    for param in all_params().values():
        variant["properties"][param.name] = {**param.schema, "description": param.description}
    variant["allOf"] = [
        {
            "if": {"properties": {"norm": {"const": spec.name}}, "required": ["norm"]},
            "then": {"required": spec.required_params()},
        }
        for spec in NORMS.values()
        if spec.required_params()
    ]
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
            "; ".join(
                f"'{key_text([*path, k])}': unknown key (allowed here: {', '.join(allowed)})" for k in unknown[:5]
            )
            + more
        )
    if rule == "anyOf":  # each alternative's reason: "6 is greater than the maximum of 5; or 'published' was expected"
        return f"'{key_text(path)}': " + "; or ".join(_describe(sub).split(": ", 1)[1] for sub in error.context)
    if rule == "required":
        missing = [k for k in expected if isinstance(value, dict) and k not in value]
        return "; ".join(f"'{key_text([*path, k])}': required key is missing" for k in missing)
    if rule == "propertyNames":
        return (
            f"'{key_text(path)}': name {short(value)} does not match {expected['pattern']} "
            "(names: letters, digits, '_' or '-', at most 40)"
        )
    if rule == "pattern" and "propertyNames" in error.schema_path:
        return f"'{key_text(path)}': key {short(value)} does not match {expected}, so it is not allowed here"
    if path == ["study"] and rule in ("pattern", "not"):
        return study_name_problem(value) or f"'study': {short(value)} is not allowed"
    if rule == "type":
        wanted = expected if isinstance(expected, str) else " or ".join(expected)
        said = f"'{key_text(path)}': expected {wanted}, got {type(value).__name__} {short(value)}"
        if wanted == "integer" and isinstance(value, float):
            return f"{said} (write {value:.0f}, without a decimal point)"
        if isinstance(value, str) and wanted != "string":
            return f"{said}: {CONFIG_CLI_HINT}"
        return said
    if rule == "enum":
        return f"'{key_text(path)}': {short(value)} is not one of {', '.join(map(str, expected))}"
    # jsonschema's own messages start with the whole value's repr; keep only a short one.
    message, full = error.message, repr(value)
    if message.startswith(full):
        message = short(value) + message[len(full) :]
    return f"'{key_text(path)}': {message[:200]}"


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
