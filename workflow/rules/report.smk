# Stage 6: the HTML report, as one self-contained file and as a folder for a static host.


include: "inputs/report.smk"


rule describe_study:
    input:
        script=f"{SCRIPTS}/describe_study.py",
        modules=package_modules(
            "study",
            "norm_specs",
            "atomic",
            "packing",
            "recipes",
            "stats",
            "tuning",
            *SETTINGS_MODULES,
        ),
        tuning_summary=TUNING_RECORD["summary"],
    output:
        STUDY_FACTS,
    log:
        "<results>/logs/describe_study.log",
    benchmark:
        "<results>/benchmarks/describe_study.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["aggregate"]),
        runtime=minutes(10),
    params:
        # A function: Snakemake expands {name} in a params string as a wildcard, and the config holds free text.
        config=lambda wildcards: reported_config(),
    shell:
        "python {input.script} --config {params.config:q} --tuning-summary {input.tuning_summary}"
        " --out {output} > {log} 2>&1"


# The landing page of `snakemake --report` (make snakemake-report): commit, config digest, Key results.
rule report_metadata:
    input:
        script=f"{SCRIPTS}/report_metadata.py",
        modules=package_modules(
            "norm_specs",
            "study",
            "declared",
            "architecture",
            "controls",
            "findings",
            "provenance",
            "runs",
            "stats",
            *SETTINGS_MODULES,
        ),
        study=STUDY_FACTS,
        summary="<results>/tables/summary.csv",
        family="<results>/tables/family.csv",
        control="<results>/tables/control.csv",
        analysis="<results>/tables/analysis.json",
        runs="<results>/tables/runs.csv",
        environment="<results>/environment.json",
    output:
        REPORT_METADATA,
    log:
        "<results>/logs/report_metadata.log",
    benchmark:
        "<results>/benchmarks/report_metadata.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["aggregate"]),
        runtime=minutes(5),
    shell:
        "python {input.script} --study {input.study} --summary {input.summary} --family {input.family}"
        " --control {input.control} --analysis {input.analysis} --runs {input.runs} --environment {input.environment}"
        " --out {output} > {log} 2>&1"


REPORTED_RUN_FILES = {
    "job": f"{RUN}/job.json",
    "benchmark": TRAIN_BENCHMARK,
    "metrics": f"{RUN}/metrics.json",
    "grid": f"{RUN}/misclassified.png",
}


# The recipe search the report's method section shows: `make tune` writes results/<study>/tuning/, and `make

REPORT_ARGS = (
    "--study {input.study} --summary {input.summary} --comparisons {input.comparisons}"
    " --per-class {input.per_class} --runs-table {input.runs_table}"
    " --model-summary {input.model_summary} --receptive-field {input.receptive_field}"
    " --figures {input.figures} --runs {params.runs:q}"
    " --data-provenance {input.data_provenance} --template {input.template}"
    " --tuning-summary {input.tuning_summary} --tuning-search {input.tuning_search}"
    " --tuning-pieces {input.tuning_pieces}"
    " --tuning-figure {input.tuning_figure} --family {input.family} --control {input.control}"
    " --analysis {input.analysis}"
    " --environment {input.environment}"
    " {params.robustness} {params.batch}"
)


rule report:
    input:
        **report_inputs(),
    output:
        "<report>/index.html",
    log:
        "<results>/logs/report.log",
    benchmark:
        "<results>/benchmarks/report.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["report"]),
        runtime=minutes(20),
    params:
        runs=json.dumps(run_manifest()),
        robustness=robustness_report_args,
        batch=batch_report_args,
        # Where the page goes: one self-contained file here; publish writes a folder.
        out=lambda wildcards, output: f"--out {output[0]}",
    shell:
        f"python {{input.script}} {REPORT_ARGS} {{params.out}} > {{log}} 2>&1"


use rule report as publish with:
    input:
        **report_inputs(),
        svgs=[
            *expand("<results>/figures/{name}.svg", name=REPORT_FIGURES),
            *([BATCH_OUTPUTS["figure_svg"]] if batch_study_enabled() else []),
            *(
                [ROBUSTNESS_OUTPUTS["figure_svg"], CORRUPTED_SETS["figures"][1]]
                if robustness_enabled()
                else []
            ),
        ],
        batch_tables=[
            BATCH_OUTPUTS[name]
            for name in ("runs", "summary", "comparisons", "changes", "gate")
            if batch_study_enabled()
        ],
        tables=multiext(
            "<results>/tables/",
            "summary.csv",
            "runs.csv",
            "epochs.csv",
            "comparisons.csv",
            "family.csv",
            "control.csv",
            "per_class.csv",
            "confusion.csv",
            "model_summary.csv",
            "receptive_field.csv",
        ),
        robustness_tables=ROBUSTNESS_TABLES.values() if robustness_enabled() else [],
    output:
        directory("<report>/site"),
    log:
        "<results>/logs/publish.log",
    benchmark:
        "<results>/benchmarks/publish.tsv"
    params:
        out=site_args,
