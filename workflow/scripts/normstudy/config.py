"""Study config: validation (JSON schema + the rules a schema cannot express) and the typed settings of one run."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import reprlib
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from normstudy.architecture import NORMED_CHANNELS, valid_group_counts
from normstudy.dataset import CANONICAL_MD5, MNIST_TRAIN_SIZE

# The faster tensor layout per norm on the CPU (train.memory_format: auto). Measured by `make bench` (1 thread,
# batch 128, 2-core development machine, img/s channels_last vs contiguous): batch 4,284 vs 3,720, group 4,226 vs
# 4,292, layer 5,100 vs 4,195, instance 2,472 vs 4,075 (GroupNorm(C, C) over NHWC is 1.6x slower).
FASTER_LAYOUT = {"batch": "channels_last", "group": "channels_last", "layer": "channels_last", "instance": "contiguous"}

# The batch study packs a variant's seeds into one network (model.NormNet with copies) at batch sizes up to this
# (batch_study.pack: auto). `make bench` (1 thread, 3 seeds packed against one model, in FASTER_LAYOUT, img/s of
# every model's images, 2-core development machine, two runs): packing paid 1.25-2.24x for bn, gn and ln at every
# batch size from 2 to 16, 0.93-1.40x at 32, and cost 0.60-0.94x at 128 (README, Benchmark).
PACKING_PAYS_UP_TO = 16

# GroupNorm's group count when a group variant names none: 2 divides every channel count of this CNN.
DEFAULT_GROUPS = 2
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
# The schema's pattern is matched with re.search, where '$' also matches before a final newline.
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
# A study config has about a hundred values; YAML aliases can make a few lines stand for billions.
MAX_CONFIG_NODES = 10_000
MAX_QUOTED = 60
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, MAX_QUOTED, 40


class ConfigError(ValueError):
    """A config the study cannot run with; the message names every offending key."""


def short(value: Any) -> str:
    """A bounded repr of a config value, for error messages: huge or deep values are cut."""
    text = _SHORT.repr(value)
    return text if len(text) <= MAX_QUOTED + 20 else text[: MAX_QUOTED + 17] + "..."


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
    # JSON Schema counts 2.0 as an integer; Python's range(), torch and argparse do not.
    return isinstance(instance, int) and not isinstance(instance, bool)


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


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """SGD steps per epoch; a last batch of one image is left out (BatchNorm cannot train on it).

    The one count of steps: the config check and the training engine both use it.
    """
    usable = train_size - 1 if train_size % batch_size == 1 else train_size
    return -(-usable // batch_size)


def train_size(config: dict[str, Any], validation_size: int = 0) -> int:
    """Images a training epoch draws from, for the configured dataset, less any held-out validation images."""
    data = config["data"]
    full = MNIST_TRAIN_SIZE if data["dataset"] == "mnist" else data["synthetic"]["train_size"]
    return full - validation_size


def variant_recipe(config: dict[str, Any], name: str) -> dict[str, Any]:
    """One variant's training recipe: the train section with the variant's own `train` overrides merged in."""
    return merge(config["train"], config["variants"][name].get("train", {}))


def _schedule_problems(config: dict[str, Any], name: str, images: int, where: str) -> list[str]:
    """OneCycleLR needs more than one warm-up step."""
    return _warm_up_problems(variant_recipe(config, name), images, where)


def _warm_up_problems(recipe: dict[str, Any], images: int, where: str) -> list[str]:
    """A recipe's OneCycleLR needs more than one warm-up step on `images` training images."""
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
    problems = []
    groups_ok = valid_group_counts()
    for name, variant in config["variants"].items():
        if not VARIANT_NAME.fullmatch(name):
            problems.append(
                f"'variants': name {short(name)} must consist of letters, digits, '_' or '-' only (at most 40), "
                "with nothing after it (a trailing newline or space included)"
            )
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
    problems = non_finite_problems(config) + schema_problems(config, schema)
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


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge like Snakemake's --configfile: mappings merge recursively, other values replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file, refused when its aliases expand past MAX_CONFIG_NODES values."""
    with open(path, encoding="utf-8") as handle:
        # Aliases load as shared references (cheap); walking them is what would blow up, so count first.
        loaded = yaml.safe_load(handle)
    for _ in walk(loaded):
        pass
    return loaded or {}


