# Stage 6: the self-contained HTML report.


rule report:
    input:
        script=f"{SCRIPTS}/report.py",
        modules=package_modules("atomic"),
        template="workflow/report/index.html.j2",
        tables=multiext(
            "results/tables/",
            "summary.csv",
            "comparisons.csv",
            "per_class.csv",
            "model_summary.csv",
            "receptive_field.csv",
        ),
        figures=expand("results/figures/{name}.png", name=REPORT_FIGURES),
        jobs=run_files("job.json"),
        metrics=run_files("metrics.json"),
        grids=run_files("misclassified.png"),
        benchmarks=expand(
            "results/benchmarks/train/{variant}/seed{seed}.tsv",
            variant=enabled_variants(),
            seed=config["seeds"],
        ),
        data_provenance=raw_data_files()["provenance"],
    output:
        "report/index.html",
    log:
        "results/logs/report.log",
    conda:
        ENV
    params:
        config=json.dumps(config, sort_keys=True),
        tables=lambda wildcards, input: Path(input.tables[0]).parent,
    shell:
        "python {input.script} --config {params.config:q} --tables {params.tables}"
        " --figures {input.figures} --jobs {input.jobs} --benchmarks {input.benchmarks}"
        " --metrics {input.metrics} --grids {input.grids}"
        " --data-provenance {input.data_provenance} --template {input.template}"
        " --out {output} > {log} 2>&1"
