# Config validation, targets and input helpers shared by every stage.
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from normstudy.config import (
    ConfigError,
    FetchSettings,
    run_settings,
    validate_config,
    variant_settings,
)
from normstudy.dataset import raw_paths
from normstudy.idx import DataIntegrityError, check_unchanged

try:
    config.update(validate_config(config))
except ConfigError as error:
    # A plain message naming the keys, not a traceback; nothing has been scheduled or written yet.
    raise WorkflowError(str(error)) from None


SCRIPTS = "workflow/scripts"
PACKAGE = f"{SCRIPTS}/normstudy"
# The conda environment for users of --use-conda: the same pins as requirements.txt.
ENV = "../../environment.yml"


def package_modules(*names):
    """The package modules a script imports, to list under input (Snakemake does not see a script's imports)."""
    return [f"{PACKAGE}/__init__.py"] + [f"{PACKAGE}/{name}.py" for name in names]


# What a script that reads the run settings (config.py) imports with them.
SETTINGS_MODULES = ("config", "architecture", "dataset")


def raw_data_files():
    """Role -> path of the configured dataset's four IDX files and its provenance.json."""
    return raw_paths(config["data"]["dataset"])


def data_files():
    """The four IDX files the training and evaluation steps read (not the provenance)."""
    return [path for role, path in raw_data_files().items() if role != "provenance"]


try:
    # An edited data file is refused here, before Snakemake deletes the outputs that depend on it.
    check_unchanged(data_files(), raw_data_files()["provenance"])
except DataIntegrityError as error:
    raise WorkflowError(str(error)) from None


def enabled_variants():
    """Variant names to study, in config order."""
    return [name for name, variant in config["variants"].items() if variant["enabled"]]


wildcard_constraints:
    variant="|".join(enabled_variants()),
    seed=r"\d+",


RUN = "results/runs/{variant}/seed{seed}"
TRAIN_BENCHMARK = "results/benchmarks/train/{variant}/seed{seed}.tsv"


def settings_json(wildcards):
    """One run's typed settings (normstudy.config.RunSettings) as canonical JSON."""
    return run_settings(config, wildcards.variant, int(wildcards.seed)).to_json()


def run_files(name):
    """One per-run file for every enabled variant and seed."""
    return expand(f"{RUN}/{name}", variant=enabled_variants(), seed=config["seeds"])


# Per-run files the report reads, by role.
REPORTED_RUN_FILES = {
    "job": f"{RUN}/job.json",
    "benchmark": TRAIN_BENCHMARK,
    "metrics": f"{RUN}/metrics.json",
    "grid": f"{RUN}/misclassified.png",
}


def run_manifest():
    """Per run, in config order: its variant and seed and the files the report reads of it."""
    return [
        {
            "variant": variant,
            "seed": seed,
            **{
                role: pattern.format(variant=variant, seed=seed)
                for role, pattern in REPORTED_RUN_FILES.items()
            },
        }
        for variant in enabled_variants()
        for seed in config["seeds"]
    ]


# The figures the HTML report embeds.
REPORT_FIGURES = [
    "final_accuracy",
    "test_loss",
    "test_accuracy",
    "train_vs_test",
    "confusion",
]


def all_targets():
    """Everything the default target builds for the configured study."""
    return [
        "report/index.html",
        "results/tables/summary.md",
        "results/tables/summary.html",
        *expand("results/figures/{name}.svg", name=REPORT_FIGURES),
        *run_files("misclassified.csv"),
    ]


def report_inputs():
    """What the report reads, named by role: the rule is the one place each path is spelled."""
    runs = run_manifest()
    return {
        "script": f"{SCRIPTS}/report.py",
        "modules": package_modules(
            "atomic",
            "dataset",
            "findings",
            "norms",
            "provenance",
            "report_page",
            "stats",
        ),
        "template": "workflow/report/index.html.j2",
        "summary": "results/tables/summary.csv",
        "comparisons": "results/tables/comparisons.csv",
        "per_class": "results/tables/per_class.csv",
        "runs_table": "results/tables/runs.csv",
        "model_summary": "results/tables/model_summary.csv",
        "receptive_field": "results/tables/receptive_field.csv",
        "figures": expand("results/figures/{name}.png", name=REPORT_FIGURES),
        "jobs": [run["job"] for run in runs],
        "benchmarks": [run["benchmark"] for run in runs],
        "metrics": [run["metrics"] for run in runs],
        "grids": [run["grid"] for run in runs],
        "data_provenance": raw_data_files()["provenance"],
    }


# The report script's arguments, shared by the report and publish rules.
REPORT_ARGS = (
    "--config {params.config:q} --summary {input.summary} --comparisons {input.comparisons}"
    " --per-class {input.per_class} --runs-table {input.runs_table}"
    " --model-summary {input.model_summary} --receptive-field {input.receptive_field}"
    " --figures {input.figures} --runs {params.runs:q}"
    " --data-provenance {input.data_provenance} --template {input.template}"
)
