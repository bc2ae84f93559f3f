"""The study config as one typed object: built once from the validated config (validation.py), and read by the rules,
the recipes and the scripts field by field. Its `values` are that config as a mapping, for what is about the whole
config: its record (study.json), its digest and identity, and the report's copy of it.
"""

from __future__ import annotations

import copy
import json
import shlex
from dataclasses import dataclass, field, fields, replace
from typing import Any

from normstudy.data.datasets import DatasetSpec, dataset_spec
from normstudy.model.norm_specs import NormSpec, norm_params, norm_spec
from normstudy.settings import SyntheticSettings


@dataclass(frozen=True)
class FetchSettings:
    """How the dataset is fetched, not what it is: the data is defined by its canonical checksums alone.

    The download rule gets these as one object, not as builtin params: Snakemake's params rerun trigger only
    compares builtin values, so changing a source, mirror, local folder or timeout never reruns the download
    (which would delete verified files first) nor anything downstream.
    """

    sources: tuple[str, ...]
    mirrors: tuple[str, ...]
    local_dir: str | None
    timeout_s: float

    def __str__(self) -> str:
        """The download script's options, shell-quoted."""
        words = ["--sources", *self.sources, "--mirrors", *self.mirrors]
        words += [f"--local-dir={self.local_dir or ''}", "--timeout", repr(self.timeout_s)]
        return shlex.join(words)


def _frozen(value: Any) -> Any:
    """A list as a tuple (a frozen dataclass's field), any other value as it is."""
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class VariantConfig:
    """One configured variant: its norm and the norm's parameters, L1 weight, dropout, whether it runs, and its own
    values of any `train` key (merged over the shared recipe by recipes.variant_recipe)."""

    name: str
    norm: str
    params: dict[str, Any]
    l1: float
    dropout: float
    enabled: bool
    train: dict[str, Any]

    @classmethod
    def from_values(cls, name: str, values: dict[str, Any]) -> VariantConfig:
        """From a validated variant's mapping."""
        return cls(
            name,
            values["norm"],
            norm_params(values),
            float(values["l1"]),
            float(values["dropout"]),
            bool(values["enabled"]),
            copy.deepcopy(values.get("train", {})),
        )

    @property
    def spec(self) -> NormSpec:
        """Its norm's spec."""
        return norm_spec(self.norm)

    def values(self) -> dict[str, Any]:
        """The variant as the config writes it."""
        train = {"train": copy.deepcopy(self.train)} if self.train else {}
        return {"norm": self.norm, **self.params, "l1": self.l1, "dropout": self.dropout, "enabled": self.enabled,
                **train}  # fmt: skip


@dataclass(frozen=True)
class DataConfig:
    """The dataset, how it is fetched, its normalization constants and the tuning runs' held-out images."""

    dataset: str
    # How it is fetched; None in a config recorded without it (study.json: how the data came never reruns a table).
    fetch: FetchSettings | None
    mean: float
    std: float
    validation: int
    synthetic: SyntheticSettings

    @property
    def spec(self) -> DatasetSpec:
        """The dataset's spec."""
        return dataset_spec(self.dataset)


@dataclass(frozen=True)
class TuneConfig:
    """The recipe search: its seeds, whether a choice at the grid's edge fails it, and the grid (key path -> values)."""

    seeds: tuple[int, ...]
    bracket: bool
    grid: dict[str, tuple[Any, ...]]


@dataclass(frozen=True)
class BatchStudyConfig:
    """The batch-size study."""

    enabled: bool
    variants: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    epochs: int
    train_images: int | None
    design: str
    devices: int
    lr_scaling: str
    pack: str
    precise_bn_images: int
    convergence_gate: float


@dataclass(frozen=True)
class RobustnessConfig:
    """The corrupted test sets and their evaluation."""

    corruptions: tuple[str, ...]
    severities: tuple[int | str, ...]
    endpoint: str
    adaptation_batches: tuple[int, ...]
    seed: int
    precise_bn_images: int


