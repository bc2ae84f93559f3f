#!/usr/bin/env python3
"""Tables, findings and heatmap of the robustness study: every run's scores on the clean and corrupted test sets
(evaluate_corrupted.py's files), summarized over seeds, the mean corruption error against the reference norm, the
declared comparisons on the mean over the endpoint's sets, the same on the intensity shifts and the other kinds
apart, the exploratory comparisons per set, whether test-time statistics close BatchNorm's gap, and the literature's
contrast claim."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from normstudy import atomic
from normstudy.analysis.declared import facts_json, held_equal
from normstudy.analysis.findings_robustness import robustness_findings
from normstudy.analysis.robustness import (
    adaptation_gap,
    contrast_family,
    corruption_errors,
    group_families,
    of_kinds,
    per_set_family,
    primary_family,
    scoring,
    summarize,
)
from normstudy.cli import run_cli
from normstudy.config.study import Plan
from normstudy.data.datasets import TEST_LABELS, dataset_names
from normstudy.data.idx import DataIntegrityError, read_verified
from normstudy.data.shift_sets import ENDPOINT_NAMES, ENDPOINTS, endpoint_kinds
from normstudy.model.architecture import dataset_network
from normstudy.model.norm_specs import takes_batch_statistics
from normstudy.report.plots import save_figures, use_style
from normstudy.settings import RunSettings
from normstudy.tables import write_csv

TABLES = ("cells", "errors", "family", "groups", "per_set", "adaptation", "contrast")


def read_scores(tables: list[Path], predictions: list[Path], labels: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """Every scoring's row, and per scoring its per-image hits (prediction == label), refusing a predictions file
    whose rows or images do not match its table."""
    frames, hits = [], {}
    for table_path, predictions_path in zip(tables, predictions, strict=True):
        table, predicted = pd.read_csv(table_path), np.load(predictions_path)
        if predicted.shape != (len(table), len(labels)):
            raise DataIntegrityError(
                f"{predictions_path}: {predicted.shape[0]} x {predicted.shape[1]} predictions for {len(table)} rows of "
                f"{table_path} and {len(labels)} test labels; rebuild both"
            )
        for row, row_predictions in zip(table.itertuples(), predicted, strict=True):
            hits[scoring(row)] = row_predictions == labels
            if int(hits[scoring(row)].sum()) != row.correct:
                raise DataIntegrityError(f"{predictions_path}: predictions disagree with {table_path} on {row.variant}")
        frames.append(table)
    return pd.concat(frames, ignore_index=True), hits


def run_facts(settings_paths: list[Path], reference: str) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Variants in order, each variant's norm, and what each differs in from the reference besides the norm."""
    settings = [RunSettings.read(path) for path in settings_paths]
    norms = {s.variant.name: s.variant.norm for s in settings}
    base = next((s for s in settings if s.variant.name == reference), None)
    if base is None:
        raise ValueError(f"analysis.reference {reference} has no run in the robustness study")
    held = {s.variant.name: held_equal(s, base) for s in settings if s.variant.name != reference}
    return list(norms), norms, held


