# Shared by every stage: config validation, variant order, module lists, data files, wildcards and targets.
# Each stage's own paths, manifests and report arguments live in its rule file; resources in resources.smk.
import dataclasses
import json
import math
import os
import re
import shlex
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from normstudy.atomic import UnreadableFileError, no_space_message
from normstudy.layout import package_files
from normstudy.config.recipes import (
    is_packed,
    batch_recipe,
    batch_run_settings,
    batch_study_variants,
    batch_train_images,
    fetch_settings,
    run_settings,
    shares_main_run,
    study_batch_sizes,
    variant_batch_sizes,
    train_size,
    tuning_points,
    tuning_settings,
    variant_recipe,
    variant_settings,
)
from normstudy.config.study import FetchSettings
from normstudy.settings import run_code_modules, steps_per_epoch
from normstudy.values import ConfigError
from normstudy.data.shift_sets import configured_sets
from normstudy.config.sources import load_yaml, merge_sources, study_folder_problem
from normstudy.config.studies import (
    AMEND_KEY,
    concurrent_run_note,
    record_identity,
    study_folders,
)
from normstudy.config.study import Study, StudyArgument
from normstudy.config.validation import validate_config


def own_config_files():
    """The Snakefile's own config file (config.yaml), unless --replace-workflow-config."""
    given = len(workflow.overwrite_configfiles)
    # The Snakefile's `configfile:` is appended after the command line's, when it exists.
    own = [str(path) for path in workflow.configfiles[given:]]
    return [] if workflow.config_settings.replace_workflow_config else own


def config_sources():
    """(name, values) of each config source in the order they apply: config.yaml (unless --replace-workflow-config),
    each --configfile, then --config."""
    given = [str(path) for path in workflow.overwrite_configfiles]
    files = [
        path if os.path.relpath(path).startswith("..") else os.path.relpath(path)
        for path in own_config_files() + given
    ]
    overrides = dict(workflow.config_settings.config)
    return [(path, load_yaml(path)) for path in files] + (
        [("--config", overrides)] if overrides else []
    )


try:
    # Each file read strictly (Snakemake's own reading keeps a key written twice, reads 010 as 8, ...), and merged
    # by normstudy.config.sources' rules: Snakemake's merge would multiply a grid a file replaces, add to variants a
    # --config list chooses, and put the --configfile variants before config.yaml's.
    SOURCES = config_sources()
    VALIDATED = validate_config(merge_sources(SOURCES))
    # Not part of the study: it only lets this run change the config its folder records.
    AMEND_STUDY = VALIDATED.pop(AMEND_KEY)
    # Before anything is planned: a study folder belongs to the config that made it.
    problem = study_folder_problem(
        SOURCES, len(own_config_files()), VALIDATED, AMEND_STUDY
    )
    if problem:
        raise ConfigError(problem)
except (ConfigError, ValueError) as error:
    # A plain message naming the keys, not a traceback; nothing has been scheduled or written yet.
    raise WorkflowError(str(error)) from None
config.clear()
config.update(VALIDATED)
# The study config, typed: what every rule reads.
STUDY = Study.from_config(VALIDATED)

# Before Snakemake's own lock check, whose message would advise --unlock while the other run still writes.
note = concurrent_run_note(Path.cwd())
if note:
    print(f"normstudy: {note}", file=sys.stderr)


# Rules write `<results>/...` and `<report>/...`: this study's folders, results/<study>/ and report/<study>/.
pathvars:
    **study_folders(STUDY.name),


def in_study(path):
    """`path` with <results> and <report> made this study's folders, for a path used as data (a manifest, a check of
    existing files) rather than as a rule's input or output, where Snakemake does it."""
    return workflow.pathvars.apply(path)


SCRIPTS = "workflow/scripts"
PACKAGE = f"{SCRIPTS}/normstudy"
# The conda environment for users of --use-conda: the same pins as requirements.txt.
ENV = "../../environment.yml"


def package_modules(*names):
    """The package modules a script imports, to list under input (Snakemake does not see a script's imports):
    `names` with their wings' __init__.py, and cli.py, which every script ends through.
    """
    root = Path(workflow.basedir)
    return [
        path.relative_to(root).as_posix()
        for path in package_files(["cli", *names], root / PACKAGE)
    ]


# What a script that reads the run settings (settings.py) imports with them.
SETTINGS_MODULES = ("settings", "atomic", "datasets", "values")
# The code that decides a run's numbers: the training and evaluation jobs' inputs, and what the checkpoint key
# hashes (normstudy.settings.run_code_modules, the one list): the shared modules and the study's own dataset and
# network modules, so that adding a dataset or a network to the registry reruns nothing here.
RUN_CODE_MODULES = run_code_modules(STUDY.data.dataset)
RUN_CODE = package_modules(*RUN_CODE_MODULES)


