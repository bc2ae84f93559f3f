# Stage 2: train every enabled variant once per seed. The tuning and batch-study runs derive their settings and
# training rules from these two with `use rule ... with:` (tune.smk, batch_study.smk).


rule run_settings:
    input:
        script=f"{SCRIPTS}/write_settings.py",
        modules=package_modules(*SETTINGS_MODULES),
    output:
        settings=f"{RUN}/settings.json",
    log:
        "<results>/logs/settings/{variant}/seed{seed}.log",
    benchmark:
        "<results>/benchmarks/settings/{variant}/seed{seed}.tsv"
    # Above every training job's: at 0, the batch study's ready jobs (priority 1) held back the last main runs'
    # settings, and with them their long training, until the end (one core idle for 8 minutes of the study).
    priority: 3
    conda:
        ENV
    threads: 1
    resources:
        **SETTINGS_RESOURCES,
    params:
        settings=settings_json,
    shell:
        "python {input.script} --settings {params.settings:q} --out {output.settings} > {log} 2>&1"


# What every training job reads besides its settings: the script and the code that decides its numbers.
TRAIN_CODE = {"script": f"{SCRIPTS}/train.py", "modules": RUN_CODE}


rule train:
    input:
        **TRAIN_CODE,
        settings=f"{RUN}/settings.json",
        data=data_files(),
        provenance=raw_data_files()["provenance"],
    output:
        model=f"{RUN}/model.pt",
        history=f"{RUN}/history.csv",
        job=f"{RUN}/job.json",
    log:
        "<results>/logs/train/{variant}/seed{seed}.log",
    benchmark:
        TRAIN_BENCHMARK
    # The study's longest jobs start first; the batch study's shorter ones then fill the cores to the end.
    priority: 2
    conda:
        ENV
    threads: train_threads
    resources:
        **TRAIN_RESOURCES,
    params:
        # Not an output: it exists only while a job is unfinished, and is resumed from when it matches.
        checkpoint=f"{RUN}/checkpoint.pt",
    shell:
        "python {input.script} --settings {input.settings} --data {input.data}"
        " --provenance {input.provenance} --model {output.model} --history {output.history}"
        " --job {output.job} --checkpoint {params.checkpoint} --threads {threads} > {log} 2>&1"
