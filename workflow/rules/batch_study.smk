# The batch-size study (part of `all` unless batch_study.enabled is false): every variant of batch_study.variants
# at every batch size, per seed, on the first batch_study.train_images training images, scored on the test set.
# At the batch sizes where packing pays, one job per variant trains all seeds as one network (adding a seed
# retrains that job; normstudy.packing.is_packed decides where); elsewhere one job per seed.


BATCH_PACK = "results/batch_study/runs/{variant}/batch{batch_size}"
BATCH_RUN = f"{BATCH_PACK}/seed{{seed}}"
BATCH_FIGURE = "results/batch_study/error_vs_batch_size"
BATCH_OUTPUTS = {
    "runs": "results/batch_study/runs.csv",
    "summary": "results/batch_study/summary.csv",
    "summary_md": "results/batch_study/summary.md",
    "comparisons": "results/batch_study/comparisons.csv",
    "changes": "results/batch_study/changes.csv",
    "figure": f"{BATCH_FIGURE}.png",
    "figure_svg": f"{BATCH_FIGURE}.svg",
}


BATCH_BENCHMARK = (
    "results/benchmarks/batch_study/train/{variant}/batch{batch_size}/seed{seed}.tsv"
)
BATCH_PACK_BENCHMARK = (
    "results/benchmarks/batch_study/train/{variant}/batch{batch_size}.tsv"
)


def batch_study_enabled():
    """Whether the default study includes the batch study."""
    return config["batch_study"]["enabled"]


def batch_variants():
    """The batch study's enabled variants, in its own order (none when it is disabled)."""
    return batch_study_variants(config) if batch_study_enabled() else []


def batch_sizes_pattern(packed):
    """A wildcard pattern of the batch sizes trained packed (or one job per seed); one that never matches if none."""
    sizes = [b for b in study_batch_sizes(config) if is_packed(config, b) == packed]
    return "|".join(map(str, sizes)) or "(?!)"


def batch_settings_json(wildcards):
    """One batch-study run's typed settings as canonical JSON."""
    settings = batch_run_settings(
        config, wildcards.variant, int(wildcards.batch_size), int(wildcards.seed)
    )
    return settings.to_json()


def batch_manifest():
    """Per batch-study run, in order (variant, batch size, seed): its files, and the job that trains it."""
    runs = []
    for variant in batch_variants():
        for batch_size in study_batch_sizes(config):
            packed = is_packed(config, batch_size)
            for seed in config["batch_study"]["seeds"]:
                names = {"variant": variant, "batch_size": batch_size, "seed": seed}
                runs.append(
                    {
                        **names,
                        "packed": packed,
                        **{
                            name: f"{BATCH_RUN}/{name}.{ext}".format(**names)
                            for name, ext in (
                                ("settings", "json"),
                                ("history", "csv"),
                                ("job", "json"),
                            )
                        },
                        "benchmark": (
                            BATCH_PACK_BENCHMARK if packed else BATCH_BENCHMARK
                        ).format(**names),
                    }
                )
    return runs


def batch_files(name):
    """One file of every batch-study run, in manifest order."""
    return [run[name] for run in batch_manifest()]


def batch_jobs():
    """Per training job of the batch study: the variant and first seed it trains, its job.json and benchmark file."""
    jobs = {}
    for run in batch_manifest():
        key = (
            run["variant"],
            run["batch_size"],
            run["seed"] if not run["packed"] else None,
        )
        jobs.setdefault(
            key,
            {
                "variant": run["variant"],
                "seed": run["seed"],
                "batch_size": run["batch_size"],
                "job": run["job"],
                "benchmark": run["benchmark"],
            },
        )
    return list(jobs.values())


def batch_report_inputs():
    """What the report reads of the batch study (nothing when it is disabled)."""
    if not batch_study_enabled():
        return {}
    jobs = batch_jobs()
    return {
        **{
            f"batch_{name}": BATCH_OUTPUTS[name]
            for name in ("summary", "comparisons", "changes", "figure")
        },
        "batch_job_files": [job["job"] for job in jobs],
        "batch_benchmarks": [job["benchmark"] for job in jobs],
    }


def batch_report_args(wildcards, input):
    """The report script's batch-study arguments (none when the study is disabled)."""
    if not batch_study_enabled():
        return ""
    tables = " ".join(
        f"--batch-{name} {getattr(input, f'batch_{name}')}"
        for name in ("summary", "comparisons", "changes", "figure")
    )
    return f"{tables} --batch-jobs {shlex.quote(json.dumps(batch_jobs()))}"


wildcard_constraints:
    batch_size=r"\d+",


use rule run_settings as batch_settings with:
    output:
        settings=f"{BATCH_RUN}/settings.json",
    log:
        "results/logs/batch_study/settings/{variant}/batch{batch_size}/seed{seed}.log",
    benchmark:
        "results/benchmarks/batch_study/settings/{variant}/batch{batch_size}/seed{seed}.tsv"
    # Above the batch study's training jobs, which wait for it (run_settings says why).
    priority: 2
    params:
        settings=batch_settings_json,


def pack_files(name):
    """One file of each seed of a pack: the batch study's seeds, the variant and batch size left as wildcards."""
    return expand(
        f"{BATCH_RUN}/{name}", seed=config["batch_study"]["seeds"], allow_missing=True
    )


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
        "results/logs/batch_study/train/{variant}/batch{batch_size}.log",
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
        "results/logs/batch_study/train/{variant}/batch{batch_size}/seed{seed}.log",
    benchmark:
        BATCH_BENCHMARK
    wildcard_constraints:
        batch_size=batch_sizes_pattern(packed=False),
    priority: 0
    resources:
        **{**TRAIN_RESOURCES, "runtime": batch_train_runtime},
    params:
        checkpoint=f"{BATCH_RUN}/checkpoint.pt",


rule batch_summary:
    input:
        script=f"{SCRIPTS}/batch_summary.py",
        modules=package_modules(
            "atomic", "batches", "stats", "tables", *SETTINGS_MODULES
        ),
        settings=batch_files("settings"),
        histories=batch_files("history"),
        jobs=batch_files("job"),
    output:
        runs=BATCH_OUTPUTS["runs"],
        summary=report(
            BATCH_OUTPUTS["summary"],
            caption="../report/batch_summary.rst",
            category="Batch size",
        ),
        summary_md=BATCH_OUTPUTS["summary_md"],
        comparisons=BATCH_OUTPUTS["comparisons"],
        changes=BATCH_OUTPUTS["changes"],
    log:
        "results/logs/batch_study/summary.log",
    benchmark:
        "results/benchmarks/batch_study/summary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["aggregate"]),
        runtime=minutes(10),
    shell:
        "python {input.script} --settings {input.settings} --histories {input.histories}"
        " --jobs {input.jobs} --runs {output.runs} --summary {output.summary}"
        " --summary-md {output.summary_md} --comparisons {output.comparisons}"
        " --changes {output.changes} > {log} 2>&1"


rule plot_batch_study:
    input:
        script=f"{SCRIPTS}/plot_batch_study.py",
        modules=package_modules("atomic", "batches", "plots", "stats"),
        summary=BATCH_OUTPUTS["summary"],
    output:
        png=report(
            BATCH_OUTPUTS["figure"],
            caption="../report/batch_study.rst",
            category="Batch size",
        ),
        svg=BATCH_OUTPUTS["figure_svg"],
    log:
        "results/logs/batch_study/plot.log",
    benchmark:
        "results/benchmarks/batch_study/plot.tsv"
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
