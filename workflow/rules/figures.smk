# Stage 5: figures, one rule per family; each figure is written as PNG (for the report) and SVG.


rule plot_curves:
    input:
        script=f"{SCRIPTS}/plot_curves.py",
        modules=package_modules("atomic", "plots"),
        epochs="<results>/tables/epochs.csv",
    output:
        test_loss=report(
            "<results>/figures/test_loss.png",
            caption="../report/test_loss.rst",
            category="Curves",
            labels={"figure": "test loss"},
        ),
        test_accuracy=report(
            "<results>/figures/test_accuracy.png",
            caption="../report/test_accuracy.rst",
            category="Curves",
            labels={"figure": "test accuracy"},
        ),
        train_vs_test=report(
            "<results>/figures/train_vs_test.png",
            caption="../report/train_vs_test.rst",
            category="Curves",
            labels={"figure": "train vs test"},
        ),
        test_loss_svg="<results>/figures/test_loss.svg",
        test_accuracy_svg="<results>/figures/test_accuracy.svg",
        train_vs_test_svg="<results>/figures/train_vs_test.svg",
    log:
        "<results>/logs/plot_curves.log",
    benchmark:
        "<results>/benchmarks/plot_curves.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["plot"]),
        runtime=minutes(20),
    params:
        variants=enabled_variants(),
    shell:
        "python {input.script} --table {input.epochs}"
        " --test-loss {output.test_loss} {output.test_loss_svg}"
        " --test-accuracy {output.test_accuracy} {output.test_accuracy_svg}"
        " --train-vs-test {output.train_vs_test} {output.train_vs_test_svg}"
        " --variants {params.variants} > {log} 2>&1"


rule plot_final:
    input:
        script=f"{SCRIPTS}/plot_final.py",
        modules=package_modules("atomic", "plots"),
        runs="<results>/tables/runs.csv",
    output:
        png=report(
            "<results>/figures/final_accuracy.png",
            caption="../report/final_accuracy.rst",
            category="Accuracy",
            labels={"figure": "final accuracy"},
        ),
        svg="<results>/figures/final_accuracy.svg",
    log:
        "<results>/logs/plot_final.log",
    benchmark:
        "<results>/benchmarks/plot_final.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["plot"]),
        runtime=minutes(20),
    params:
        variants=enabled_variants(),
    shell:
        "python {input.script} --table {input.runs} --final-accuracy {output.png} {output.svg}"
        " --variants {params.variants} > {log} 2>&1"


rule plot_confusion:
    input:
        script=f"{SCRIPTS}/plot_confusion.py",
        modules=package_modules("atomic", "datasets", "plots", STUDY.data.dataset),
        confusion="<results>/tables/confusion.csv",
    output:
        png=report(
            "<results>/figures/confusion.png",
            caption="../report/confusion.rst",
            category="Accuracy",
            labels={"figure": "confusion matrices"},
        ),
        svg="<results>/figures/confusion.svg",
    log:
        "<results>/logs/plot_confusion.log",
    benchmark:
        "<results>/benchmarks/plot_confusion.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=mem_mb(PEAK_RSS_MB["plot"]),
        runtime=minutes(20),
    params:
        variants=enabled_variants(),
        dataset=STUDY.data.dataset,  # its class names label the rows and columns
    shell:
        "python {input.script} --table {input.confusion} --confusion {output.png} {output.svg}"
        " --variants {params.variants} --dataset {params.dataset} > {log} 2>&1"
