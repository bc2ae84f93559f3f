# Config validation, targets and input helpers shared by every stage.
import dataclasses
import json
import math
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from normstudy.config import (
    ConfigError,
    FetchSettings,
    batch_recipe,
    batch_run_settings,
    batch_study_variants,
    batch_train_images,
    is_packed,
    load_yaml,
    run_settings,
    steps_per_epoch,
    study_batch_sizes,
    train_size,
    tuning_points,
    tuning_settings,
    validate_config,
    variant_recipe,
    variant_settings,
)
from normstudy.dataset import raw_paths
from normstudy.idx import DataIntegrityError, check_unchanged

try:
    config.update(validate_config(config))
except ConfigError as error:
    # A plain message naming the keys, not a traceback; nothing has been scheduled or written yet.
    raise WorkflowError(str(error)) from None


def variant_order():
    """Variant names as the config files list them, config.yaml's first.

    Snakemake puts --configfile values in before config.yaml's, so a file that only changes gn would move gn
    to the front of every table and figure; this order does not depend on which variants a file mentions.
    """
    files = sorted(
        workflow.configfiles, key=lambda path: Path(path).name != "config.yaml"
    )
    named = [name for path in files for name in (load_yaml(path).get("variants") or {})]
    return list(dict.fromkeys([*named, *config["variants"]]))


config["variants"] = {name: config["variants"][name] for name in variant_order()}


SCRIPTS = "workflow/scripts"
PACKAGE = f"{SCRIPTS}/normstudy"
# The conda environment for users of --use-conda: the same pins as requirements.txt.
ENV = "../../environment.yml"


def package_modules(*names):
    """The package modules a script imports, to list under input (Snakemake does not see a script's imports)."""
    return [f"{PACKAGE}/__init__.py"] + [f"{PACKAGE}/{name}.py" for name in names]


# What a script that reads the run settings (config.py) imports with them.
SETTINGS_MODULES = ("config", "architecture", "dataset")


# ---- Resources of every rule: threads, memory (mem_mb) and runtime (minutes), for SLURM and local runs alike.
# Peak RSS measured by Snakemake's benchmark files (results/benchmarks/, full MNIST, 2-core development machine,
# one thread per job), in MB; each job's memory is that x 1.5, plus the Snakemake process that runs the job on a
# cluster node (about 200 MB, counted as 500).
PEAK_RSS_MB = {
    "run_settings": 50,
    "download_mnist": 1275,
    "train": 790,
    "evaluate": 620,
    "misclassified": 235,
    "aggregate": 115,
    "model_summary": 570,
    "plot": 195,
    "report": 625,
}
JOB_OVERHEAD_MB = 500
# CUDA's context and libraries, on top, when training on a GPU.
CUDA_HOST_MB = 2000
# Seconds per epoch of 60,000 images, one CPU thread, batch 128, two jobs side by side on that machine, rounded
# up (the study measured bn 16.8, gn 17.3, ln 14.4, in 17.3 in NCHW, against 36.5 in NHWC); the L1 penalty added
# about 35 % in an earlier measurement (bn_l1 26 s against bn 19 s), kept as the margin.
TRAIN_SECONDS_PER_EPOCH = {"batch": 20, "group": 20, "layer": 20, "instance": 20}
L1_SLOWDOWN = 1.35


def mem_mb(peak_rss_mb):
    """Memory to ask for: the measured peak with a 1.5x margin plus the job's Snakemake process, in 100 MB steps."""
    return math.ceil((peak_rss_mb * 1.5 + JOB_OVERHEAD_MB) / 100) * 100


def minutes(seconds):
    """Runtime to ask for: three times the measured seconds, at least 5 minutes (schedulers count in minutes)."""
    return max(5, math.ceil(seconds * 3 / 60))


def uses_gpu(wildcards):
    """Training asks the scheduler for a GPU only when the variant's recipe says CUDA (auto takes what the node has)."""
    return variant_recipe(config, wildcards.variant)["device"] == "cuda"


def train_threads(wildcards):
    """A training job's CPU threads: its variant's train.threads."""
    return variant_recipe(config, wildcards.variant)["threads"]


def train_gpus(wildcards):
    """One GPU for a CUDA job, none otherwise."""
    return 1 if uses_gpu(wildcards) else 0


def variant_mem_mb(rule):
    """Memory of a rule's per-variant jobs: the measured peak, plus CUDA's host memory when the variant uses a GPU."""

    def job_mem_mb(wildcards):
        return mem_mb(PEAK_RSS_MB[rule]) + (CUDA_HOST_MB if uses_gpu(wildcards) else 0)

    return job_mem_mb


def train_runtime(wildcards):
    """A training job's minutes: epochs x the measured CPU seconds per epoch for its norm, twice, plus start-up."""
    variant = config["variants"][wildcards.variant]
    per_epoch = TRAIN_SECONDS_PER_EPOCH[variant["norm"]] * train_size(config) / 60000
    per_epoch *= L1_SLOWDOWN if variant["l1"] > 0 else 1
    epochs = variant_recipe(config, wildcards.variant)["epochs"]
    return math.ceil((epochs * per_epoch * 2 + 120) / 60)