def load_config(*paths: str | Path) -> dict[str, Any]:
    """config.yaml merged with further config files, as Snakemake merges them, then validated."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merge(merged, load_yaml(path))
    return validate_config(merged)


# ---- The typed settings of one run: built once from the validated config, written as settings.json. ----


@dataclass(frozen=True)
class VariantSettings:
    """One normalization variant: its name, norm layer, resolved group count, L1 weight and dropout."""

    name: str
    norm: str
    groups: int | None
    l1: float
    dropout: float


@dataclass(frozen=True)
class OptimizerSettings:
    """SGD's settings."""

    momentum: float
    weight_decay: float
    nesterov: bool


@dataclass(frozen=True)
class ScheduleSettings:
    """OneCycleLR's settings."""

    max_lr: float
    pct_start: float
    div_factor: float
    final_div_factor: float
    anneal_strategy: str


@dataclass(frozen=True)
class AugmentSettings:
    """Training-time augmentation."""

    rotation_degrees: float


@dataclass(frozen=True)
class TrainSettings:
    """The training recipe."""

    epochs: int
    batch_size: int
    optimizer: OptimizerSettings
    schedule: ScheduleSettings
    augment: AugmentSettings
    device: str
    memory_format: str  # channels_last | contiguous: `auto` is resolved per norm (FASTER_LAYOUT)
    threads: int


@dataclass(frozen=True)
class SyntheticSettings:
    """What the synthetic digits are a pure function of."""

    train_size: int
    test_size: int
    seed: int


@dataclass(frozen=True)
class DataSettings:
    """The data's identity (MNIST's canonical MD5s, or the generator's settings) and input normalization."""

    dataset: str
    md5: dict[str, str]
    synthetic: SyntheticSettings | None
    mean: float
    std: float
    # 0: a study run (trains on every training image, is scored on the test set). N > 0: a tuning run (trains
    # on all but the last N training images and is scored on those; the test files are not even read).
    validation_size: int
    # N > 0: the run trains on the first N images of its training split (the batch study); 0: on all of them.
    # Added after runs were recorded: settings.json leaves it out when 0, so earlier settings keep their digest.
    train_images: int = 0


def training_images(data: DataSettings) -> int:
    """How many images a run with these data settings trains on."""
    full = MNIST_TRAIN_SIZE if data.synthetic is None else data.synthetic.train_size
    return data.train_images or full - data.validation_size


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides one run's numbers, besides code and environment."""

    variant: VariantSettings
    train: TrainSettings
    data: DataSettings
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (settings.json); a field with a default is left out while it holds it."""
        return _plain(self)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, so equal settings give equal text."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSettings:
        """Rebuild from settings.json, refusing missing or unknown keys and values of the wrong type."""
        return _build(cls, data, "settings")

    @classmethod
    def read(cls, path: str | Path) -> RunSettings:
        """Read settings.json."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _plain(value: Any) -> Any:
    """A settings dataclass as plain dicts and values, leaving out fields that hold their default."""
    if dataclasses.is_dataclass(value):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.default is dataclasses.MISSING or getattr(value, f.name) != f.default
        }
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _check_value(kind: Any, value: Any, where: str) -> Any:
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = _strict_integer(None, value)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, str)
    else:  # dict[str, str]
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if not ok:
        raise ConfigError(f"{where}: expected {getattr(kind, '__name__', 'dict')}, got {short(value)}")
    return value


_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "dict[str, str]": dict}


