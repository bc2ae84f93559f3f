"""The report page: the template context from the study's files, and its rendering with Jinja2."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import yaml

from normstudy.analysis.batches import GN_PAPER_BATCH_SIZES, GN_PAPER_ERROR, ordering
from normstudy.analysis.declared import read_facts
from normstudy.analysis.findings import family_verdict, key_results, sensitivity_sentence
from normstudy.analysis.tuning import configured_matches_chosen, search_digest
from normstudy.config.recipes import ghost_design
from normstudy.config.studies import study_folders
from normstudy.config.study import Study
from normstudy.controls import visible_controls
from normstudy.data.datasets import TEST_IMAGES, TRAIN_IMAGES, DatasetSpec
from normstudy.model.norm_specs import takes_batch_statistics
from normstudy.report import provenance
from normstudy.report.model_section import model_note, variant_rows
from normstudy.report.robustness_section import RobustnessInputs, robustness_context, shift_sentences
from normstudy.values import config_digest

# Where an image lives on the page: a data: URI (one self-contained file) or a path relative to index.html.
ImageSource = Callable[[Path, str], str]


@dataclass(frozen=True)
class BatchInputs:
    """The batch-size study's tables, figure and training jobs (batch_study.smk)."""

    summary: Path
    comparisons: Path
    changes: Path
    gate: Path
    figure: Path
    jobs: list[dict[str, Any]]  # per training job: variant, first seed, batch size, its job.json and benchmark file


@dataclass(frozen=True)
class ReportInputs:
    """Every file the report reads, named by what it is (the report rule spells each path)."""

    study: Path  # study.json: the config and what the recipes derive from it (describe_study.py)
    summary: Path
    comparisons: Path
    per_class: Path
    runs_table: Path
    model_summary: Path
    receptive_field: Path
    figures: list[Path]
    runs: list[dict[str, Any]]  # per run: variant, seed and its job, benchmark, metrics and grid files
    data_provenance: Path
    tuning_summary: Path  # the recorded recipe search (workflow/resources/tuning/, written by `make tune`)
    tuning_search: Path
    tuning_figure: Path
    family: Path  # the declared analysis: each variant against the reference (aggregate.py)
    analysis: Path  # its model's facts: plan, residual sd and df, sensitivity, prediction intervals
    robustness: RobustnessInputs | None  # the corrupted test sets' study (robustness.smk); None: left out
    batch: BatchInputs | None = None  # None: batch_study.enabled is false
    environment: Path | None = None  # environment.json: where the tables were written and the runs trained
    control: Path | None = None  # every variant against the no-normalization control (aggregate.py); empty: none
    # Searches recorded beside the main one (workflow/resources/tuning/pieces/<study>/), each its own folder.
    tuning_pieces: list[Path] = field(default_factory=list)


def data_uri(path: Path, _name: str = "") -> str:
    """A PNG as a data: URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_num(value: Any, digits: int = 2) -> str:
    """A number with fixed decimals; an en dash where there is none."""
    return "–" if _missing(value) else f"{float(value):,.{digits}f}"


def fmt_signed(value: Any, digits: int = 2) -> str:
    """A difference with its sign."""
    return "–" if _missing(value) else f"{float(value):+.{digits}f}"


def render(context: dict[str, Any], template: Path) -> str:
    """Render the Jinja2 template with autoescaping: text from config shows as text, never as HTML, and every
    value's control characters as visible escapes (visible_controls)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template.parent),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        finalize=visible_controls,
    )
    env.filters.update(pct=fmt_num, num=fmt_num, signed=fmt_signed)
    return env.get_template(template.name).render(**context)


def config_yaml(config: dict[str, Any]) -> str:
    """The validated config as YAML: every key, defaults included, so it reproduces the study on its own."""
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)


def reproduce(config: dict[str, Any], git: provenance.GitState, config_name: str) -> dict[str, Any]:
    """The commands that rebuild this report, and whether the checkout alone can."""
    remote = git.remote or "<this repository's URL>"
    return {
        "commands": [
            f"git clone {remote} normstudy && cd normstudy",
            f"git checkout {git.commit}",
            f"# save the config below as {config_name}, then:",
            f"snakemake --cores all --configfile {config_name}",
        ],
        "dirty": git.dirty,
        "config_name": config_name,
        "config_yaml": config_yaml(config),
    }


