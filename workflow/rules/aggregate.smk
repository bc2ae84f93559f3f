# Stage 4: tables over all runs, and the model summaries.


rule aggregate:
    input:
        script=f"{SCRIPTS}/aggregate.py",
        modules=package_modules("atomic", "stats"),
        histories=run_files("history.csv"),
        metrics=run_files("metrics.json"),
        settings=run_files("settings.json"),
    output:
        summary=report(
            "results/tables/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
        ),
        summary_md="results/tables/summary.md",
        summary_html=report(
            "results/tables/summary.html",
            caption="../report/summary.rst",
            category="Tables",
        ),
        runs="results/tables/runs.csv",
        epochs="results/tables/epochs.csv",
        comparisons=report(
            "results/tables/comparisons.csv",
            caption="../report/comparisons.rst",
            category="Tables",
        ),
        per_class="results/tables/per_class.csv",
        confusion="results/tables/confusion.csv",
    log:
        "results/logs/aggregate.log",
    conda:
        ENV
    params:
        runs=lambda wildcards, input: [Path(p).parent for p in input.metrics],
        out_dir=subpath(output.summary, parent=True),
    shell:
        "python {input.script} --runs {params.runs} --out-dir {params.out_dir} > {log} 2>&1"


rule model_summary:
    input:
        script=f"{SCRIPTS}/model_summary.py",
        modules=package_modules("atomic", "architecture", "model", "norms"),
    output:
        summary="results/tables/model_summary.csv",
        receptive_field="results/tables/receptive_field.csv",
    log:
        "results/logs/model_summary.log",
    conda:
        ENV
    params:
        variants=lambda wildcards: json.dumps(
            {name: config["variants"][name] for name in enabled_variants()}
        ),
    shell:
        "python {input.script} --variants {params.variants:q} --out-summary {output.summary}"
        " --out-receptive-field {output.receptive_field} > {log} 2>&1"