def _build(cls: type, data: Any, where: str) -> Any:
    """A settings dataclass from its dict form, type-checked field by field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {short(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = {name for name, spec in fields.items() if spec.default is dataclasses.MISSING}
    unknown, missing = sorted(set(data) - set(fields)), sorted(required - set(data))
    if unknown or missing:
        raise ConfigError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    values = {}
    for name, spec in fields.items():
        if name not in data:
            continue  # left out at its default (see _plain)
        kind, value, at = spec.type, data[name], f"{where}.{name}"
        optional = kind.endswith(" | None")
        kind = kind.removesuffix(" | None")
        if value is None and optional:
            values[name] = None
        elif kind in _TYPES:
            values[name] = _check_value(_TYPES[kind], value, at)
        else:
            values[name] = _build(globals()[kind], value, at)
    return cls(**values)


def variant_settings(config: dict[str, Any], name: str) -> VariantSettings:
    """The typed settings of one configured variant (group count resolved)."""
    variant = config["variants"][name]
    groups = variant.get("groups", DEFAULT_GROUPS) if variant["norm"] == "group" else None
    return VariantSettings(name, variant["norm"], groups, float(variant["l1"]), float(variant["dropout"]))


def data_settings(config: dict[str, Any], validation_size: int = 0, train_images: int = 0) -> DataSettings:
    """The data's identity and normalization constants from the validated config."""
    data = config["data"]
    mnist = data["dataset"] == "mnist"
    return DataSettings(
        dataset=data["dataset"],
        md5=dict(CANONICAL_MD5) if mnist else {},
        synthetic=None if mnist else SyntheticSettings(**data["synthetic"]),
        mean=float(data["mean"]),
        std=float(data["std"]),
        validation_size=validation_size,
        train_images=train_images,
    )


def _train_settings(recipe: dict[str, Any], norm: str, where: str) -> TrainSettings:
    """A recipe as typed settings, `auto` memory format resolved for the norm (FASTER_LAYOUT)."""
    if recipe["memory_format"] == "auto":
        recipe = {**recipe, "memory_format": FASTER_LAYOUT[norm]}
    return _build(TrainSettings, recipe, where)


def run_settings(config: dict[str, Any], variant: str, seed: int, validation_size: int = 0) -> RunSettings:
    """The one typed settings object of a run, from the validated config (a tuning run holds out images)."""
    norm = config["variants"][variant]["norm"]
    train = _train_settings(variant_recipe(config, variant), norm, f"variants.{variant}.train")
    return RunSettings(variant_settings(config, variant), train, data_settings(config, validation_size), int(seed))


# ---- Tuning: a grid of variant settings, each point trained on the training split less the validation images.


