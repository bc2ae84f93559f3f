# The corrupted test sets' paths and inputs (their rules: robustness.smk).

CORRUPTED_SET = "results/robustness/sets/{corruption}/severity{severity}"
CORRUPTED_SETS = {
    "manifest": "results/robustness/manifest.json",
    "figures": expand("results/figures/corruptions.{ext}", ext=("png", "svg")),
}


wildcard_constraints:
    corruption="|".join(config["robustness"]["corruptions"]),
    severity=r"[0-5]",


def corrupted_files(name):
    """One file of every configured corruption and severity: `images` or `record`."""
    leaf = {"images": "t10k-images-idx3-ubyte", "record": "set.json"}[name]
    return expand(
        f"{CORRUPTED_SET}/{leaf}",
        corruption=config["robustness"]["corruptions"],
        severity=config["robustness"]["severities"],
    )


# The clean test images and labels the sets are made from (refused when one is missing though recorded).
TEST_SPLIT = data_files(("test_images", "test_labels"))
