# Config validation, targets and input helpers shared by every stage.
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


def all_targets():
    """Everything the default target builds for the configured study."""
    return list(raw_data_files().values())
