"""Typed settings and small synthetic datasets for the unit tests, built the way the workflow builds them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import make_synthetic

from normstudy.config.recipes import run_settings
from normstudy.config.sources import load_yaml, merge_sources
from normstudy.config.study import Study
from normstudy.config.validation import validate_config
from normstudy.data.datasets import RAW_FILES
from normstudy.model.norm_specs import norm_spec
from normstudy.settings import RunSettings

REPO = Path(__file__).resolve().parents[1]


def takes_groups(norm: str) -> bool:
    """Whether a variant of `norm` names its groups (group norm, group norm after standardized weights, EvoNorm)."""
    spec = norm_spec(norm)
    return "groups" in spec.required_params() or "groups" in spec.one_of


def study_config(*overrides: dict[str, Any]) -> dict[str, Any]:
    """config.yaml + tests/smoke.yaml + `overrides`, merged as the workflow merges its sources, then validated."""
    files = [REPO / "config.yaml", REPO / "tests" / "smoke.yaml"]
    sources = [(str(path), load_yaml(path)) for path in files]
    return validate_config(merge_sources([*sources, *(("override", override) for override in overrides)]))


def tiny_settings(
    norm: str = "batch",
    l1: float = 0.0,
    epochs: int = 3,
    seed: int = 0,
    train_size: int = 160,
    test_size: int = 40,
    data_seed: int = 3,
    validation_size: int = 0,
    **train: Any,
) -> RunSettings:
    """A run's settings on a small synthetic set: batch 32, dropout 0.05, on the CPU (a tuning run's when
    `validation_size` > 0)."""
    config = study_config(
        {
            "variants": {
                "tiny": {"norm": norm, "l1": l1, "dropout": 0.05, **({"groups": 2} if takes_groups(norm) else {})}
            },
            "train": {"epochs": epochs, "batch_size": 32, "device": "cpu", **train},
            "data": {
                "synthetic": {"train_size": train_size, "test_size": test_size, "seed": data_seed},
                "validation": validation_size or train_size // 4,
            },
            # The smoke study's batch study trains on more images than these tiny sets hold.
            "batch_study": {"enabled": False},
        }
    )
    return run_settings(Study.from_config(config), "tiny", seed, validation_size)


@dataclass(frozen=True)
class DataFiles:
    """The four IDX files of a dataset and the provenance.json they are checked against."""

    files: list[Path]
    provenance: Path


def write_synthetic(folder: Path, train_size: int, test_size: int, seed: int) -> DataFiles:
    """Generate synthetic digits into `folder` with the workflow's own script."""
    data = DataFiles([folder / name for name in RAW_FILES], folder / "provenance.json")
    make_synthetic.main(data.files, data.provenance, train_size, test_size, seed)
    return data


def synthetic_files(folder: Path, settings: RunSettings) -> DataFiles:
    """Generate the synthetic dataset `settings` names into `folder`."""
    generator = settings.data.synthetic
    assert generator is not None
    return write_synthetic(folder, generator.train_size, generator.test_size, generator.seed)


def inject_spec(study: Path, dataset: str, **fields: Any) -> None:
    """Replace `fields` of the registry's spec of `dataset` in a workflow copy (its module appended to, as a test
    injects the checksums, sizes and mirror of an archive it built)."""
    module = study / "workflow/scripts/normstudy/data/sets" / f"{dataset}.py"
    replaced = ", ".join(f"{name}={value!r}" for name, value in fields.items())
    with open(module, "a", encoding="utf-8") as handle:
        handle.write(
            f"\n\nimport dataclasses  # noqa: E402 (a test's archive)\n\nSPEC = dataclasses.replace(SPEC, {replaced})\n"
        )
