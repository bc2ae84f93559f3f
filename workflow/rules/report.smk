# Stage 6: the HTML report, as one self-contained file and as a folder for a static host.


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
    shell:
        f"python {{input.script}} {REPORT_ARGS} --out {{output}} > {{log}} 2>&1"


rule publish:
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
    shell:
        "python {input.script} "
        + REPORT_ARGS
        + " --svgs {input.svgs} --tables {input.tables} --batch-tables {input.batch_tables}"
        " --site {output} > {log} 2>&1"
