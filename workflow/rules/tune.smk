# The recipe search (`snakemake tune`, `make tune`; not part of `all`): every enabled variant at every grid
# point of config `tune`, per tuning seed, trained on the training set less its last data.validation images
# and scored on those. Only the two training files are inputs: the test set is never read.


TUNING_RECORD = {
    "summary": "workflow/resources/tuning/summary.csv",
    "search": "workflow/resources/tuning/search.json",
    "figure": "workflow/resources/tuning/validation_accuracy.png",
}


def tuning_data_files():
    """The two training IDX files: all a tuning run reads (it never sees the test set)."""
    return [raw_data_files()[role] for role in ("train_images", "train_labels")]


TUNING_RUN = "results/tuning/runs/{variant}/{point}/seed{seed}"
TUNING_FIGURE = "results/tuning/validation_accuracy"


def tuning_settings_json(wildcards):
    """One tuning run's typed settings as canonical JSON."""
    settings = tuning_settings(
        config, wildcards.variant, wildcards.point, int(wildcards.seed)
    )
    return settings.to_json()


def tuning_manifest():
    """Per tuning run, in config order: variant, grid point, seed and its files."""
    return [
        {
            "variant": variant,
            "point": point,
            "seed": seed,
            **{
                name: f"{TUNING_RUN}/{name}.{ext}".format(
                    variant=variant, point=point, seed=seed
                )
                for name, ext in (
                    ("settings", "json"),
                    ("history", "csv"),
                    ("job", "json"),
                )
            },
        }
        for variant in enabled_variants()
        for point in tuning_points(config)
        for seed in config["tune"]["seeds"]
    ]


def tuning_files(name):
    """One file of every tuning run, in manifest order."""
    return [run[name] for run in tuning_manifest()]


def tuning_config():
    """The config slice the tuning summary reads: the grid, seeds, variants, recipe and data identity."""
    keys = ("variants", "train", "tune")
    data = {
        key: config["data"][key]
        for key in ("dataset", "synthetic", "mean", "std", "validation")
    }
    # Not sorted: the grid's key order names the points.
    return json.dumps({**{key: config[key] for key in keys}, "data": data})


wildcard_constraints:
    point="|".join(re.escape(name) for name in tuning_points(config)),


use rule run_settings as tuning_settings with:
    output:
        settings=f"{TUNING_RUN}/settings.json",
    log:
        "results/logs/tuning/settings/{variant}/{point}/seed{seed}.log",
    benchmark:
        "results/benchmarks/tuning/settings/{variant}/{point}/seed{seed}.tsv"
    priority: 0
    params:
        settings=tuning_settings_json,


use rule train as tuning_train with:
    input:
        **TRAIN_CODE,
        settings=f"{TUNING_RUN}/settings.json",
        data=tuning_data_files(),
        provenance=raw_data_files()["provenance"],
    output:
        model=f"{TUNING_RUN}/model.pt",
        history=f"{TUNING_RUN}/history.csv",
        job=f"{TUNING_RUN}/job.json",
    log:
        "results/logs/tuning/train/{variant}/{point}/seed{seed}.log",
    benchmark:
        "results/benchmarks/tuning/train/{variant}/{point}/seed{seed}.tsv"
    priority: 0
    params:
        checkpoint=f"{TUNING_RUN}/checkpoint.pt",


rule tuning_summary:
    input:
        script=f"{SCRIPTS}/tune_summary.py",
        modules=package_modules(
            "atomic", "provenance", "recipes", "stats", "tables", "tuning", *SETTINGS_MODULES
        ),
        settings=tuning_files("settings"),
        histories=tuning_files("history"),
        jobs=tuning_files("job"),
    output:
        runs_table="results/tuning/runs.csv",
        summary="results/tuning/summary.csv",
        summary_md="results/tuning/summary.md",
        chosen="results/tuning/chosen.yaml",
        search="results/tuning/search.json",
    log:
        "results/logs/tuning/summary.log",
    benchmark:
        "results/benchmarks/tuning/summary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["aggregate"]),
        runtime=minutes(10),
    params:
        config=tuning_config(),
        runs=json.dumps(tuning_manifest()),
    shell:
        "python {input.script} --config {params.config:q} --runs {params.runs:q}"
        " --runs-table {output.runs_table} --summary {output.summary}"
        " --summary-md {output.summary_md} --chosen {output.chosen}"
        " --search {output.search} > {log} 2>&1"


rule plot_tuning:
    input:
        script=f"{SCRIPTS}/plot_tuning.py",
        modules=package_modules("atomic", "plots"),
        runs="results/tuning/runs.csv",
    output:
        png=f"{TUNING_FIGURE}.png",
        svg=f"{TUNING_FIGURE}.svg",
    log:
        "results/logs/tuning/plot.log",
    benchmark:
        "results/benchmarks/tuning/plot.tsv"
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
