"""Which corrupted test sets a config names (config `robustness`), and how the report groups them: MNIST-C's kinds
and its published level of each, the intensity shifts, the declared endpoint's kinds, and the names of the
batch-at-a-time adaptation modes. Light to import: the
workflow reads it while it plans."""

from __future__ import annotations

# The level of each kind in MNIST-C's published set (its corruptions.py defaults; its single-form kinds as graded).
MNIST_C_SEVERITY = {
    "shot_noise": 5, "impulse_noise": 4, "glass_blur": 1, "motion_blur": 1, "shear": 2, "scale": 3, "rotate": 2,
    "translate": 3, "brightness": 5, "fog": 5, "spatter": 4, "stripe": 5, "dotted_line": 1, "zigzag": 1,
    "canny_edges": 5, "contrast": 4,
}  # fmt: skip
# What `robustness.severities` names to make each kind at its MNIST-C level, beside graded levels.
PUBLISHED = "published"
# Kinds that move a whole image's intensities (brightness adds a constant, contrast scales about the mean, fog adds a
# smooth field): a norm over each image undoes most of such a shift by construction, so they are reported apart.
INTENSITY_KINDS = frozenset({"brightness", "contrast", "fog"})
# The kinds MNIST-C published (Mu & Gilmer 2019); contrast is this study's addition.
MNIST_C_KINDS = frozenset(MNIST_C_SEVERITY) - {"contrast"}
# The declared robustness endpoint (config robustness.endpoint): the kinds whose sets its mean accuracy is over.
ENDPOINTS = {
    "mnist_c": MNIST_C_KINDS,
    "non_intensity": frozenset(MNIST_C_SEVERITY) - INTENSITY_KINDS,
    "all": frozenset(MNIST_C_SEVERITY),
}
ENDPOINT_NAMES = {"mnist_c": "MNIST-C's kinds", "non_intensity": "the kinds other than intensity shifts",
                  "all": "every kind"}  # fmt: skip


def batch_mode(images: int) -> str:
    """The scoring mode of adaptation a batch of `images` test images at a time (robustness.adaptation_batches)."""
    return f"adapted_{images}"


def mode_batch(mode: str) -> int | None:
    """The batch size of a batch_mode; None for any other mode (the whole set's "adapted" included)."""
    head, _, images = mode.rpartition("_")
    return int(images) if head == "adapted" and images.isdigit() else None


def configured_sets(corruptions: list[str], severities: list[int | str]) -> list[tuple[str, int]]:
    """(kind, severity) of every set a config names: each kind at each graded severity listed and, where `published`
    is listed, at MNIST-C's level for it; kinds in config order, no set twice."""
    sets = []
    for kind in corruptions:
        levels = [MNIST_C_SEVERITY[kind] if level == PUBLISHED else int(level) for level in severities]
        sets += [(kind, level) for level in dict.fromkeys(levels)]
    return sets


def endpoint_kinds(endpoint: str, corruptions: list[str]) -> list[str]:
    """The configured kinds the declared endpoint averages over, in config order."""
    return [kind for kind in corruptions if kind in ENDPOINTS[endpoint]]


def endpoint_problem(endpoint: str, corruptions: list[str]) -> str | None:
    """Why a config's robustness endpoint is over none of its corruption kinds (None when it is over some)."""
    if endpoint_kinds(endpoint, corruptions):
        return None
    return (
        f"'robustness.endpoint': {endpoint} is over {', '.join(sorted(ENDPOINTS[endpoint]))}, none of them in "
        f"robustness.corruptions ({', '.join(corruptions)}): it would average no set"
    )