def grid_points(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the tuning grid's values, in config order: key path -> value."""
    grid = config["tune"]["grid"]
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


def tuned_config(config: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """The config with every variant set to one grid point."""
    variants = {name: tuned_variant(variant, point) for name, variant in config["variants"].items()}
    return {**config, "variants": variants}


def tuning_points(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Point name -> point, for every grid point."""
    return {point_name(point): point for point in grid_points(config)}


def tuning_settings(config: dict[str, Any], variant: str, point: str, seed: int) -> RunSettings:
    """The settings of one tuning run: a variant at one grid point, holding out the validation images."""
    tuned = tuned_config(config, tuning_points(config)[point])
    return run_settings(tuned, variant, seed, validation_size=config["data"]["validation"])


def tune_problems(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every grid point must give every variant a valid config, on the training images tuning runs keep."""
    points = grid_points(config)
    names = [point_name(point) for point in points]
    leaves = [path.rsplit(".", 1)[-1] for path in config["tune"]["grid"]]
    if len(set(leaves)) < len(leaves):
        return [f"'tune.grid': keys {list(config['tune']['grid'])} end in the same name; point folders would clash"]
    if len(set(names)) < len(names):
        return [f"'tune.grid': values that print alike ({', '.join(names)}) would share a folder"]
    problems = []
    variant_schema = schema["properties"]["variants"]["additionalProperties"]
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


# ---- The batch-size study: listed variants at each batch size, the learning rate scaled from their own recipe's.

LR_SCALING = {"linear": lambda ratio: ratio, "sqrt": math.sqrt, "none": lambda ratio: 1.0}


def scaled_lr(max_lr: float, batch_size: int, base_batch_size: int, rule: str) -> float:
    """The peak learning rate at `batch_size` from the recipe's at `base_batch_size`: linear (Goyal et al. 2017,
    as in the GN paper), square root, or unchanged."""
    return max_lr * LR_SCALING[rule](batch_size / base_batch_size)


def study_batch_sizes(config: dict[str, Any]) -> list[int]:
    """The batch study's batch sizes, smallest first."""
    return sorted(config["batch_study"]["batch_sizes"])


def is_packed(config: dict[str, Any], batch_size: int) -> bool:
    """Whether the batch study trains its seeds at this batch size packed into one network (one job per variant)."""
    study = config["batch_study"]
    if len(study["seeds"]) < 2:
        return False
    return {"always": True, "never": False, "auto": batch_size <= PACKING_PAYS_UP_TO}[study["pack"]]


def batch_recipe(config: dict[str, Any], variant: str, batch_size: int) -> dict[str, Any]:
    """A variant's recipe at one batch size of the batch study: its epochs, and the peak LR scaled by its rule."""
    study, recipe = config["batch_study"], variant_recipe(config, variant)
    schedule = recipe["schedule"]
    schedule["max_lr"] = scaled_lr(schedule["max_lr"], batch_size, recipe["batch_size"], study["lr_scaling"])
    return {**recipe, "batch_size": batch_size, "epochs": study["epochs"], "schedule": schedule}


def batch_train_images(config: dict[str, Any]) -> int:
    """Training images of a batch-study run (the first N of the training set)."""
    return config["batch_study"]["train_images"] or train_size(config)


def batch_run_settings(config: dict[str, Any], variant: str, batch_size: int, seed: int) -> RunSettings:
    """The settings of one batch-study run: a variant at a batch size, on the first train_images images."""
    norm = config["variants"][variant]["norm"]
    where = f"batch_study batch size {batch_size}, variant {variant}"
    train = _train_settings(batch_recipe(config, variant, batch_size), norm, where)
    # The whole training set is 0, as in every other run's settings: one run, one digest.
    images = batch_train_images(config)
    data = data_settings(config, train_images=0 if images == train_size(config) else images)
    return RunSettings(variant_settings(config, variant), train, data, int(seed))


def batch_study_variants(config: dict[str, Any]) -> list[str]:
    """The batch study's variants, in its own order: those it lists that are enabled (`enabled: false` skips a
    variant everywhere)."""
    return [name for name in config["batch_study"]["variants"] if config["variants"][name]["enabled"]]


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


@dataclass(frozen=True)
class FetchSettings:
    """How MNIST is fetched, not what it is: the data is defined by its canonical checksums alone.

    The download rule gets these as one object, not as builtin params: Snakemake's params rerun trigger only
    compares builtin values, so changing a source, mirror, local folder or timeout never reruns the download
    (which would delete verified files first) nor anything downstream.
    """

    sources: tuple[str, ...]
    mirrors: tuple[str, ...]
    local_dir: str | None
    timeout_s: float

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FetchSettings:
        """The fetch-only keys of the validated config's `data` section."""
        data = config["data"]
        return cls(tuple(data["sources"]), tuple(data["mirrors"]), data["local_dir"], float(data["timeout_s"]))

    def __str__(self) -> str:
        """The download script's options, shell-quoted."""
        words = ["--sources", *self.sources, "--mirrors", *self.mirrors]
        words += [f"--local-dir={self.local_dir or ''}", "--timeout", repr(self.timeout_s)]
        return shlex.join(words)
