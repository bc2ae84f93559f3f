"""The config's sources (config.yaml, each --configfile, then --config) read strictly and merged in that order.

How they merge, the one place it is decided:
- mappings merge key by key, at any depth, and every other value replaces the earlier one (Snakemake's rule),
  with two exceptions, where merging would run what nobody wrote:
- `tune.grid` is replaced as a whole by the last source that sets it: a file naming one grid key runs that grid,
  not its product with the default grid's;
- `variants` given as a list of names (`--config variants=[bn,gn]`, or a file's `variants: [bn, gn]`) chooses
  which of the variants defined so far run, and in that order; the rest are disabled. Given as a mapping it
  merges by name, as above (change one variant, or add one). A list that leaves out the control (analysis.control,
  the default study's `none`) drops the control family, unless the same source names a control itself: choosing
  two norms to look at should not need a second key; the report then says the study has no control.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from normstudy.config.recipes import merge
from normstudy.config.strict_yaml import read_strict_yaml
from normstudy.config.studies import (
    DEFAULT_STUDY,
    identity_problem,
    study_folders,
    study_identity,
    study_name_problem,
    unnamed_change_problem,
)
from normstudy.config.validation import validate_config, walk
from normstudy.values import ConfigError, short


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file read strictly (strict_yaml), refused when its aliases expand past MAX_CONFIG_NODES values or
    when it is not a mapping of keys."""
    # Aliases load as shared references (cheap); walking them is what would blow up, so count first.
    loaded = read_strict_yaml(path)
    for _ in walk(loaded):
        pass
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: holds a {type(loaded).__name__}, not keys and values (such as 'seeds: [1, 2]')")
    return loaded or {}


def chosen_variants(defined: Any, names: list[Any], source: str) -> dict[str, Any]:
    """The variants defined so far, `names` enabled in that order and the rest disabled."""
    defined = defined if isinstance(defined, dict) else {}
    unknown = [name for name in names if name not in defined]
    if not names or unknown:
        problem = f"{', '.join(map(short, unknown))} is not defined" if unknown else "it names none"
        raise ConfigError(
            f"invalid config: 'variants' in {source} chooses variants by name, but {problem} (defined: "
            f"{', '.join(defined) or 'none'}); define a new variant as a mapping (variants: {{name: {{norm: ...}}}})"
        )
    chosen = {name: {**defined[name], "enabled": True} for name in dict.fromkeys(names)}
    rest = {name: {**variant, "enabled": False} for name, variant in defined.items() if name not in chosen}
    return {**chosen, **rest}


def merge_sources(sources: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """(name, mapping) of each source, in order, merged by the rules in this module's docstring."""
    merged: dict[str, Any] = {}
    for source, values in sources:
        values = copy.deepcopy(values)
        variants = values.pop("variants", None)
        if isinstance(variants, list):
            merged["variants"] = chosen_variants(merged.get("variants"), variants, source)
        elif variants is not None:
            values["variants"] = variants
        grid = values.get("tune", {}).pop("grid", None) if isinstance(values.get("tune"), dict) else None
        names_control = isinstance(values.get("analysis"), dict) and "control" in values["analysis"]
        merged = merge(merged, values)
        if isinstance(variants, list) and not names_control:
            analysis = merged.get("analysis")
            if isinstance(analysis, dict) and analysis.get("control") not in variants:
                analysis["control"] = None
        if grid is not None:
            merged.setdefault("tune", {})
            if isinstance(merged["tune"], dict):
                merged["tune"]["grid"] = grid
    return merged


def option_values(snakemake_args: list[str], names: tuple[str, ...]) -> list[str]:
    """The values after each of the options `names` among Snakemake's arguments (up to the next option)."""
    values, taking = [], False
    for arg in snakemake_args:
        if arg in names:
            taking = True
        elif arg.startswith("-"):
            taking = False
        elif taking:
            values.append(arg)
    return values


def config_files(snakemake_args: list[str]) -> list[str]:
    """The --configfile arguments among Snakemake's."""
    return option_values(snakemake_args, ("--configfile", "--configfiles"))


def config_overrides(snakemake_args: list[str]) -> dict[str, Any]:
    """The --config entries among Snakemake's arguments, parsed as Snakemake parses them."""
    from snakemake.cli import parse_config  # only here: the workflow's parse never needs it

    return parse_config(option_values(snakemake_args, ("--config", "-C")))


def argument_sources(tree: Path, snakemake_args: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The config sources Snakemake's arguments give in `tree` (a checkout): its config.yaml, each --configfile,
    then --config, each read as the workflow reads it."""
    files = ["config.yaml", *config_files(snakemake_args)]
    sources = [(path, load_yaml(tree / path)) for path in files if (tree / path).is_file()]
    overrides = config_overrides(snakemake_args)
    return sources + ([("--config", overrides)] if overrides else [])


def study_name(tree: Path, snakemake_args: list[str]) -> str:
    """The name of the study Snakemake's arguments run in `tree`: the one resolver, as the workflow merges its
    sources (config.yaml, then each --configfile, then --config; the last that sets it wins); refused when unsafe."""
    name = str(merge_sources(argument_sources(tree, snakemake_args)).get("study", DEFAULT_STUDY))
    problem = study_name_problem(name)
    if problem:
        raise ConfigError(problem)
    return name


def load_config(*paths: str | Path) -> dict[str, Any]:
    """config.yaml and further config files, merged as the workflow merges them, then validated."""
    return validate_config(merge_sources([(str(path), load_yaml(path)) for path in paths]))


def study_folder_problem(
    sources: list[tuple[str, dict[str, Any]]], own: int, validated: dict[str, Any], amend: bool
) -> str | None:
    """Why this config may not write its study's folder (None: it may): sources after the first `own` (config.yaml)
    that change the default study without naming one, or a folder that records another config's study."""
    others = [name for name, _ in sources[own:]]
    named = any("study" in values for _, values in sources[own:])
    if own and others and not named and not amend:
        alone = merge_sources(sources[:own])
        # Validated only where the raw sources differ in what the study is (a second validation costs about 0.1 s).
        if study_identity(alone) != study_identity(merge_sources(sources)):
            problem = unnamed_change_problem(validate_config(alone), validated, others)
            if problem:
                return problem
    return identity_problem(Path(study_folders(validated["study"])["results"]), validated, amend)
