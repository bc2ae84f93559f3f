# Resources of every rule: threads, memory (mem_mb) and runtime (minutes), for SLURM and local runs alike.
# Peak RSS measured by Snakemake's benchmark files (results/<study>/benchmarks/, full MNIST, 2-core development machine,
# one thread per job), in MB; each job's memory is that x 1.5, plus the Snakemake process that runs the job on a
# cluster node (about 200 MB, counted as 500).
PEAK_RSS_MB = {
    "run_settings": 50,
    "fetch_dataset": 1275,
    "train": 790,
    "evaluate": 620,
    "misclassified": 235,
    "aggregate": 115,
    "model_summary": 570,
    "plot": 195,
    "report": 625,
    # motion blur at severity 5, the largest (its FFT convolution in chunks of 1,000 images)
    "corrupt": 465,
    # every run scored on one set: the four IDX files, one model at a time, one set's activations for adaptation
    # (1,314 MB measured on MNIST with freed memory kept, KEEP_FREED_MEMORY; 1,158 MB without)
    "score_sets": 1320,
    "robustness_summary": 260,
}
JOB_OVERHEAD_MB = 500
# CUDA's context and libraries, on top, when training on a GPU.
CUDA_HOST_MB = 2000
# Seconds per epoch of 60,000 images are each norm's spec's (NormSpec.seconds_per_epoch: one CPU thread, batch 128,
# two jobs side by side, rounded up; the study measured bn 16.8, gn 17.3, ln 14.4, in 17.3 in NCHW, against 36.5 in
# NHWC); the L1 penalty added about 35 % in an earlier measurement (bn_l1 26 s against bn 19 s), kept as the margin.
L1_SLOWDOWN = 1.35


def mem_mb(peak_rss_mb):
    """Memory to ask for: the measured peak with a 1.5x margin plus the job's Snakemake process, in 100 MB steps."""
    return math.ceil((peak_rss_mb * 1.5 + JOB_OVERHEAD_MB) / 100) * 100


def minutes(seconds):
    """Runtime to ask for: three times the measured seconds, at least 5 minutes (schedulers count in minutes)."""
    return max(5, math.ceil(seconds * 3 / 60))


def uses_gpu(wildcards):
    """Training asks the scheduler for a GPU only when the variant's recipe says CUDA (auto takes what the node has)."""
    return variant_recipe(STUDY, wildcards.variant)["device"] == "cuda"


def train_threads(wildcards):
    """A training job's CPU threads: its variant's train.threads."""
    return variant_recipe(STUDY, wildcards.variant)["threads"]


def train_gpus(wildcards):
    """One GPU for a CUDA job, none otherwise."""
    return 1 if uses_gpu(wildcards) else 0


def variant_mem_mb(rule):
    """Memory of a rule's per-variant jobs: the measured peak, plus CUDA's host memory when the variant uses a GPU."""

    def job_mem_mb(wildcards):
        return mem_mb(PEAK_RSS_MB[rule]) + (CUDA_HOST_MB if uses_gpu(wildcards) else 0)

    return job_mem_mb


def train_seconds(name):
    """A study run's CPU seconds: epochs x the measured seconds per epoch for its norm (no margin)."""
    variant = STUDY.variants[name]
    per_epoch = variant.spec.seconds_per_epoch * train_size(STUDY) / 60000
    per_epoch *= L1_SLOWDOWN if variant.l1 > 0 else 1
    return variant_recipe(STUDY, name)["epochs"] * per_epoch


def train_runtime(wildcards):
    """A training job's minutes: its run's CPU seconds, twice, plus start-up."""
    return math.ceil((train_seconds(wildcards.variant) * 2 + 120) / 60)


def synthetic_mem_mb(wildcards):
    """The generator holds every image: 60 MB measured for 7,000, about 3 KB more per image."""
    synthetic = STUDY.data.synthetic
    return mem_mb(60 + 0.003 * (synthetic.train_size + synthetic.test_size))


# Seconds of one model's training step at batch size b, one CPU thread: STEP_SECONDS + b x IMAGE_SECONDS, fitted to
# `make bench`'s bn alone on the 2-core development machine (240 img/s at batch 2, 2,385 at 128).
STEP_SECONDS, IMAGE_SECONDS = 0.0076, 0.00036
# A ghost-batch-norm step against a plain one (this network, one CPU thread, `make bench`): 0.97-1.04x with the fused
# CPU kernel (normstudy/model/ghost_kernel.cpp); 1.3x in tensor operations (NCHW, or a machine without a compiler).
GHOST_COST = 1.05


