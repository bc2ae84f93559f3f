# Stage: corrupted copies of the test images (config `robustness`), one IDX file per corruption and severity, each
# checked against its recorded SHA-256 when the manifest is written. `snakemake corrupted_sets` builds them.


include: "inputs/robustness.smk"


rule corrupt_test_set:
    input:
        script=f"{SCRIPTS}/corrupt_test_set.py",
        modules=package_modules("corruptions", "idx", "shift_sets", *SETTINGS_MODULES),
        data=TEST_SPLIT,
        provenance=raw_data_files()["provenance"],
    output:
        images=f"{CORRUPTED_SET}/t10k-images-idx3-ubyte",
        record=f"{CORRUPTED_SET}/set.json",
    log:
        "<results>/logs/robustness/corrupt/{corruption}/severity{severity}.log",
    benchmark:
        "<results>/benchmarks/robustness/corrupt/{corruption}/severity{severity}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["corrupt"]),
        runtime=minutes(5),
    params:
        dataset=STUDY.data.dataset,
        seed=STUDY.robustness.seed,
    shell:
        "python {input.script} --data {input.data} --provenance {input.provenance} --dataset {params.dataset}"
        " --corruption {wildcards.corruption} --severity {wildcards.severity} --seed {params.seed}"
        " --out {output.images} --record {output.record} > {log} 2>&1"


rule corrupted_sets_manifest:
    input:
        script=f"{SCRIPTS}/corrupted_sets.py",
        modules=package_modules("idx", "plots", *SETTINGS_MODULES),
        data=TEST_SPLIT,
        provenance=raw_data_files()["provenance"],
        records=corrupted_files("record"),
        images=corrupted_files("images"),
    output:
        manifest=CORRUPTED_SETS["manifest"],
        png=CORRUPTED_SETS["figures"][0],
        svg=CORRUPTED_SETS["figures"][1],
    log:
        "<results>/logs/robustness/manifest.log",
    benchmark:
        "<results>/benchmarks/robustness/manifest.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["plot"]),
        runtime=minutes(5),
    params:
        dataset=STUDY.data.dataset,
    shell:
        "python {input.script} --data {input.data} --provenance {input.provenance} --dataset {params.dataset}"
        " --records {input.records} --images {input.images} --manifest {output.manifest}"
        " --figures {output.png} {output.svg} > {log} 2>&1"


rule corrupted_sets:
    input:
        CORRUPTED_SETS["manifest"],
        CORRUPTED_SETS["figures"],


rule precise_statistics:
    input:
        script=f"{SCRIPTS}/precise_statistics.py",
        modules=package_modules(*RUN_CODE_MODULES, "adaptation"),
        settings=f"{RUN}/settings.json",
        model=f"{RUN}/model.pt",
        data=data_files(),
        provenance=raw_data_files()["provenance"],
    output:
        f"{RUN}/precise_bn.json",
    log:
        "<results>/logs/robustness/precise/{variant}/seed{seed}.log",
    benchmark:
        "<results>/benchmarks/robustness/precise/{variant}/seed{seed}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["score_sets"]),
        runtime=minutes(5),
    params:
        images=STUDY.robustness.precise_bn_images,
    shell:
        f"{KEEP_FREED_MEMORY} python {{input.script}} --settings {{input.settings}} --model {{input.model}}"
        " --data {input.data} --provenance {input.provenance} --images {params.images} --threads {threads}"
        " --out {output} > {log} 2>&1"


rule score_corrupted_set:
    input:
        **scoring_inputs(),
        images=f"{CORRUPTED_SET}/t10k-images-idx3-ubyte",
        record=f"{CORRUPTED_SET}/set.json",
    output:
        table=f"{SCORES}/{{corruption}}/severity{{severity}}.csv",
        predictions=f"{SCORES}/{{corruption}}/severity{{severity}}.npy",
    log:
        "<results>/logs/robustness/score/{corruption}/severity{severity}.log",
    benchmark:
        "<results>/benchmarks/robustness/score/{corruption}/severity{severity}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["score_sets"]),
        runtime=minutes(15),
    params:
        scored_set=lambda wildcards, input: f"--images {input.images} --record {input.record}",
        batches=ADAPTATION_BATCHES,
    shell:
        f"{KEEP_FREED_MEMORY} python {{input.script}} --settings {{input.settings}} --models {{input.models}}"
        " --precise {input.precise} --adaptation-batches {params.batches}"
        " --data {input.data} --provenance {input.provenance} {params.scored_set} --threads {threads}"
        " --table {output.table} --predictions {output.predictions} > {log} 2>&1"


use rule score_corrupted_set as score_clean_set with:
    input:
        **scoring_inputs(),
    output:
        table=f"{SCORES}/clean.csv",
        predictions=f"{SCORES}/clean.npy",
    log:
        "<results>/logs/robustness/score/clean.log",
    benchmark:
        "<results>/benchmarks/robustness/score/clean.tsv"
    params:
        scored_set="",
        batches=ADAPTATION_BATCHES,


rule robustness_summary:
    input:
        script=f"{SCRIPTS}/robustness_summary.py",
        modules=package_modules(
            "study",
            "norm_specs",
            "declared",
            "architecture",
            "findings",
            "findings_robustness",
            "idx",
            "plots",
            "robustness",
            "shift_sets",
            "stats",
            "tables",
            *SETTINGS_MODULES,
        ),
        scores=scored_sets("csv"),
        predictions=scored_sets("npy"),
        settings=run_files("settings.json"),
        labels=raw_data_files()["test_labels"],
        provenance=raw_data_files()["provenance"],
    output:
        **{
            name: (
                report(
                    path,
                    caption="../report/robustness.rst",
                    category="Robustness",
                    labels={"item": REPORTED_ROBUSTNESS[name]},
                )
                if name in REPORTED_ROBUSTNESS
                else path
            )
            for name, path in ROBUSTNESS_OUTPUTS.items()
        },
    log:
        "<results>/logs/robustness/summary.log",
    benchmark:
        "<results>/benchmarks/robustness/summary.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["robustness_summary"]),
        runtime=minutes(10),
    params:
        dataset=STUDY.data.dataset,
        plan=ANALYSIS_PLAN,
        endpoint=STUDY.robustness.endpoint,
        tables=lambda wildcards, output: " ".join(
            f"--{name.replace('_', '-')} {output[name]}" for name in ROBUSTNESS_TABLES
        ),
    shell:
        "python {input.script} --scores {input.scores} --predictions {input.predictions}"
        " --settings {input.settings} --labels {input.labels} --provenance {input.provenance}"
        " --dataset {params.dataset} --analysis-plan {params.plan:q} --endpoint {params.endpoint}"
        " {params.tables}"
        " --findings {output.findings} --figures {output.figure_png} {output.figure_svg} > {log} 2>&1"
