# The batch-size study (part of `all` unless batch_study.enabled is false): every variant of batch_study.variants
# at every batch size, per seed, on the first batch_study.train_images training images, scored on the test set.
# At the batch sizes where packing pays, one job per variant trains all seeds as one network (adding a seed
# retrains that job; normstudy.packing.is_packed decides where); elsewhere one job per seed. A run whose settings are
# a main-study run's (the ghost design's reference, at the main recipe's epochs and images) is that run: it is
# scored from the main study's model, never trained twice (normstudy.config.recipes.shares_main_run).


include: "inputs/batch_study.smk"


wildcard_constraints:
    batch_size=r"\d+",


use rule run_settings as batch_settings with:
    output:
        settings=f"{BATCH_RUN}/settings.json",
    log:
        "<results>/logs/batch_study/settings/{variant}/batch{batch_size}/seed{seed}.log",
    benchmark:
        "<results>/benchmarks/batch_study/settings/{variant}/batch{batch_size}/seed{seed}.tsv"
    # Above the batch study's training jobs, which wait for it (run_settings says why).
    priority: 2
    params:
        settings=batch_settings_json,


use rule train as batch_train_packed with:
    input:
        **TRAIN_CODE,
        settings=pack_files("settings.json"),
        data=data_files(),
        provenance=raw_data_files()["provenance"],
    output:
        model=pack_files("model.pt"),
        history=pack_files("history.csv"),
        job=pack_files("job.json"),
    log:
        "<results>/logs/batch_study/train/{variant}/batch{batch_size}.log",
    benchmark:
        BATCH_PACK_BENCHMARK
    wildcard_constraints:
        batch_size=batch_sizes_pattern(packed=True),
    priority: 1
    resources:
        **{**TRAIN_RESOURCES, "runtime": batch_train_runtime},
    params:
        # One checkpoint for the pack: all its seeds resume together.
        checkpoint=f"{BATCH_PACK}/checkpoint.pt",


use rule train as batch_train with:
    input:
        **TRAIN_CODE,
        settings=f"{BATCH_RUN}/settings.json",
        data=data_files(),
        provenance=raw_data_files()["provenance"],
    output:
        model=f"{BATCH_RUN}/model.pt",
        history=f"{BATCH_RUN}/history.csv",
        job=f"{BATCH_RUN}/job.json",
    log:
        "<results>/logs/batch_study/train/{variant}/batch{batch_size}/seed{seed}.log",
    benchmark:
        BATCH_BENCHMARK
    wildcard_constraints:
        batch_size=batch_sizes_pattern(packed=False),
    priority: 0
    resources:
        **{**TRAIN_RESOURCES, "runtime": batch_train_runtime},
    params:
        checkpoint=f"{BATCH_RUN}/checkpoint.pt",


use rule evaluate as batch_evaluate with:
    input:
        script=f"{SCRIPTS}/evaluate.py",
        modules=package_modules(*RUN_CODE_MODULES, "metrics"),
        settings=f"{BATCH_RUN}/settings.json",
        model=batch_model,
        data=data_files(),
        provenance=raw_data_files()["provenance"],
    output:
        predictions=f"{BATCH_RUN}/predictions.csv",
        metrics=f"{BATCH_RUN}/metrics.json",
    log:
        "<results>/logs/batch_study/evaluate/{variant}/batch{batch_size}/seed{seed}.log",
    benchmark:
        "<results>/benchmarks/batch_study/evaluate/{variant}/batch{batch_size}/seed{seed}.tsv"
    params:
        # Each batch norm scored twice: with its running averages, and with PreciseBN's statistics.
        precise_bn=STUDY.batch_study.precise_bn_images,


rule batch_summary:
    input:
        script=f"{SCRIPTS}/batch_summary.py",
        modules=package_modules(
            "study",
            "norm_specs",
            "declared",
            "atomic",
            "batches",
            "runs",
            "stats",
            "tables",
            *SETTINGS_MODULES,
        ),
        settings=batch_files("settings"),
        histories=batch_files("history"),
        jobs=batch_files("job"),
        metrics=batch_files("metrics"),
        main_summary="<results>/tables/summary.csv",
        # The declared family's readings, taken by a comparison of two main-study cells (one reading each).
        family="<results>/tables/family.csv",
    output:
        runs=BATCH_OUTPUTS["runs"],
        summary=report(
            BATCH_OUTPUTS["summary"],
            caption="../report/batch_summary.rst",
            category="Batch size",
            labels={"item": "summary table"},
        ),
        summary_md=BATCH_OUTPUTS["summary_md"],
        comparisons=BATCH_OUTPUTS["comparisons"],
        changes=BATCH_OUTPUTS["changes"],
        gate=BATCH_OUTPUTS["gate"],
    log:
        "<results>/logs/batch_study/summary.log",
    benchmark:
        "<results>/benchmarks/batch_study/summary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["aggregate"]),
        runtime=minutes(10),
    params:
        design=STUDY.batch_study.design,
        gate=STUDY.batch_study.convergence_gate,
        plan=ANALYSIS_PLAN,
        shared=json.dumps(
            [
                [r["variant"], r["batch_size"], r["seed"]]
                for r in batch_manifest()
                if r["shared"]
            ]
        ),
    shell:
        "python {input.script} --settings {input.settings} --histories {input.histories}"
        " --jobs {input.jobs} --metrics {input.metrics} --main-summary {input.main_summary}"
        " --family {input.family} --shared {params.shared:q}"
        " --design {params.design} --gate-margin {params.gate} --analysis-plan {params.plan:q} --runs {output.runs}"
        " --summary {output.summary} --summary-md {output.summary_md} --comparisons {output.comparisons}"
        " --changes {output.changes} --gate-table {output.gate} > {log} 2>&1"


rule plot_batch_study:
    input:
        script=f"{SCRIPTS}/plot_batch_study.py",
        modules=package_modules("norm_specs", "atomic", "batches", "plots", "stats"),
        summary=BATCH_OUTPUTS["summary"],
    output:
        png=report(
            BATCH_OUTPUTS["figure"],
            caption="../report/batch_study.rst",
            category="Batch size",
            labels={"item": "figure"},
        ),
        svg=BATCH_OUTPUTS["figure_svg"],
    log:
        "<results>/logs/batch_study/plot.log",
    benchmark:
        "<results>/benchmarks/batch_study/plot.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["plot"]),
        runtime=minutes(20),
    params:
        variants=batch_variants(),
    shell:
        "python {input.script} --table {input.summary}"
        " --error-vs-batch-size {output.png} {output.svg}"
        " --variants {params.variants} > {log} 2>&1"