@dataclass(frozen=True)
class Plan:
    """The declared analysis: reference variant, correction, level, equivalence margin (points), bootstrap size."""

    reference: str
    correction: str
    alpha: float
    margin: float
    test_resamples: int
    # The no-normalization control every other variant is also compared with, in a family of its own (None: none).
    control: str | None = None

    @classmethod
    def from_config(cls, analysis: dict[str, Any]) -> Plan:
        """From the validated config's `analysis` section (its decisions apart)."""
        return cls(
            analysis["reference"],
            analysis["correction"],
            float(analysis["alpha"]),
            float(analysis["margin"]),
            int(analysis["test_resamples"]),
            analysis.get("control"),
        )

    def values(self) -> dict[str, Any]:
        """The plan as the config writes it (its decisions apart); without a control, as plans were written before
        there was one (the rules' params, so existing studies rerun nothing)."""
        values = {"reference": self.reference, "correction": self.correction, "alpha": self.alpha,
                  "margin": self.margin, "test_resamples": self.test_resamples}  # fmt: skip
        return values if self.control is None else {**values, "control": self.control}

    def against_control(self) -> Plan:
        """The same plan with the control as the reference: the control family's."""
        if self.control is None:
            raise ValueError("the plan names no control")
        return replace(self, reference=self.control, control=None)


@dataclass(frozen=True)
class Misclassified:
    """The grid of each run's most confident mistakes."""

    count: int
    rows: int
    cols: int


@dataclass(frozen=True)
class Study:
    """The whole study config, typed."""

    name: str
    seeds: tuple[int, ...]
    variants: dict[str, VariantConfig]
    train: dict[str, Any]  # the shared recipe (recipes.variant_recipe merges a variant's own keys over it)
    data: DataConfig
    tune: TuneConfig
    batch_study: BatchStudyConfig
    analysis: Plan
    decisions: tuple[dict[str, str], ...]  # design choices made after seeing results, with what was seen
    robustness: RobustnessConfig
    misclassified: Misclassified
    report_title: str
    values: dict[str, Any] = field(repr=False)  # the validated config as a mapping

    @classmethod
    def from_config(cls, values: dict[str, Any]) -> Study:
        """From a validated config (`values`) with its defaults filled in."""
        data, tune, batch, robustness = values["data"], values["tune"], values["batch_study"], values["robustness"]
        synthetic = SyntheticSettings(**data["synthetic"])
        fetch = None
        if {f.name for f in fields(FetchSettings)} <= set(data):
            fetch = FetchSettings(
                tuple(data["sources"]), tuple(data["mirrors"]), data["local_dir"], float(data["timeout_s"])
            )
        inputs = (float(data["mean"]), float(data["std"]), int(data["validation"]), synthetic)
        batch_keys = [f.name for f in fields(BatchStudyConfig)]
        return cls(
            name=values["study"],
            seeds=tuple(values["seeds"]),
            variants={name: VariantConfig.from_values(name, variant) for name, variant in values["variants"].items()},
            train=copy.deepcopy(values["train"]),
            data=DataConfig(data["dataset"], fetch, *inputs),
            tune=TuneConfig(tuple(tune["seeds"]), tune["bracket"], {k: tuple(v) for k, v in tune["grid"].items()}),
            batch_study=BatchStudyConfig(**{k: _frozen(batch[k]) for k in batch_keys}),
            analysis=Plan.from_config(values["analysis"]),
            decisions=tuple(dict(entry) for entry in values["analysis"]["decisions"]),
            robustness=RobustnessConfig(**{k: _frozen(robustness[k]) for k in robustness}),
            misclassified=Misclassified(**values["misclassified"]),
            report_title=values["report"]["title"],
            values=copy.deepcopy(values),
        )

    def enabled_variants(self) -> list[str]:
        """The variants to study, in config order."""
        return [name for name, variant in self.variants.items() if variant.enabled]

    def with_variants(self, variants: dict[str, VariantConfig]) -> Study:
        """The study with these variants (a tuning grid point's), its values to match."""
        values = {**self.values, "variants": {name: variant.values() for name, variant in variants.items()}}
        return replace(self, variants=variants, values=values)


@dataclass(frozen=True)
class StudyArgument:
    """A study's whole config as a script's --config (its JSON text), given to a rule as an object, not a builtin
    value: Snakemake's params trigger compares builtin values only, so the rule reruns on the slice of the config it
    declares beside it, not on every change of the config."""

    study: Study

    def __str__(self) -> str:
        """The config as JSON, in its order."""
        return json.dumps(self.study.values)
