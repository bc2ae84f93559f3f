# The recipe search (`snakemake tune`, `make tune`; not part of `all`): every enabled variant at every grid
# point of config `tune`, per tuning seed, trained on the training set less its last data.validation images
# and scored on those. Only the two training files are inputs: the test set is never read.


include: "inputs/tune.smk"


wildcard_constraints:
    point="|".join(re.escape(name) for name in tuning_points(STUDY)),


use rule run_settings as tuning_settings with:
    output:
        settings=f"{TUNING_RUN}/settings.json",
    log:
        "<results>/logs/tuning/settings/{variant}/{point}/seed{seed}.log",
    benchmark:
        "<results>/benchmarks/tuning/settings/{variant}/{point}/seed{seed}.tsv"
    priority: 0
    params:
        settings=tuning_settings_json,


use rule train as tuning_train with:
    input:
        **TRAIN_CODE,
        settings=f"{TUNING_RUN}/settings.json",
        # The two training IDX files: all a tuning run reads (it never sees the test set).
        data=data_files(("train_images", "train_labels")),
        provenance=raw_data_files()["provenance"],
    output:
        model=f"{TUNING_RUN}/model.pt",
        history=f"{TUNING_RUN}/history.csv",
        job=f"{TUNING_RUN}/job.json",
    log:
        "<results>/logs/tuning/train/{variant}/{point}/seed{seed}.log",
    benchmark:
        "<results>/benchmarks/tuning/train/{variant}/{point}/seed{seed}.tsv"
    priority: 0
    params:
        checkpoint=f"{TUNING_RUN}/checkpoint.pt",


rule tuning_summary:
    input:
        script=f"{SCRIPTS}/tune_summary.py",
        modules=package_modules(
            "study",
            "norm_specs",
            "atomic",
            "controls",
            "provenance",
            "recipes",
            "runs",
            "stats",
            "tables",
            "tuning",
            *SETTINGS_MODULES,
        ),
        settings=tuning_files("settings"),
        histories=tuning_files("history"),
        jobs=tuning_files("job"),
    output:
        runs_table="<results>/tuning/runs.csv",
        summary="<results>/tuning/summary.csv",
        summary_md="<results>/tuning/summary.md",
        chosen="<results>/tuning/chosen.yaml",
        search="<results>/tuning/search.json",
    log:
        "<results>/logs/tuning/summary.log",
    benchmark:
        "<results>/benchmarks/tuning/summary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["aggregate"]),
        runtime=minutes(10),
    params:
        # A function: Snakemake would read {name} in the config's text as a wildcard.
        config=lambda wildcards: tuning_config(),
        study=StudyArgument(STUDY),
        runs=json.dumps(tuning_manifest()),
    shell:
        "python {input.script} --config {params.study:q} --runs {params.runs:q}"
        " --runs-table {output.runs_table} --summary {output.summary}"
        " --summary-md {output.summary_md} --chosen {output.chosen}"
        " --search {output.search} > {log} 2>&1"


rule plot_tuning:
    input:
        script=f"{SCRIPTS}/plot_tuning.py",
        modules=package_modules("atomic", "plots"),
        runs="<results>/tuning/runs.csv",
    output:
        png=f"{TUNING_FIGURE}.png",
        svg=f"{TUNING_FIGURE}.svg",
    log:
        "<results>/logs/tuning/plot.log",
    benchmark:
        "<results>/benchmarks/tuning/plot.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["plot"]),
        runtime=minutes(20),
    params:
        variants=enabled_variants(),
    shell:
        "python {input.script} --table {input.runs}"
        " --validation-accuracy {output.png} {output.svg}"
        " --variants {params.variants} > {log} 2>&1"


rule tune:
    input:
        rules.tuning_summary.output,
        rules.plot_tuning.output,