def synthetic_mem_mb(wildcards):
    """The generator holds every image: 60 MB measured for 7,000, about 3 KB more per image."""
    synthetic = config["data"]["synthetic"]
    return mem_mb(60 + 0.003 * (synthetic["train_size"] + synthetic["test_size"]))


def reported_config():
    """The validated config less its fetch-only data keys: how MNIST was downloaded never reruns the report."""
    fetch_keys = {field.name for field in dataclasses.fields(FetchSettings)}
    data = {
        key: value for key, value in config["data"].items() if key not in fetch_keys
    }
    # Not sorted: the variants' and the tuning grid's order are part of what the report shows.
    return json.dumps({**config, "data": data})


def raw_data_files():
    """Role -> path of the configured dataset's four IDX files and its provenance.json."""
    return raw_paths(config["data"]["dataset"])


def data_files():
    """The four IDX files the training and evaluation steps read (not the provenance)."""
    return [path for role, path in raw_data_files().items() if role != "provenance"]


def tuning_data_files():
    """The two training IDX files: all a tuning run reads (it never sees the test set)."""
    return [raw_data_files()[role] for role in ("train_images", "train_labels")]


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
    batch_size=r"\d+",
    point="|".join(re.escape(name) for name in tuning_points(config)),


RUN = "results/runs/{variant}/seed{seed}"
# The commands of the settings and train rules, shared by the study's runs and the tuning runs.
SETTINGS_SHELL = "python {input.script} --settings {params.settings:q} --out {output.settings} > {log} 2>&1"
TRAIN_SHELL = (
    "python {input.script} --settings {input.settings} --data {input.data}"
    " --provenance {input.provenance} --model {output.model} --history {output.history}"
    " --job {output.job} --checkpoint {params.checkpoint} --threads {threads} > {log} 2>&1"
)
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
        *(BATCH_OUTPUTS.values() if batch_study_enabled() else []),
    ]


