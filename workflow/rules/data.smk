# Stage 1: the dataset, in torchvision's MNIST layout (torchvision.datasets.MNIST("results/data") reads it), shared
# by every study (its logs in results/data/ too).


rule download_mnist:
    input:
        script=f"{SCRIPTS}/download_mnist.py",
        modules=package_modules(
            "atomic", "dataset", "idx", "mnist_sources", *SETTINGS_MODULES
        ),
    output:
        **raw_paths("mnist"),
    log:
        "results/data/logs/download_mnist.log",
    benchmark:
        "results/data/benchmarks/download_mnist.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["download_mnist"]),
        # Every source may take its full timeout, for each of the four files on the mirrors.
        runtime=minutes(8 * config["data"]["timeout_s"] + 60),
    params:
        # An object, not builtin values: how MNIST is fetched never reruns this rule (see FetchSettings).
        fetch=fetch_settings(config),
    shell:
        "python {input.script} --data {output.train_images} {output.train_labels} {output.test_images}"
        " {output.test_labels} --provenance {output.provenance} {params.fetch} > {log} 2>&1"


rule make_synthetic:
    input:
        script=f"{SCRIPTS}/make_synthetic.py",
        modules=package_modules(
            "atomic", "dataset", "idx", "synthetic", *SETTINGS_MODULES
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
            * (
                config["data"]["synthetic"]["train_size"]
                + config["data"]["synthetic"]["test_size"]
            )
            / 7000
        ),
    params:
        synthetic=config["data"]["synthetic"],
    shell:
        "python {input.script} --data {output.train_images} {output.train_labels} {output.test_images}"
        " {output.test_labels} --provenance {output.provenance} --train-size {params.synthetic[train_size]}"
        " --test-size {params.synthetic[test_size]} --seed {params.synthetic[seed]} > {log} 2>&1"
