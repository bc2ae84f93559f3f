# Stage 2: train every enabled variant once per seed.


rule run_settings:
    input:
        script=f"{SCRIPTS}/write_settings.py",
        modules=package_modules("atomic", *SETTINGS_MODULES),
    output:
        settings=f"{RUN}/settings.json",
    log:
        "results/logs/settings/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/settings/{variant}/seed{seed}.tsv"
    # Above every training job's: at 0, the batch study's ready jobs (priority 1) held back the last main runs'
    # settings, and with them their long training, until the end (one core idle for 8 minutes of the study).
    priority: 3
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["run_settings"]),
        runtime=minutes(1),
    params:
        settings=settings_json,
    shell:
        SETTINGS_SHELL


rule train:
    input:
        script=f"{SCRIPTS}/train.py",
        modules=package_modules(
            "atomic", "data", "engine", "idx", "model", "norms", *SETTINGS_MODULES
        ),
        settings=f"{RUN}/settings.json",
        data=data_files(),
        provenance=raw_data_files()["provenance"],
    output:
        model=f"{RUN}/model.pt",
        history=f"{RUN}/history.csv",
        job=f"{RUN}/job.json",
    log:
        "results/logs/train/{variant}/seed{seed}.log",
    benchmark:
        TRAIN_BENCHMARK
    # The study's longest jobs start first; the batch study's shorter ones then fill the cores to the end.
    priority: 2
    conda:
        ENV
    threads: train_threads
    resources:
        mem_mb=variant_mem_mb("train"),
        runtime=train_runtime,
        gpu=train_gpus,
    params:
        # Not an output: it exists only while a job is unfinished, and is resumed from when it matches.
        checkpoint=f"{RUN}/checkpoint.pt",
    shell:
        TRAIN_SHELL