def enabled_variants():
    """Variant names to study, in config order."""
    return STUDY.enabled_variants()


# Every configured variant, disabled ones too, so that a disabled variant's file asked for by name is refused as
# such (studied_variant) rather than as a file no rule makes.
wildcard_constraints:
    variant="|".join(STUDY.variants),
    seed=r"\d+",


RUN = in_study("<results>/runs/{variant}/seed{seed}")
# The rules that train, the last three derived from the first; their jobs are what a plan counts.
TRAINING_RULES = ("train", "tuning_train", "batch_train", "batch_train_packed")
TRAIN_BENCHMARK = in_study("<results>/benchmarks/train/{variant}/seed{seed}.tsv")
# The declared analysis for the tables that test claims; its `decisions` are the report's, not the tables'.
ANALYSIS_PLAN = json.dumps(STUDY.analysis.values())


def studied_variant(wildcards):
    """The wildcards' variant, refused when the config disables it."""
    name = wildcards.variant
    if not STUDY.variants[name].enabled:
        raise WorkflowError(
            f"variant {name} is disabled in the config (variants.{name}.enabled: false), so none of its runs is "
            f"built; enable it, or choose it with --config 'variants=[{', '.join([*enabled_variants(), name])}]'"
        )
    return name


def settings_json(wildcards):
    """One run's typed settings (normstudy.settings.RunSettings) as canonical JSON."""
    return run_settings(
        STUDY, studied_variant(wildcards), int(wildcards.seed)
    ).to_json()


def run_files(name):
    """One per-run file for every enabled variant and seed."""
    return expand(f"{RUN}/{name}", variant=enabled_variants(), seed=STUDY.seeds)


# The figures the HTML report embeds.
REPORT_FIGURES = [
    "final_accuracy",
    "test_loss",
    "test_accuracy",
    "train_vs_test",
    "confusion",
]


# Each study run's files, in the order its rules write them.
RUN_FILES = (
    "settings.json",
    "model.pt",
    "history.csv",
    "job.json",
    "predictions.csv",
    "metrics.json",
    "misclassified.csv",
    "misclassified.png",
)


def all_targets():
    """Everything the default target builds for the configured study."""
    return [
        "<report>/index.html",
        REPORT_METADATA,
        "<results>/tables/summary.md",
        "<results>/tables/summary.html",
        *expand("<results>/figures/{name}.svg", name=REPORT_FIGURES),
        # Every run file, not only the last of each chain: Snakemake rebuilds a missing intermediate only when
        # something needs it, so a deleted settings.json or metrics.json would otherwise go unnoticed.
        *(run_file for name in RUN_FILES for run_file in run_files(name)),
        *(BATCH_OUTPUTS.values() if batch_study_enabled() else []),
        *(
            [*ROBUSTNESS_OUTPUTS.values(), CORRUPTED_SETS["manifest"]]
            if robustness_enabled()
            else []
        ),
        *(
            path
            for name in ("settings", "history", "job", "metrics")
            for path in batch_files(name)
        ),
    ]


def cuda_without_gpu(jobs):
    """Why the planned training cannot run here: CUDA asked for where torch sees no GPU (None when it can)."""
    training = {
        job.wildcards.variant for job in jobs if job.rule.name in TRAINING_RULES
    }
    asking = [
        name
        for name in STUDY.variants
        if name in training and variant_recipe(STUDY, name)["device"] == "cuda"
    ]
    if not asking:
        return None
    import torch  # only here: the workflow's parse stays torch-free otherwise

    if torch.cuda.is_available():
        return None
    own = [name for name in asking if "device" in STUDY.variants[name].train]
    keys = [f"variants.{name}.train.device" for name in own] + (
        ["train.device"] if len(own) < len(asking) else []
    )
    return (
        f"'{keys[0]}': cuda (for {', '.join(asking)}), but torch sees no GPU on this machine; use device: auto "
        "(a GPU where there is one) or cpu, or run through a cluster profile whose nodes have one "
        "(--workflow-profile profiles/slurm)"
    )


# After planning, before any job: what the run trains, and whether it can train here (only now does Snakemake know
# the jobs, and whether they run here: a cluster's login node has no GPU, its nodes do). Dry runs skip onstart.
onstart:
    planned = list(workflow.dag.needrun_jobs())
    print(plan_summary(planned), file=sys.stderr)
    if workflow.local_exec and not workflow.remote_exec:
        problem = cuda_without_gpu(planned)
        if problem:
            raise WorkflowError(problem)
    # The folder now belongs to this config: another under the same name is refused at its parse.
    record_identity(
        Path(in_study("<results>")), STUDY.values, [name for name, _ in SOURCES]
    )


# A job that failed for want of space often cannot say so in its own log (the log is on the full disk too).
onerror:
    full = no_space_message(in_study("<results>"))
    if full:
        print(f"normstudy: {full}", file=sys.stderr)