def batch_cell(cells: pd.DataFrame, variant: str, size: int) -> dict[str, Any] | None:
    """One variant's figures at one size of the batch study (None: it did not run there)."""
    if (variant, size) not in cells.index:
        return None
    row = cells.loc[(variant, size)].to_dict()
    return {**row, "batch_statistics": takes_batch_statistics(row["norm"])}


def read_study(path: Path) -> dict[str, Any]:
    """study.json: the validated config, and what the recipes derive from it."""
    return json.loads(path.read_text(encoding="utf-8"))


def tuning_context(
    study: dict[str, Any], typed: Study, names: list[str], inputs: ReportInputs, image: ImageSource
) -> dict[str, Any]:
    """The recorded recipe search: its table, whether it is this config's search, and whether the config uses it;
    and each search recorded beside it (piece_context)."""
    record = json.loads(inputs.tuning_search.read_text(encoding="utf-8"))
    summary = pd.read_csv(inputs.tuning_summary)
    same_search = record["search_sha256"] == study["tuning"]["search_sha256"]
    uses_choice = study["tuning"]["uses_choice"] if same_search else {}
    pieces = [piece_context(folder, typed, image) for folder in inputs.tuning_pieces]
    # A variant may run with the choice of a search recorded beside the main one (its own, extended grid).
    elsewhere = [
        name
        for name in names
        if not uses_choice.get(name, True) and any(piece["uses_choice"].get(name) for piece in pieces)
    ]
    return {
        "record": record,
        "rows": summary.to_dict("records"),
        "same_search": same_search,
        "uses_choice": uses_choice,
        "elsewhere": elsewhere,
        "other_values": [name for name in names if not uses_choice.get(name, True) and name not in elsewhere],
        "all_use_choice": same_search and all(uses_choice.get(name, False) or name in elsewhere for name in names),
        "figure": image(inputs.tuning_figure, "tuning_validation_accuracy"),
        "pieces": pieces,
    }


def piece_context(folder: Path, typed: Study, image: ImageSource) -> dict[str, Any]:
    """A search recorded beside the main one: its record and table, whether it is this config's search of its
    variants on its own grid and seeds (the same digest of their tuning runs' settings: a piece may extend the main
    grid, as instance norm's does), and which of them run with its choice."""
    record = json.loads((folder / "search.json").read_text(encoding="utf-8"))
    summary = pd.read_csv(folder / "summary.csv")
    known = all(name in typed.variants for name in record["variants"])
    grid = {key: tuple(values) for key, values in record["grid"].items()}
    searched = dataclasses.replace(typed, tune=dataclasses.replace(typed.tune, seeds=tuple(record["seeds"]), grid=grid))
    same_search = known and record["search_sha256"] == search_digest(searched, list(record["variants"]))
    return {
        "name": folder.name,
        "record": record,
        "rows": summary.to_dict("records"),
        "same_search": same_search,
        "uses_choice": configured_matches_chosen(searched, summary) if same_search else {},
        "figure": image(folder / "validation_accuracy.png", f"tuning_{folder.name}"),
    }