def report_inputs():
    """What the report reads, named by role: the rule is the one place each path is spelled."""
    runs = run_manifest()
    return {
        "script": f"{SCRIPTS}/report.py",
        "modules": package_modules(
            "atomic",
            "batches",
            "findings",
            "norms",
            "provenance",
            "report_page",
            "stats",
            "tuning",
            *SETTINGS_MODULES,
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
        **{f"tuning_{name}": path for name, path in TUNING_RECORD.items()},
        **batch_report_inputs(),
    }


# The recipe search the report's method section shows: `make tune` writes results/tuning/, and `make
# record-tuning` copies it here, into the repository, so the study's report never waits for a search.
TUNING_RECORD = {
    "summary": "workflow/resources/tuning/summary.csv",
    "search": "workflow/resources/tuning/search.json",
    "figure": "workflow/resources/tuning/validation_accuracy.png",
}

# The report script's arguments, shared by the report and publish rules.
REPORT_ARGS = (
    "--config {params.config:q} --summary {input.summary} --comparisons {input.comparisons}"
    " --per-class {input.per_class} --runs-table {input.runs_table}"
    " --model-summary {input.model_summary} --receptive-field {input.receptive_field}"
    " --figures {input.figures} --runs {params.runs:q}"
    " --data-provenance {input.data_provenance} --template {input.template}"
    " --tuning-summary {input.tuning_summary} --tuning-search {input.tuning_search}"
    " --tuning-figure {input.tuning_figure} {params.batch}"
)


# ---- The recipe search (tune.smk).
TUNING_RUN = "results/tuning/runs/{variant}/{point}/seed{seed}"
TUNING_FIGURE = "results/tuning/validation_accuracy"


def tuning_settings_json(wildcards):
    """One tuning run's typed settings as canonical JSON."""
    settings = tuning_settings(
        config, wildcards.variant, wildcards.point, int(wildcards.seed)
    )
    return settings.to_json()


def tuning_manifest():
    """Per tuning run, in config order: variant, grid point, seed and its files."""
    return [
        {
            "variant": variant,
            "point": point,
            "seed": seed,
            **{
                name: f"{TUNING_RUN}/{name}.{ext}".format(
                    variant=variant, point=point, seed=seed
                )
                for name, ext in (
                    ("settings", "json"),
                    ("history", "csv"),
                    ("job", "json"),
                )
            },
        }
        for variant in enabled_variants()
        for point in tuning_points(config)
        for seed in config["tune"]["seeds"]
    ]


def tuning_files(name):
    """One file of every tuning run, in manifest order."""
    return [run[name] for run in tuning_manifest()]


def tuning_config():
    """The config slice the tuning summary reads: the grid, seeds, variants, recipe and data identity."""
    keys = ("variants", "train", "tune")
    data = {
        key: config["data"][key]
        for key in ("dataset", "synthetic", "mean", "std", "validation")
    }
    # Not sorted: the grid's key order names the points.
    return json.dumps({**{key: config[key] for key in keys}, "data": data})


# ---- The batch-size study (batch_study.smk): each listed variant at each batch size, per seed; at the batch sizes
# where packing pays (normstudy.config.is_packed) one job trains all seeds of a variant as one network.
BATCH_PACK = "results/batch_study/runs/{variant}/batch{batch_size}"
BATCH_RUN = f"{BATCH_PACK}/seed{{seed}}"
BATCH_FIGURE = "results/batch_study/error_vs_batch_size"
BATCH_OUTPUTS = {
    "runs": "results/batch_study/runs.csv",
    "summary": "results/batch_study/summary.csv",
    "summary_md": "results/batch_study/summary.md",
    "comparisons": "results/batch_study/comparisons.csv",
    "changes": "results/batch_study/changes.csv",
    "figure": f"{BATCH_FIGURE}.png",
    "figure_svg": f"{BATCH_FIGURE}.svg",
}


def batch_study_enabled():
    """Whether the default study includes the batch study."""
    return config["batch_study"]["enabled"]


def batch_variants():
    """The batch study's enabled variants, in its own order (none when it is disabled)."""
    return batch_study_variants(config) if batch_study_enabled() else []


def batch_sizes_pattern(packed):
    """A wildcard pattern of the batch sizes trained packed (or one job per seed); one that never matches if none."""
    sizes = [b for b in study_batch_sizes(config) if is_packed(config, b) == packed]
    return "|".join(map(str, sizes)) or "(?!)"


def batch_settings_json(wildcards):
    """One batch-study run's typed settings as canonical JSON."""
    settings = batch_run_settings(
        config, wildcards.variant, int(wildcards.batch_size), int(wildcards.seed)
    )
    return settings.to_json()


def batch_manifest():
    """Per batch-study run, in order (variant, batch size, seed): its files, and the job that trains it."""
    runs = []
    for variant in batch_variants():
        for batch_size in study_batch_sizes(config):
            packed = is_packed(config, batch_size)
            for seed in config["batch_study"]["seeds"]:
                names = {"variant": variant, "batch_size": batch_size, "seed": seed}
                runs.append(
                    {
                        **names,
                        "packed": packed,
                        **{
                            name: f"{BATCH_RUN}/{name}.{ext}".format(**names)
                            for name, ext in (
                                ("settings", "json"),
                                ("history", "csv"),
                                ("job", "json"),
                            )
                        },
                        "benchmark": (
                            BATCH_PACK_BENCHMARK if packed else BATCH_BENCHMARK
                        ).format(**names),
                    }
                )
    return runs


def batch_files(name):
    """One file of every batch-study run, in manifest order."""
    return [run[name] for run in batch_manifest()]


def batch_jobs():
    """Per training job of the batch study: the variant and first seed it trains, its job.json and benchmark file."""
    jobs = {}
    for run in batch_manifest():
        key = (
            run["variant"],
            run["batch_size"],
            run["seed"] if not run["packed"] else None,
        )
        jobs.setdefault(
            key,
            {
                "variant": run["variant"],
                "seed": run["seed"],
                "batch_size": run["batch_size"],
                "job": run["job"],
                "benchmark": run["benchmark"],
            },
        )
    return list(jobs.values())


def batch_report_inputs():
    """What the report reads of the batch study (nothing when it is disabled)."""
    if not batch_study_enabled():
        return {}
    jobs = batch_jobs()
    return {
        **{
            f"batch_{name}": BATCH_OUTPUTS[name]
            for name in ("summary", "comparisons", "changes", "figure")
        },
        "batch_job_files": [job["job"] for job in jobs],
        "batch_benchmarks": [job["benchmark"] for job in jobs],
    }


def batch_report_args(wildcards, input):
    """The report script's batch-study arguments (none when the study is disabled)."""
    if not batch_study_enabled():
        return ""
    tables = " ".join(
        f"--batch-{name} {getattr(input, f'batch_{name}')}"
        for name in ("summary", "comparisons", "changes", "figure")
    )
    return f"{tables} --batch-jobs {shlex.quote(json.dumps(batch_jobs()))}"


BATCH_BENCHMARK = (
    "results/benchmarks/batch_study/train/{variant}/batch{batch_size}/seed{seed}.tsv"
)
BATCH_PACK_BENCHMARK = (
    "results/benchmarks/batch_study/train/{variant}/batch{batch_size}.tsv"
)
# Seconds of one model's training step at batch size b, one CPU thread: STEP_SECONDS + b x IMAGE_SECONDS, fitted to
# `make bench`'s bn alone on the 2-core development machine (240 img/s at batch 2, 2,385 at 128).
STEP_SECONDS, IMAGE_SECONDS = 0.0076, 0.00036


def batch_train_runtime(wildcards):
    """A batch-study job's minutes: its images (every seed's, packed or not) at the unpacked per-image cost, twice,
    plus start-up; packing only makes it faster."""
    batch_size = int(wildcards.batch_size)
    seeds = len(config["batch_study"]["seeds"]) if is_packed(config, batch_size) else 1
    recipe = batch_recipe(config, wildcards.variant, batch_size)
    images = batch_train_images(config)
    steps = recipe["epochs"] * steps_per_epoch(images, batch_size)
    seconds = seeds * steps * (STEP_SECONDS + batch_size * IMAGE_SECONDS)
    return math.ceil((seconds * 2 + 120) / 60)
