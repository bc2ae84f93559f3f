# Stage 1: the dataset, in torchvision's MNIST layout (torchvision.datasets.MNIST("results/data") reads it).


rule download_mnist:
    input:
        script=f"{SCRIPTS}/download_mnist.py",
        modules=package_modules("atomic", "idx", "mnist_sources"),
    output:
        train_images="results/data/MNIST/raw/train-images-idx3-ubyte",
        train_labels="results/data/MNIST/raw/train-labels-idx1-ubyte",
        test_images="results/data/MNIST/raw/t10k-images-idx3-ubyte",
        test_labels="results/data/MNIST/raw/t10k-labels-idx1-ubyte",
        provenance="results/data/MNIST/raw/provenance.json",
    log:
        "results/logs/download_mnist.log",
    conda:
        ENV
    params:
        out_dir=subpath(output.provenance, parent=True),
        sources=config["data"]["sources"],
        mirrors=config["data"]["mirrors"],
        local_dir=config["data"]["local_dir"] or "",
        timeout_s=config["data"]["timeout_s"],
    shell:
        "python {input.script} --out-dir {params.out_dir} --sources {params.sources}"
        " --mirrors {params.mirrors:q} --local-dir={params.local_dir:q} --timeout {params.timeout_s}"
        " > {log} 2>&1"


rule make_synthetic:
    input:
        script=f"{SCRIPTS}/make_synthetic.py",
        modules=package_modules("atomic", "idx", "synthetic"),
    output:
        train_images="results/data/synthetic/raw/train-images-idx3-ubyte",
        train_labels="results/data/synthetic/raw/train-labels-idx1-ubyte",
        test_images="results/data/synthetic/raw/t10k-images-idx3-ubyte",
        test_labels="results/data/synthetic/raw/t10k-labels-idx1-ubyte",
        provenance="results/data/synthetic/raw/provenance.json",
    log:
        "results/logs/make_synthetic.log",
    conda:
        ENV
    params:
        out_dir=subpath(output.provenance, parent=True),
        synthetic=config["data"]["synthetic"],
    shell:
        "python {input.script} --out-dir {params.out_dir} --train-size {params.synthetic[train_size]}"
        " --test-size {params.synthetic[test_size]} --seed {params.synthetic[seed]} > {log} 2>&1"