def batch_context(study: dict[str, Any], typed: Study, batch: BatchInputs, image: ImageSource) -> dict[str, Any]:
    """The batch-size section: the gate and the verdict, the error table in both evaluation modes beside the GN
    paper's, batch norm's changes and its comparisons with the batch-free norms, and how the runs were made.
    `study` is study.json (the facts derived from the config), `typed` its config."""
    facts = study["batch"]
    summary = pd.read_csv(batch.summary)
    comparisons = pd.read_csv(batch.comparisons)
    changes = pd.read_csv(batch.changes)
    gate = pd.read_csv(batch.gate)
    variants = list(dict.fromkeys(summary["variant"]))
    cells = summary.set_index(["variant", "batch_size"])
    paper = {name: dict(zip(GN_PAPER_BATCH_SIZES, errors, strict=True)) for name, errors in GN_PAPER_ERROR.items()}
    sizes = sorted(summary["batch_size"].unique(), reverse=True)
    rows = [
        {
            "batch_size": int(size),
            "cells": [batch_cell(cells, variant, size) for variant in variants],
            "paper": [paper[name].get(int(size)) for name in GN_PAPER_ERROR],
        }
        for size in sizes
    ]
    jobs = [{**provenance.read_job(entry), "batch_size": entry["batch_size"]} for entry in batch.jobs]
    return {
        "ordering": ordering(summary, changes, comparisons, gate, ghost_design(typed)),
        "variants": variants,
        "rows": rows,
        "paper_names": list(GN_PAPER_ERROR),
        "comparisons": comparisons.to_dict("records"),
        "changes": changes.to_dict("records"),
        "gate": gate.to_dict("records"),
        "figure": image(batch.figure, "error_vs_batch_size"),
        "study": typed.batch_study,
        "train_images": facts["train_images"],
        "reference": int(max(sizes)),
        "recipe_batch_sizes": facts["recipe_batch_sizes"],
        "packed_sizes": facts["packed_sizes"],
        "shared_references": facts["shared_references"],
        "lrs": {
            variant: ", ".join(
                f"{cells.loc[(variant, size), 'max_lr']:.6g} at {size}"
                for size in sorted(sizes)
                if (variant, size) in cells.index
            )
            for variant in variants
        },
        "jobs": jobs,
        "job_time": provenance.duration(sum(j["s"] for j in jobs)),
    }


def misclassified_context(inputs: ReportInputs, names: list[str], first_seed: int, image: ImageSource) -> list[dict]:
    """Per variant: the first seed's grid of mistakes and how many it made."""
    first_runs = {entry["variant"]: entry for entry in inputs.runs if entry["seed"] == first_seed}
    return [
        {
            "variant": name,
            "image": image(Path(first_runs[name]["grid"]), f"misclassified_{name}_seed{first_seed}"),
            "mistakes": json.loads(Path(first_runs[name]["metrics"]).read_text())["n_misclassified"],
        }
        for name in names
    ]


