# The batch-size study's paths, manifests, packing pattern and report arguments (its rules: batch_study.smk).

BATCH_PACK = in_study("<results>/batch_study/runs/{variant}/batch{batch_size}")
BATCH_RUN = f"{BATCH_PACK}/seed{{seed}}"
BATCH_FIGURE = in_study("<results>/batch_study/error_vs_batch_size")
BATCH_OUTPUTS = {
    name: in_study(f"<results>/batch_study/{file}")
    for name, file in {
        "runs": "runs.csv",
        "summary": "summary.csv",
        "summary_md": "summary.md",
        "comparisons": "comparisons.csv",
        "changes": "changes.csv",
        "gate": "gate.csv",
    }.items()
} | {
    "figure": f"{BATCH_FIGURE}.png",
    "figure_svg": f"{BATCH_FIGURE}.svg",
}


BATCH_BENCHMARK = in_study(
    "<results>/benchmarks/batch_study/train/{variant}/batch{batch_size}/seed{seed}.tsv"
)
BATCH_PACK_BENCHMARK = in_study(
    "<results>/benchmarks/batch_study/train/{variant}/batch{batch_size}.tsv"
)


def batch_study_enabled():
    """Whether the default study includes the batch study."""
    return STUDY.batch_study.enabled


def batch_variants():
    """The batch study's enabled variants, in its own order (none when it is disabled)."""
    return batch_study_variants(STUDY) if batch_study_enabled() else []


def batch_sizes_pattern(packed):
    """A wildcard pattern of the batch sizes trained packed (or one job per seed); one that never matches if none."""
    sizes = [b for b in study_batch_sizes(STUDY) if is_packed(STUDY, b) == packed]
    return "|".join(map(str, sizes)) or "(?!)"


def batch_settings_json(wildcards):
    """One batch-study run's typed settings as canonical JSON."""
    settings = batch_run_settings(
        STUDY,
        studied_variant(wildcards),
        int(wildcards.batch_size),
        int(wildcards.seed),
    )
    return settings.to_json()


def batch_manifest():
    """Per batch-study run, in order (variant, batch size, seed): its files, and the job that trains it. A run with a
    main-study run's settings (shared) is that run: its model, history and job record are the main study's.
    """
    runs = []
    for variant in batch_variants():
        for batch_size in variant_batch_sizes(STUDY, variant):
            packed = is_packed(STUDY, batch_size)
            for seed in STUDY.batch_study.seeds:
                names = {"variant": variant, "batch_size": batch_size, "seed": seed}
                shared = shares_main_run(STUDY, **names)
                trained = trained_folder(names, shared)
                runs.append(
                    {
                        **names,
                        "packed": packed,
                        "shared": shared,
                        "settings": f"{BATCH_RUN}/settings.json".format(**names),
                        "history": f"{trained}/history.csv",
                        "job": f"{trained}/job.json",
                        "metrics": f"{BATCH_RUN}/metrics.json".format(**names),
                        "benchmark": (
                            TRAIN_BENCHMARK
                            if shared
                            else BATCH_PACK_BENCHMARK if packed else BATCH_BENCHMARK
                        ).format(**names),
                    }
                )
    return runs


def trained_folder(names, shared):
    """Where a batch-study run's model, history and job record are: the main-study run's folder when it shares that
    run's settings, its own otherwise."""
    return (RUN if shared else BATCH_RUN).format(**names)


def batch_model(wildcards):
    """The model a batch-study run is scored with: its own, or the main-study run it shares settings with."""
    names = {
        "variant": wildcards.variant,
        "batch_size": int(wildcards.batch_size),
        "seed": int(wildcards.seed),
    }
    return f"{trained_folder(names, shares_main_run(STUDY, **names))}/model.pt"


def batch_files(name):
    """One file of every batch-study run, in manifest order."""
    return [run[name] for run in batch_manifest()]


def batch_jobs():
    """Per training job of the batch study (a shared run is the main study's): the variant and first seed it trains,
    its job.json and benchmark file."""
    jobs = {}
    for run in batch_manifest():
        if run["shared"]:
            continue  # trained by the main study, and counted there
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
            for name in ("summary", "comparisons", "changes", "gate", "figure")
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
        for name in ("summary", "comparisons", "changes", "gate", "figure")
    )
    return f"{tables} --batch-jobs {shlex.quote(json.dumps(batch_jobs()))}"


def pack_files(name):
    """One file of each seed of a pack: the batch study's seeds, the variant and batch size left as wildcards."""
    return expand(
        f"{BATCH_RUN}/{name}", seed=STUDY.batch_study.seeds, allow_missing=True
    )
