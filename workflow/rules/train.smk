# Stage 2: train every enabled variant once per seed.


rule train:
    input:
        script=f"{SCRIPTS}/train.py",
        modules=package_modules(
            "atomic", "architecture", "data", "engine", "idx", "model", "norms"
        ),
        data=data_files(),
    output:
        model=f"{RUN}/model.pt",
        history=f"{RUN}/history.csv",
        settings=f"{RUN}/settings.json",
    log:
        "results/logs/train/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{variant}/seed{seed}.tsv"
    conda:
        ENV
    threads: config["train"]["threads"]
    params:
        data_dir=lambda wildcards, input: Path(input.data[0]).parent,
        out_dir=subpath(output.model, parent=True),
        settings=run_settings,
    shell:
        "python {input.script} --data-dir {params.data_dir} --out-dir {params.out_dir}"
        " --settings {params.settings:q} --seed {wildcards.seed} --threads {threads} > {log} 2>&1"