def provenance_context(
    config: dict[str, Any],
    git: provenance.GitState,
    jobs: list[dict],
    batch: dict[str, Any] | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Where the numbers come from: the checkout, config digest, software, machine, data and each training job."""
    trained = jobs + (batch["jobs"] if batch else [])
    return {
        "git_commit": git.commit,
        "git_dirty": git.dirty,
        "config_hash": config_digest(config),
        "python": platform.python_version(),
        "packages": provenance.package_versions(),
        "cpu": f"{provenance.cpu_name()}, {platform.system()} {platform.machine()}",
        "devices": sorted({j["device"] for j in trained}),
        "data": data,
        "wall_time": f"{provenance.duration(provenance.wall_time(trained))}, from the first training job's start "
        f"to the last one's end, over all {len(trained)} training jobs"
        + (" (the main study's and the batch study's)" if batch else ""),
        "job_time": provenance.duration(sum(j["s"] for j in jobs)),
        "jobs": jobs,
    }


def findings_context(
    summary: pd.DataFrame,
    family: pd.DataFrame,
    facts: dict[str, Any],
    runs: pd.DataFrame,
    dataset: DatasetSpec,
    batch: dict[str, Any] | None,
    environment: dict[str, Any] | None = None,
    control: pd.DataFrame | None = None,
    shift: list[str] | None = None,
) -> list[str]:
    """The Key-results sentences, whether normalization helps first (with a control), then the clean images, the
    shift (`shift`: its sentences) and the batch study's verdict last."""
    findings = key_results(summary, family, facts, runs, dataset, environment, control) + list(shift or [])
    if batch:
        lead = batch["ordering"].sentences[0].rstrip(".")
        findings.append(f"Batch size ({', '.join(batch['variants'])}): {lead} (see Batch size).")
    return findings


def shift_context(
    inputs: RobustnessInputs | None, image: ImageSource, study: Study, names: list[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """The robustness section's context and the first screen's sentences on a shift (None and none: not run)."""
    if inputs is None:
        return None, []
    norms = {name: study.variants[name].norm for name in names}
    return robustness_context(inputs, image, norms, study.data.spec.corruption_note), shift_sentences(inputs)


def decisions_context(study: Study) -> dict[str, Any]:
    """The design choices declared as made after seeing results, and whether any saw the test set."""
    decisions = list(study.decisions)
    return {"list": decisions, "saw_test": any(d["seen"] == "test" for d in decisions)}


def model_context(inputs: ReportInputs, study: Study) -> dict[str, Any]:
    """The per-variant layer tables and the receptive field."""
    model_rows = pd.read_csv(inputs.model_summary)
    summaries = [
        {
            "variant": name,
            "norm": study.variants[name].norm,
            "rows": group.to_dict("records"),
            "total": int(group["params"].sum()),
        }
        for name, group in model_rows.groupby("variant", sort=False)
    ]
    return {"summaries": summaries, "receptive_field": pd.read_csv(inputs.receptive_field).to_dict("records")}


def build_context(inputs: ReportInputs, image: ImageSource, links: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything the template shows, from the study's files; `image` places each picture on the page."""
    study = read_study(inputs.study)
    typed = Study.from_config(study["config"])
    summary = pd.read_csv(inputs.summary)
    comparisons = pd.read_csv(inputs.comparisons)
    runs_table = pd.read_csv(inputs.runs_table)
    names = list(summary["variant"])
    seeds = list(typed.seeds)
    jobs = [provenance.read_job(entry) for entry in inputs.runs]
    data = json.loads(inputs.data_provenance.read_text())
    dataset = typed.data.spec
    family = pd.read_csv(inputs.family, keep_default_na=True).fillna({"held_equal": ""})
    control = pd.read_csv(inputs.control).fillna({"held_equal": ""}) if inputs.control else None
    facts = read_facts(inputs.analysis)
    environment = json.loads(inputs.environment.read_text()) if inputs.environment else None
    batch = batch_context(study, typed, inputs.batch, image) if inputs.batch else None
    robustness, shifts = shift_context(inputs.robustness, image, typed, names)
    git = provenance.git_state(Path.cwd())
    return {
        "title": typed.report_title,
        "results_folder": study_folders(typed.name)["results"],
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "params": int(summary["params"].iloc[0]),
        "dataset_name": dataset.title,
        "train_size": data["files"][TRAIN_IMAGES]["shape"][0],
        "test_size": data["files"][TEST_IMAGES]["shape"][0],
        "seeds": seeds,
        "first_seed": seeds[0],
        "variants": variant_rows(typed, summary),
        "model_note": model_note(typed, names),
        "tuning": tuning_context(study, typed, names, inputs, image),
        "any_l1": any(typed.variants[n].l1 > 0 for n in names),
        "any_dropout": any(typed.variants[n].dropout > 0 for n in names),
        "recipe": {"train": typed.train, "data": typed.data},
        "key_results": findings_context(
            summary, family, facts, runs_table, dataset, batch, environment, control, shifts
        ),
        "control": [] if control is None else control.to_dict("records"),
        "batch": batch,
        "robustness": robustness,
        "summary": summary.to_dict("records"),
        "comparisons": comparisons.to_dict("records"),
        "family": family.to_dict("records"),
        "plan": facts["plan"],
        "verdict": family_verdict(family, facts),
        "power": sensitivity_sentence(facts),
        "decisions": decisions_context(typed),
        "figures": {path.stem: image(path, path.stem) for path in inputs.figures},
        "misclassified_count": typed.misclassified.count,
        "misclassified": misclassified_context(inputs, names, seeds[0], image),
        "per_class": [
            {"variant": name, "accuracies": list(group.sort_values("class")["acc_mean"])}
            for name, group in pd.read_csv(inputs.per_class).groupby("variant", sort=False)
        ],
        **model_context(inputs, typed),
        "reproduce": reproduce(typed.values, git, "config-used.yaml"),
        "links": links or {},
        "provenance": provenance_context(typed.values, git, jobs, batch, data),
    }
