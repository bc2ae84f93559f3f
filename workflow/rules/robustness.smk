# Stage: corrupted copies of the test images (config `robustness`), one IDX file per corruption and severity, each
# checked against its recorded SHA-256 when the manifest is written. `snakemake corrupted_sets` builds them.


include: "inputs/robustness.smk"


rule corrupt_test_set:
    input:
        script=f"{SCRIPTS}/corrupt_test_set.py",
        modules=package_modules("corruptions", "idx", *SETTINGS_MODULES),
        data=TEST_SPLIT,
        provenance=raw_data_files()["provenance"],
    output:
        images=f"{CORRUPTED_SET}/t10k-images-idx3-ubyte",
        record=f"{CORRUPTED_SET}/set.json",
    log:
        "results/logs/robustness/corrupt/{corruption}/severity{severity}.log",
    benchmark:
        "results/benchmarks/robustness/corrupt/{corruption}/severity{severity}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["corrupt"]),
        runtime=minutes(5),
    params:
        dataset=config["data"]["dataset"],
        seed=config["robustness"]["seed"],
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
        "results/logs/robustness/manifest.log",
    benchmark:
        "results/benchmarks/robustness/manifest.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["plot"]),
        runtime=minutes(5),
    params:
        dataset=config["data"]["dataset"],
    shell:
        "python {input.script} --data {input.data} --provenance {input.provenance} --dataset {params.dataset}"
        " --records {input.records} --images {input.images} --manifest {output.manifest}"
        " --figures {output.png} {output.svg} > {log} 2>&1"


rule corrupted_sets:
    input:
        CORRUPTED_SETS["manifest"],
        CORRUPTED_SETS["figures"],
