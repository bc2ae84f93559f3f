"""The typed settings of one run: frozen dataclasses, their JSON form and digest (settings.json).

Low-level modules (the IDX reader, the data, the network) import these types alone: this module reads no YAML
and knows no schema.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from normstudy import atomic
from normstudy.data.datasets import dataset_spec
from normstudy.values import ConfigError, differences, short, strict_integer

# The package modules whose code decides a run's numbers: the rules list them as the training and evaluation
# jobs' inputs, and the checkpoint key hashes them, so an edit to any of them reruns the run and never resumes
# a checkpoint made by other code.
RUN_CODE_MODULES = (
    "architecture",
    "atomic",
    "datasets",
    "engine",
    "ghost_kernel",
    "idx",
    "layout",
    "model_file",
    "network",
    "norm_layers",
    "norm_specs",
    "norms",
    "optim",
    "packing",
    "precise_bn",
    "seeding",
    "settings",
    "tensors",
    "values",
)


def run_code_modules(dataset: str) -> tuple[str, ...]:
    """The modules that decide the numbers of a run on `dataset`: RUN_CODE_MODULES, and the registry modules of that
    dataset and of its network alone (one module each, so that adding a dataset or a network reruns no other's runs)."""
    return (*RUN_CODE_MODULES, dataset, dataset_spec(dataset).network)


# settings.json holds the settings and, under this key, the digest of their canonical JSON: a file edited by hand
# no longer matches its digest and is refused, before it is trained, evaluated or published.
FILE_DIGEST = "digest"


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """SGD steps per epoch; a last batch of one image is left out (BatchNorm cannot train on it).

    The one count of steps: the config check and the training engine both use it.
    """
    usable = train_size - 1 if train_size % batch_size == 1 else train_size
    return -(-usable // batch_size)


@dataclass(frozen=True)
class VariantSettings:
    """One normalization variant: its name, norm layer, resolved group count, L1 weight and dropout."""

    name: str
    norm: str
    groups: int | None
    l1: float
    dropout: float
    # Batch norm only: N > 0 takes the training statistics over groups of N images of each batch (ghost batch norm,
    # the batch study's); 0, the whole batch. Left out of settings.json when 0, so earlier settings keep their digest.
    ghost: int = 0
    # The norm's parameters other than `groups` (which predates them), by name: left out of settings.json while
    # empty, so earlier settings keep their digest.
    params: dict[str, float] = field(default_factory=dict)

    def norm_params(self) -> dict[str, Any]:
        """The keyword arguments of the norm's builder: its parameters by name."""
        return {**({} if self.groups is None else {"groups": self.groups}), **self.params}


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
    # Added for the colour datasets (CIFAR's usual recipe); left out of settings.json at their defaults, so earlier
    # settings keep their digest.
    crop_padding: int = 0  # a random crop of the image's size from it padded by this many black pixels a side
    horizontal_flip: bool = False  # each image mirrored left-right with probability 1/2


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
    """The data's identity (its canonical MD5s, or the generator's settings) and input normalization."""

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
    # The MD5 of each file's gz file, for a dataset defined by those alone (md5 is then empty); left out when empty.
    gz_md5: dict[str, str] = field(default_factory=dict)
    # The MD5 of the archive the files were read out of, for a dataset published as one (CIFAR's python archive);
    # left out when empty.
    archive_md5: str = ""


def training_images(data: DataSettings) -> int:
    """How many images a run with these data settings trains on."""
    full = dataset_spec(data.dataset).train_size if data.synthetic is None else data.synthetic.train_size
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
        return build_settings(cls, data, "settings")

    def file_dict(self) -> dict[str, Any]:
        """settings.json's contents: the settings and their digest."""
        return {**self.to_dict(), FILE_DIGEST: self.digest()}

    @classmethod
    def read(cls, path: str | Path) -> RunSettings:
        """Read settings.json, refusing a file whose settings no longer match the digest written with them."""
        data = atomic.read_json(path)
        recorded = data.pop(FILE_DIGEST, None) if isinstance(data, dict) else None
        try:
            typed = cls.from_dict(data)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
        if recorded != typed.digest():
            raise ConfigError(
                f"{path}: edited after it was written (its settings no longer match the digest recorded with them);"
                " delete it to rebuild it from the config, or restore it"
            )
        return typed


def settings_file_problem(path: str | Path, expected: RunSettings) -> str | None:
    """Why an existing settings.json must not be used for the run the config plans there (None: it may).

    A file as write_settings left it is fine even where the config has since changed: Snakemake rebuilds it
    (its params changed). One edited by hand, or unreadable, is not: it would be trained and published as is.
    """
    try:
        data = atomic.read_json(path)
    except atomic.UnreadableFileError as error:
        return str(error)
    wanted = expected.to_dict()
    recorded = data.pop(FILE_DIGEST, None) if isinstance(data, dict) else None
    if data == wanted and recorded in (None, expected.digest()):
        return None  # None: written before settings.json carried its digest
    try:
        if recorded is not None and recorded == RunSettings.from_dict(data).digest():
            return None
    except ConfigError:
        pass
    changes = [
        f"{key} is {short(ours)} there, the config implies {short(theirs)}"
        for key, ours, theirs in differences(data, wanted)
    ]
    return (
        f"{path} was edited after it was written: {'; '.join(changes) or 'its recorded digest was changed'}."
        " Delete it to rebuild it from the config (the run then retrains), or restore it"
    )


def _has_default(spec: dataclasses.Field) -> bool:
    return spec.default is not dataclasses.MISSING or spec.default_factory is not dataclasses.MISSING


def _default(spec: dataclasses.Field) -> Any:
    return spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()


def _plain(value: Any) -> Any:
    """A settings dataclass as plain dicts and values, leaving out fields that hold their default."""
    if dataclasses.is_dataclass(value):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not _has_default(f) or getattr(value, f.name) != _default(f)
        }
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _check_value(kind: Any, value: Any, where: str) -> Any:
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = strict_integer(value)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, str)
    elif kind is dict:  # dict[str, str]
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    else:  # dict[str, float]: finite numbers by name, integers kept as written
        ok = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for k, v in value.items()
        )
    if not ok:
        raise ConfigError(f"{where}: expected {getattr(kind, '__name__', 'dict')}, got {short(value)}")
    return value


_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "dict[str, str]": dict, "dict[str, float]": "numbers"}


def build_settings(cls: type, data: Any, where: str) -> Any:
    """A settings dataclass from its dict form, type-checked field by field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {short(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = {name for name, spec in fields.items() if not _has_default(spec)}
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
            values[name] = build_settings(globals()[kind], value, at)
    return cls(**values)
