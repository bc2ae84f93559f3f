# Stage 3: evaluate each trained run on the test set and collect its mistakes.


rule evaluate:
    input:
        script=f"{SCRIPTS}/evaluate.py",
        modules=package_modules(*RUN_CODE_MODULES, "metrics"),
        settings=f"{RUN}/settings.json",
        model=f"{RUN}/model.pt",
        data=data_files(),
        provenance=raw_data_files()["provenance"],
    output:
        predictions=f"{RUN}/predictions.csv",
        metrics=f"{RUN}/metrics.json",
    log:
        "<results>/logs/evaluate/{variant}/seed{seed}.log",
    benchmark:
        "<results>/benchmarks/evaluate/{variant}/seed{seed}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=variant_mem_mb("evaluate"),
        runtime=minutes(10),
    params:
        # The main study scores with the running averages alone; the batch study's derived rule adds PreciseBN.
        precise_bn=0,
    shell:
        "python {input.script} --settings {input.settings} --model {input.model} --data {input.data}"
        " --provenance {input.provenance} --predictions {output.predictions}"
        " --metrics {output.metrics} --threads {threads} --precise-bn-images {params.precise_bn} > {log} 2>&1"


rule misclassified:
    input:
        script=f"{SCRIPTS}/misclassified.py",
        modules=package_modules(
            "idx", "plots", "runs", *SETTINGS_MODULES, STUDY.data.dataset
        ),
        settings=f"{RUN}/settings.json",
        metrics=f"{RUN}/metrics.json",
        data=data_files(),
        provenance=raw_data_files()["provenance"],
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
        "<results>/logs/misclassified/{variant}/seed{seed}.log",
    benchmark:
        "<results>/benchmarks/misclassified/{variant}/seed{seed}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["misclassified"]),
        runtime=minutes(10),
    params:
        grid=dataclasses.asdict(STUDY.misclassified),
        title="{variant}, seed {seed}",
    shell:
        "python {input.script} --settings {input.settings} --metrics {input.metrics} --data {input.data}"
        " --provenance {input.provenance} --predictions {input.predictions}"
        " --out-csv {output.table} --out-png {output.grid} --count {params.grid[count]}"
        " --rows {params.grid[rows]} --cols {params.grid[cols]} --title {params.title:q} > {log} 2>&1"
