# Stage 6: the HTML report, as one self-contained file and as a folder for a static host.


def reported_config():
    """The validated config less its fetch-only data keys: how MNIST was downloaded never reruns the report."""
    fetch_keys = {field.name for field in dataclasses.fields(FetchSettings)}
    data = {
        key: value for key, value in config["data"].items() if key not in fetch_keys
    }
    # Not sorted: the variants' and the tuning grid's order are part of what the report shows.
    return json.dumps({**config, "data": data})


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

REPORT_ARGS = (
    "--config {params.config:q} --summary {input.summary} --comparisons {input.comparisons}"
    " --per-class {input.per_class} --runs-table {input.runs_table}"
    " --model-summary {input.model_summary} --receptive-field {input.receptive_field}"
    " --figures {input.figures} --runs {params.runs:q}"
    " --data-provenance {input.data_provenance} --template {input.template}"
    " --tuning-summary {input.tuning_summary} --tuning-search {input.tuning_search}"
    " --tuning-figure {input.tuning_figure} {params.batch}"
)


rule report:
    input:
        **report_inputs(),
    output:
        "report/index.html",
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["report"]),
        runtime=minutes(20),
    params:
        config=reported_config(),
        runs=json.dumps(run_manifest()),
        batch=batch_report_args,
        # Where the page goes: one self-contained file here; publish writes a folder.
        out=lambda wildcards, output: f"--out {output[0]}",
    shell:
        f"python {{input.script}} {REPORT_ARGS} {{params.out}} > {{log}} 2>&1"


def site_args(wildcards, input, output):
    """The publish rule's output arguments: the SVGs and tables shipped beside the page, and the folder."""
    words = ["--svgs", *input.svgs, "--tables", *input.tables, "--batch-tables", *input.batch_tables]
    return shlex.join([*words, "--site", output[0]])


use rule report as publish with:
    input:
        **report_inputs(),
        svgs=[
            *expand("results/figures/{name}.svg", name=REPORT_FIGURES),
            *([BATCH_OUTPUTS["figure_svg"]] if batch_study_enabled() else []),
        ],
        batch_tables=[
            BATCH_OUTPUTS[name]
            for name in ("runs", "summary", "comparisons", "changes")
            if batch_study_enabled()
        ],
        tables=multiext(
            "results/tables/",
            "summary.csv",
            "runs.csv",
            "epochs.csv",
            "comparisons.csv",
            "per_class.csv",
            "confusion.csv",
            "model_summary.csv",
            "receptive_field.csv",
        ),
    output:
        directory("report/site"),
    log:
        "results/logs/publish.log",
    benchmark:
        "results/benchmarks/publish.tsv"
    params:
        out=site_args,
