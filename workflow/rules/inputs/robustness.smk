# The corrupted test sets' paths and inputs (their rules: robustness.smk).

CORRUPTED_SET = in_study("<results>/robustness/sets/{corruption}/severity{severity}")
CORRUPTED_SETS = {
    "manifest": in_study("<results>/robustness/manifest.json"),
    "figures": expand(
        in_study("<results>/figures/corruptions.{ext}"), ext=("png", "svg")
    ),
}


wildcard_constraints:
    corruption="|".join(STUDY.robustness.corruptions),
    severity=r"[0-5]",


def robustness_enabled():
    """Whether the study scores its runs on corrupted test sets (robustness.corruptions lists a kind)."""
    return bool(STUDY.robustness.corruptions)


# Every configured set, (corruption, severity), in config order.
SHIFTED_SETS = configured_sets(
    list(STUDY.robustness.corruptions), list(STUDY.robustness.severities)
)


def each_set(pattern):
    """`pattern` filled in for every configured set."""
    return [
        pattern.format(corruption=corruption, severity=severity)
        for corruption, severity in SHIFTED_SETS
    ]


def corrupted_files(name):
    """One file of every configured set: `images` or `record`."""
    leaf = {"images": "t10k-images-idx3-ubyte", "record": "set.json"}[name]
    return each_set(f"{CORRUPTED_SET}/{leaf}")


# The clean test images and labels the sets are made from (refused when one is missing though recorded).
TEST_SPLIT = data_files(("test_images", "test_labels"))


# Every study run's scores on one set: the clean test images, or a corrupted set.
SCORES = in_study("<results>/robustness/scores")
ROBUSTNESS_TABLES = {
    name: in_study(f"<results>/tables/robustness_{name}.csv")
    for name in (
        "cells",
        "errors",
        "family",
        "groups",
        "per_set",
        "adaptation",
        "contrast",
    )
}
ROBUSTNESS_OUTPUTS = {
    **ROBUSTNESS_TABLES,
    "findings": in_study("<results>/tables/robustness.json"),
    **{
        f"figure_{ext}": in_study(f"<results>/figures/robustness.{ext}")
        for ext in ("png", "svg")
    },
}


def robustness_report_inputs():
    """What the report reads of the robustness study (nothing when it is left out)."""
    if not robustness_enabled():
        return {}
    return {
        **{
            f"robustness_{name}": ROBUSTNESS_TABLES[name]
            for name in (
                "cells",
                "errors",
                "family",
                "groups",
                "adaptation",
                "contrast",
            )
        },
        "robustness_findings": ROBUSTNESS_OUTPUTS["findings"],
        "robustness_heatmap": ROBUSTNESS_OUTPUTS["figure_png"],
        "robustness_gallery": CORRUPTED_SETS["figures"][0],
    }


def robustness_report_args(wildcards, input):
    """The report script's robustness arguments (none when the study is left out)."""
    return " ".join(
        f"--{role.replace('_', '-')} {getattr(input, role)}"
        for role in robustness_report_inputs()
    )


# The test batch sizes models with BatchNorm are also adapted at, one at a time (each its own scoring mode).
ADAPTATION_BATCHES = " ".join(map(str, STUDY.robustness.adaptation_batches))


# glibc's malloc keeps freed blocks instead of unmapping each large one (mallopt(3)): setting BatchNorm statistics
# over 10,000 images allocates and frees hundreds of MB per layer, and the page faults of fresh mappings took a
# quarter of a scoring job's time (measured in docs/design.md's robustness section; outputs byte-identical).
KEEP_FREED_MEMORY = (
    "MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296"
)


# The robustness outputs `snakemake --report` shows, by their label there.
REPORTED_ROBUSTNESS = {
    "cells": "accuracy per set",
    "errors": "mean corruption error",
    "family": "declared comparisons",
    "groups": "intensity shifts and other kinds apart",
    "figure_png": "heatmap",
}


def batch_norm_runs(name):
    """A per-run file of every enabled variant with BatchNorm (the runs PreciseBN applies to), for every seed."""
    batch = [v for v in enabled_variants() if STUDY.variants[v].spec.batch_statistics]
    return expand(f"{RUN}/{name}", variant=batch, seed=STUDY.seeds)


def scored_sets(extension):
    """Every set's scores file (`csv` or `npy`), the clean images first."""
    return [
        f"{SCORES}/clean.{extension}",
        *each_set(f"{SCORES}/{{corruption}}/severity{{severity}}.{extension}"),
    ]


def scoring_inputs():
    """What scoring every run on one set reads, besides the set itself."""
    return {
        "script": f"{SCRIPTS}/evaluate_corrupted.py",
        "modules": [
            *RUN_CODE,
            *package_modules("adaptation", "runs", "shift_sets", "tables"),
        ],
        "settings": run_files("settings.json"),
        "models": run_files("model.pt"),
        "precise": batch_norm_runs("precise_bn.json"),
        "data": data_files(),
        "provenance": raw_data_files()["provenance"],
    }
