# Stage 1: the dataset, in torchvision's layout (torchvision.datasets.MNIST("results/data") reads MNIST's), shared by
# every study (its logs in results/data/ too). A fetched dataset of the registry comes through one rule over its
# folder; a generated one has its generator's rule.


include: "inputs/data.smk"


# Its code is ancient: files verified against their canonical checksums are what they are, however they came, so an
# edit to the fetch code (or to a dataset module beside it) never deletes them to fetch them again. A spec whose
# checksums change is caught where the runs read the files (idx.read_verified).
rule fetch_dataset:
    input:
        script=ancient(f"{SCRIPTS}/fetch_dataset.py"),
        modules=ancient(
            package_modules("atomic", "datasets", "idx", "fetch", *SETTINGS_MODULES)
        ),
    output:
        **raw_paths_of_folder("{folder}"),
    log:
        "results/data/logs/fetch_dataset/{folder}.log",
    benchmark:
        "results/data/benchmarks/fetch_dataset/{folder}.tsv"
    wildcard_constraints:
        folder=FETCHED_FOLDERS,
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["fetch_dataset"]),
        # Every source may take its full timeout, for each of the four files on the mirrors.
        runtime=minutes(8 * fetch_settings(STUDY).timeout_s + 60),
    params:
        dataset=lambda wildcards: spec_of_folder(wildcards.folder).name,
        # An object, not builtin values: how the data is fetched never reruns this rule (see FetchSettings).
        fetch=fetch_settings(STUDY),
    shell:
        "python {input.script} --dataset {params.dataset} --data {output.train_images} {output.train_labels} {output.test_images}"
        " {output.test_labels} --provenance {output.provenance} {params.fetch} > {log} 2>&1"


rule make_synthetic:
    input:
        script=f"{SCRIPTS}/make_synthetic.py",
        modules=package_modules(
            "atomic",
            "datasets",
            "idx",
            "stroke_digits",
            "synthetic",
            *SETTINGS_MODULES,
        ),
    output:
        **raw_paths("synthetic"),
    log:
        "results/data/logs/make_synthetic.log",
    benchmark:
        "results/data/benchmarks/make_synthetic.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=synthetic_mem_mb,
        runtime=lambda wildcards: minutes(
            10
            * (STUDY.data.synthetic.train_size + STUDY.data.synthetic.test_size)
            / 7000
        ),
    params:
        synthetic=dataclasses.asdict(STUDY.data.synthetic),
    shell:
        "python {input.script} --data {output.train_images} {output.train_labels} {output.test_images}"
        " {output.test_labels} --provenance {output.provenance} --train-size {params.synthetic[train_size]}"
        " --test-size {params.synthetic[test_size]} --seed {params.synthetic[seed]} > {log} 2>&1"
