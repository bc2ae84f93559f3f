# Config validation, targets and input helpers shared by every stage.
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from normstudy.config import ConfigError, validate_config

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


def raw_data_dir():
    """The directory holding the four IDX files of the configured dataset."""
    name = "MNIST" if config["data"]["dataset"] == "mnist" else "synthetic"
    return f"results/data/{name}/raw"


def raw_data_files():
    """The four IDX files (and provenance) the training and evaluation steps read."""
    folder = raw_data_dir()
    return {
        "train_images": f"{folder}/train-images-idx3-ubyte",
        "train_labels": f"{folder}/train-labels-idx1-ubyte",
        "test_images": f"{folder}/t10k-images-idx3-ubyte",
        "test_labels": f"{folder}/t10k-labels-idx1-ubyte",
        "provenance": f"{folder}/provenance.json",
    }


def data_files():
    """The four IDX files the training and evaluation steps read (not the provenance)."""
    return [path for key, path in raw_data_files().items() if key != "provenance"]


def enabled_variants():
    """Variant names to study, in config order."""
    return [name for name, variant in config["variants"].items() if variant["enabled"]]


wildcard_constraints:
    variant="|".join(enabled_variants()),
    seed=r"\d+",


RUN = "results/runs/{variant}/seed{seed}"


def run_settings(wildcards):
    """The JSON settings of one run: its variant, the training recipe and the input normalization."""
    variant = {
        k: v for k, v in config["variants"][wildcards.variant].items() if k != "enabled"
    }
    data = {key: config["data"][key] for key in ("mean", "std")}
    return json.dumps(
        {"variant": variant, "train": config["train"], "data": data}, sort_keys=True
    )


def run_files(name):
    """One per-run file for every enabled variant and seed."""
    return expand(f"{RUN}/{name}", variant=enabled_variants(), seed=config["seeds"])


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
