# What the report reads: the config it shows, the per-run files, and its command's arguments (rules: report.smk).


def reported_config():
    """The validated config less its fetch-only data keys: how MNIST was downloaded never reruns the report."""
    fetch_keys = {field.name for field in dataclasses.fields(FetchSettings)}
    data = {
        key: value
        for key, value in STUDY.values["data"].items()
        if key not in fetch_keys
    }
    # Not sorted: the variants' and the tuning grid's order are part of what the report shows.
    return json.dumps({**STUDY.values, "data": data})


# The config as the report shows it, with what the recipes derive from it: the report reads this file and
# never re-derives the config.
STUDY_FACTS = in_study("<results>/study.json")
# `snakemake --report`'s landing-page metadata (--report-metadata).
REPORT_METADATA = in_study("<results>/report_metadata.yaml")


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
        for seed in STUDY.seeds
    ]


def report_inputs():
    """What the report reads, named by role: the rule is the one place each path is spelled."""
    runs = run_manifest()
    return {
        "script": f"{SCRIPTS}/report.py",
        "modules": package_modules(
            "declared",
            "architecture",
            "norm_specs",
            "recipes",
            "study",
            "atomic",
            "batches",
            "controls",
            "findings",
            "findings_robustness",
            "provenance",
            "page",
            "model_section",
            "robustness_section",
            "runs",
            "shift_sets",
            "stats",
            "studies",
            "tuning",
            *SETTINGS_MODULES,
        ),
        "study": STUDY_FACTS,
        "template": "workflow/report/index.html.j2",
        # The template includes it: a change of style reruns the report.
        "style": "workflow/report/page.css",
        "summary": "<results>/tables/summary.csv",
        "comparisons": "<results>/tables/comparisons.csv",
        "per_class": "<results>/tables/per_class.csv",
        "family": "<results>/tables/family.csv",
        "control": "<results>/tables/control.csv",
        "analysis": "<results>/tables/analysis.json",
        "environment": "<results>/environment.json",
        "runs_table": "<results>/tables/runs.csv",
        "model_summary": "<results>/tables/model_summary.csv",
        "receptive_field": "<results>/tables/receptive_field.csv",
        "figures": expand("<results>/figures/{name}.png", name=REPORT_FIGURES),
        "jobs": [run["job"] for run in runs],
        "benchmarks": [run["benchmark"] for run in runs],
        "metrics": [run["metrics"] for run in runs],
        "grids": [run["grid"] for run in runs],
        "data_provenance": raw_data_files()["provenance"],
        **{f"tuning_{name}": path for name, path in TUNING_RECORD.items()},
        "tuning_pieces": [f"{piece}/summary.csv" for piece in TUNING_PIECES],
        "tuning_piece_files": TUNING_PIECE_FILES,
        **robustness_report_inputs(),
        **batch_report_inputs(),
    }


def site_args(wildcards, input, output):
    """The publish rule's output arguments: the SVGs and tables shipped beside the page, and the folder."""
    words = [
        "--svgs",
        *input.svgs,
        "--tables",
        *input.tables,
        *input.robustness_tables,
        "--batch-tables",
        *input.batch_tables,
    ]
    return shlex.join([*words, "--site", output[0]])