def batch_train_seconds(name, batch_size):
    """A batch-study job's CPU seconds: its images (every seed's, packed or not) at the unpacked per-image cost of its
    SGD batch; packing only makes it faster. Ghost batch norm's groups (smaller than the SGD batch) cost
    GHOST_COST times a plain step (normstudy/model/norms.py).
    """
    seeds = len(STUDY.batch_study.seeds) if is_packed(STUDY, batch_size) else 1
    # The ghost design keeps the recipe's own SGD batch; sgd_batch trains at the size itself.
    recipe = batch_recipe(STUDY, name, batch_size)
    sgd_batch = recipe["batch_size"]
    steps = recipe["epochs"] * steps_per_epoch(batch_train_images(STUDY), sgd_batch)
    ghost = GHOST_COST if batch_size < sgd_batch else 1.0
    return seeds * steps * (STEP_SECONDS + sgd_batch * IMAGE_SECONDS) * ghost


def batch_train_runtime(wildcards):
    """A batch-study job's minutes: its CPU seconds, twice, plus start-up."""
    seconds = batch_train_seconds(wildcards.variant, int(wildcards.batch_size))
    return math.ceil((seconds * 2 + 120) / 60)


def names(values):
    """`values` without repeats, in config order (variants) or sorted (numbers), joined for a sentence."""
    values = set(values)
    order = list(STUDY.variants) if values <= set(STUDY.variants) else None
    ordered = [v for v in order if v in values] if order else sorted(values, key=int)
    return ", ".join(map(str, ordered))


def counted(count, noun):
    """'1 run', '2 runs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def sizes_by_variant(batch):
    """'bn at batch sizes 2, 4, 128; gn, ln at 128': the batch sizes each planned variant trains at."""
    sizes = {}
    for w in batch:
        sizes.setdefault(w.variant, set()).add(int(w.batch_size))
    groups = {}
    for variant, its in sizes.items():
        groups.setdefault(frozenset(its), []).append(variant)
    parts = [f"{names(variants)} at {names(its)}" for its, variants in groups.items()]
    return parts[0].replace(" at ", " at batch sizes ", 1) + "".join(
        f"; {p}" for p in parts[1:]
    )


def plan_summary(jobs):
    """What this run trains: its training jobs (Snakemake's plan), counted, with their CPU time by the estimates above
    (no margin)."""
    planned = {}
    for job in jobs:
        planned.setdefault(job.rule.name, []).append(job.wildcards)
    study, tuning = planned.get("train", []), planned.get("tuning_train", [])
    packed, alone = planned.get("batch_train_packed", []), planned.get(
        "batch_train", []
    )
    lines = []
    if study:
        epochs = names(variant_recipe(STUDY, w.variant)["epochs"] for w in study)
        lines.append(
            f"  study: {counted(len(study), 'run')} of {names(w.variant for w in study)} x seeds "
            f"{names(w.seed for w in study)}, {epochs} epochs on {train_size(STUDY)} images"
        )
    if tuning:
        images = train_size(STUDY, STUDY.data.validation)
        lines.append(
            f"  tuning: {counted(len(tuning), 'run')} of {names(w.variant for w in tuning)} x {len(set(w.point for w in tuning))}"
            f" grid points x seeds {names(w.seed for w in tuning)}, on {images} images"
        )
    batch = packed + alone
    if batch:
        runs = len(alone) + len(packed) * len(STUDY.batch_study.seeds)
        lines.append(
            f"  batch study: {counted(runs, 'run')} in {counted(len(batch), 'training job')} on "
            f"{batch_train_images(STUDY)} images: {sizes_by_variant(batch)}"
        )
    validation = STUDY.data.validation / train_size(STUDY)
    seconds = (
        sum(train_seconds(w.variant) for w in study)
        + sum(train_seconds(w.variant) * (1 - validation) for w in tuning)
        + sum(batch_train_seconds(w.variant, int(w.batch_size)) for w in batch)
    )
    count = len(study) + len(tuning) + len(batch)
    head = f"plan: {counted(len(jobs), 'job')}, {count} of them training"
    return "\n".join(
        [
            head + (":" if count else " (every run this target needs is trained)"),
            *lines,
            f"  training CPU time, by workflow/rules/resources.smk's estimates: about "
            + (
                f"{seconds:.0f} s"
                if seconds < 90
                else f"{seconds / 3600:.1f} h ({seconds / 60:.0f} min)"
            )
            + "; `snakemake -n` lists every job",
        ]
    )


# A training job's resources; the tuning and batch-study training rules derive from rule train and keep them,
# the batch study with its own runtime.
TRAIN_RESOURCES = {
    "mem_mb": variant_mem_mb("train"),
    "runtime": train_runtime,
    "gpu": train_gpus,
}
# A settings job's: it only writes one JSON file.
SETTINGS_RESOURCES = {
    "mem_mb": mem_mb(PEAK_RSS_MB["run_settings"]),
    "runtime": minutes(1),
}