def heatmap(cells: pd.DataFrame, variants: list[str]) -> plt.Figure:
    """Mean accuracy (%) per variant and mode (rows) and set (columns), clean first."""
    import seaborn as sns

    table = cells.assign(
        row=cells["variant"] + " · " + cells["mode"],
        column=np.where(cells["corruption"] == "clean", "clean",
                        cells["corruption"] + " " + cells["severity"].astype(str)),
    )  # fmt: skip
    grid = table.pivot(index="row", columns="column", values="acc_mean")
    modes = dict.fromkeys(cells["mode"])
    order = [f"{v} · {m}" for m in modes for v in variants if f"{v} · {m}" in grid.index]
    grid = grid.loc[order, list(dict.fromkeys(table["column"]))]
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * grid.shape[1], 1.0 + 0.42 * grid.shape[0]))
    sns.heatmap(grid, annot=True, fmt=".0f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                cbar_kws={"label": "accuracy (%)"}, annot_kws={"fontsize": 7})  # fmt: skip
    ax.set_xlabel("test set (corruption, severity)")
    ax.set_ylabel("variant · statistics")
    ax.set_title("Mean test accuracy over seeds under each corruption")
    fig.tight_layout()
    return fig


def main(tables: list[Path], predictions: list[Path], settings: list[Path], labels_file: Path, provenance: Path,
         dataset: str, plan: Plan, endpoint: str, out: dict[str, Path], figures: list[Path]) -> dict:  # fmt: skip
    """Write every table in `out` (keys: TABLES), the findings (`out['findings']`) and the heatmap; return the
    findings. `endpoint` names the kinds the declared comparisons average over (shift_sets.ENDPOINTS)."""
    arrays, _ = read_verified([labels_file], provenance, dataset, names=(TEST_LABELS,))
    network = dataset_network(dataset)
    scores, hits = read_scores(tables, predictions, arrays[TEST_LABELS].astype(np.int64))
    variants, norms, held = run_facts(settings, plan.reference)
    batch = [name for name in variants if takes_batch_statistics(norms[name])]
    kinds = endpoint_kinds(endpoint, list(dict.fromkeys(scores.loc[scores["corruption"] != "clean", "corruption"])))
    if not kinds:
        raise ValueError(
            f"no scored set is of the endpoint {endpoint}'s kinds ({', '.join(sorted(ENDPOINTS[endpoint]))})"
        )
    declared = of_kinds(scores, kinds)
    found = {
        "cells": summarize(scores, hits, plan),
        "family": primary_family(declared, hits, plan, held),
        "groups": group_families(scores, hits, plan, held),
        "per_set": per_set_family(scores, hits, plan, held),
        "adaptation": adaptation_gap(declared, hits, plan, batch),
        "contrast": contrast_family(scores, hits, plan, held, [name for name in variants if name not in batch]),
    }
    found["errors"] = corruption_errors(found["cells"], plan.reference)
    for name in TABLES:
        write_csv(found[name], out[name])
    sets = scores.loc[scores["corruption"] != "clean", ["corruption", "severity"]].drop_duplicates()
    endpoint_sets = {"name": endpoint, "words": ENDPOINT_NAMES[endpoint], "kinds": kinds,
                     "sets": int(sets["corruption"].isin(kinds).sum())}  # fmt: skip
    findings = robustness_findings(found, norms, plan, endpoint_sets, network)
    facts = {"plan": plan.values(), "variants": variants, "norms": norms, "sets": len(sets),
             "endpoint": endpoint_sets, "findings": findings}  # fmt: skip
    atomic.write_json(out["findings"], facts_json(facts))
    use_style()
    save_figures(heatmap(found["cells"], variants), figures)
    print(found["errors"].to_string(index=False))
    print("\n".join(facts["findings"].values()))
    return facts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scores", type=Path, nargs="+", required=True, help="every set's scores (CSV)")
    parser.add_argument("--predictions", type=Path, nargs="+", required=True, help="their predictions, same order")
    parser.add_argument("--settings", type=Path, nargs="+", required=True, help="every run's settings.json")
    parser.add_argument("--labels", type=Path, required=True, help="the test labels (IDX)")
    parser.add_argument("--provenance", type=Path, required=True, help="provenance.json the labels are checked against")
    parser.add_argument("--dataset", choices=dataset_names(), required=True, help="the dataset it records")
    parser.add_argument("--analysis-plan", type=json.loads, required=True, help="the config's analysis section (JSON)")
    parser.add_argument("--endpoint", choices=tuple(ENDPOINTS), required=True, help="the declared endpoint's kinds")
    for name in (*TABLES, "findings"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True, help=f"the {name} file to write")
    parser.add_argument("--figures", type=Path, nargs="+", required=True, help="the heatmap (.png, .svg) to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(
            args.scores, args.predictions, args.settings, args.labels, args.provenance, args.dataset,
            Plan.from_config(args.analysis_plan), args.endpoint,
            {name: getattr(args, name) for name in (*TABLES, "findings")},
            args.figures,
        ),
        also=(DataIntegrityError,),
    )  # fmt: skip
