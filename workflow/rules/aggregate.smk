# Stage 4: tables over all runs, and the model summaries.


rule aggregate:
    input:
        script=f"{SCRIPTS}/aggregate.py",
        modules=package_modules(
            "norm_specs",
            "study",
            "declared",
            "atomic",
            "controls",
            "provenance",
            "runs",
            "stats",
            "tables",
            *SETTINGS_MODULES,
        ),
        settings=run_files("settings.json"),
        metrics=run_files("metrics.json"),
        histories=run_files("history.csv"),
        predictions=run_files("predictions.csv"),
        jobs=run_files("job.json"),
    output:
        summary=report(
            "<results>/tables/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "summary", "format": "CSV"},
        ),
        summary_md="<results>/tables/summary.md",
        summary_html=report(
            "<results>/tables/summary.html",
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "summary", "format": "HTML"},
        ),
        runs="<results>/tables/runs.csv",
        epochs="<results>/tables/epochs.csv",
        comparisons=report(
            "<results>/tables/comparisons.csv",
            caption="../report/comparisons.rst",
            category="Tables",
            labels={"table": "every pair (exploratory)", "format": "CSV"},
        ),
        per_class="<results>/tables/per_class.csv",
        confusion="<results>/tables/confusion.csv",
        family=report(
            "<results>/tables/family.csv",
            caption="../report/family.rst",
            category="Tables",
            labels={"table": "declared family", "format": "CSV"},
        ),
        # Every variant against the no-normalization control (analysis.control); no rows without one.
        control="<results>/tables/control.csv",
        analysis="<results>/tables/analysis.json",
        # Where the tables were written and the runs trained: what make compare diffs.
        environment="<results>/environment.json",
    log:
        "<results>/logs/aggregate.log",
    benchmark:
        "<results>/benchmarks/aggregate.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["aggregate"]),
        runtime=minutes(10),
    params:
        plan=ANALYSIS_PLAN,
    shell:
        "python {input.script} --settings {input.settings} --metrics {input.metrics}"
        " --histories {input.histories} --predictions {input.predictions} --jobs {input.jobs} --analysis-plan {params.plan:q}"
        " --family {output.family} --control {output.control} --analysis {output.analysis}"
        " --summary {output.summary} --summary-md {output.summary_md}"
        " --summary-html {output.summary_html} --runs {output.runs} --epochs {output.epochs}"
        " --comparisons {output.comparisons} --per-class {output.per_class}"
        " --confusion {output.confusion} --environment {output.environment} > {log} 2>&1"


rule model_summary:
    input:
        script=f"{SCRIPTS}/model_summary.py",
        modules=package_modules(
            "architecture",
            "atomic",
            "ghost_kernel",
            "network",
            "norm_layers",
            "norm_specs",
            "norms",
            *SETTINGS_MODULES,
        ),
    output:
        summary="<results>/tables/model_summary.csv",
        receptive_field="<results>/tables/receptive_field.csv",
    log:
        "<results>/logs/model_summary.log",
    benchmark:
        "<results>/benchmarks/model_summary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["model_summary"]),
        runtime=minutes(10),
    params:
        variants=lambda wildcards: json.dumps(
            [
                dataclasses.asdict(variant_settings(STUDY, name))
                for name in enabled_variants()
            ]
        ),
        network=STUDY.data.spec.network,
    shell:
        "python {input.script} --variants {params.variants:q} --network {params.network}"
        " --out-summary {output.summary}"
        " --out-receptive-field {output.receptive_field} > {log} 2>&1"
