# Stage 3: evaluate each trained run on the test set and collect its mistakes.


rule evaluate:
    input:
        script=f"{SCRIPTS}/evaluate.py",
        modules=package_modules(
            "atomic",
            "architecture",
            "data",
            "engine",
            "idx",
            "metrics",
            "model",
            "norms",
        ),
        data=data_files(),
        model=f"{RUN}/model.pt",
        settings=f"{RUN}/settings.json",
    output:
        predictions=f"{RUN}/predictions.csv",
        metrics=f"{RUN}/metrics.json",
    log:
        "results/logs/evaluate/{variant}/seed{seed}.log",
    conda:
        ENV
    threads: 1
    params:
        data_dir=lambda wildcards, input: Path(input.data[0]).parent,
        run_dir=subpath(output.metrics, parent=True),
    shell:
        "python {input.script} --data-dir {params.data_dir} --run-dir {params.run_dir}"
        " --threads {threads} > {log} 2>&1"


rule misclassified:
    input:
        script=f"{SCRIPTS}/misclassified.py",
        modules=package_modules("atomic", "idx", "plots"),
        data=data_files(),
        predictions=f"{RUN}/predictions.csv",
    output:
        table=f"{RUN}/misclassified.csv",
        grid=report(
            f"{RUN}/misclassified.png",
            caption="../report/misclassified.rst",
            category="Misclassified",
            labels={"variant": "{variant}", "seed": "{seed}"},
        ),
    log:
        "results/logs/misclassified/{variant}/seed{seed}.log",
    conda:
        ENV
    params:
        data_dir=lambda wildcards, input: Path(input.data[0]).parent,
        grid=config["misclassified"],
        title="{variant}, seed {seed}",
    shell:
        "python {input.script} --data-dir {params.data_dir} --predictions {input.predictions}"
        " --out-csv {output.table} --out-png {output.grid} --count {params.grid[count]}"
        " --rows {params.grid[rows]} --cols {params.grid[cols]} --title {params.title:q} > {log} 2>&1"
