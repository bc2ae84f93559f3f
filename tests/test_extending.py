"""docs/extending.md's recipes, followed on a scratch copy: a norm with batch statistics and a parameter of its own,
and an IDX dataset with its own class names, each added by the page's code blocks, then a one-epoch study with both,
planned and run to the report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import make_synthetic
import pandas as pd
import pytest
from conftest import REPO, snakemake

from normstudy.data.datasets import RAW_FILES
from normstudy.data.idx import md5_hex

pytestmark = pytest.mark.workflow

BLOCK = re.compile(r"<!-- extending: (append (?P<file>\S+)|study) -->\n```\w+\n(?P<code>.*?)```", re.S)
TRAIN, TEST = 600, 200
# One epoch, one seed: enough to run every stage the new norm and dataset pass through.
QUICK = "seeds: [1]\ntrain: {epochs: 1}\n"


def recipe_blocks() -> list[tuple[str | None, str]]:
    """(file to append to, or None for the study's config; code) of every marked block of docs/extending.md."""
    text = (REPO / "docs" / "extending.md").read_text()
    return [(match["file"], match["code"]) for match in BLOCK.finditer(text)]


def toy_files(folder: Path) -> dict[str, str]:
    """The four IDX files of the toy dataset (stroke digits in MNIST's format), written to `folder`; their MD5s."""
    make_synthetic.main([folder / name for name in RAW_FILES], folder / "provenance.json", TRAIN, TEST, seed=7)
    (folder / "provenance.json").unlink()  # a download has none: the fetch writes its own
    return {name: md5_hex((folder / name).read_bytes()) for name in RAW_FILES}


def test_the_documented_norm_and_dataset_recipes_plan_and_run_a_study(workflow_copy: Path) -> None:
    files = workflow_copy / "toy_files"
    files.mkdir()
    md5 = toy_files(files)
    blocks = recipe_blocks()
    appended = sorted(name for name, _ in blocks if name)
    assert appended == [
        "workflow/scripts/normstudy/data/sets/toy_digits.py",
        "workflow/scripts/normstudy/model/norm_specs.py",
        "workflow/scripts/normstudy/model/norms.py",
    ]
    for name, code in blocks:
        if name is None:
            (workflow_copy / "extended.yaml").write_text(code.replace("<folder holding the four files>", str(files)))
            continue
        code = code.replace("<train images>", str(TRAIN)).replace("<test images>", str(TEST))
        code = code.replace('{name: "<MD5 of that file>" for name in RAW_FILES}', repr(md5))
        with open(workflow_copy / name, "a", encoding="utf-8") as handle:
            handle.write("\n\n" + code)
    (workflow_copy / "quick.yaml").write_text(QUICK)
    args = ("--configfile", "tests/smoke.yaml", "extended.yaml", "quick.yaml")

    done = snakemake(workflow_copy, "--cores", "2", *args)
    assert "rule fetch_dataset:" in done.stdout + done.stderr

    results = workflow_copy / "results" / "extended"
    provenance = json.loads((workflow_copy / "results/data/ToyDigits/raw/provenance.json").read_text())
    assert provenance["dataset"] == "toy_digits" and provenance["source"] == "local"
    assert {name: entry["md5"] for name, entry in provenance["files"].items()} == md5
    run = results / "runs" / "bn_m05" / "seed1"
    settings = json.loads((run / "settings.json").read_text())
    assert settings["variant"]["norm"] == "momentum_batch" and settings["variant"]["params"] == {"momentum": 0.05}
    assert settings["data"]["dataset"] == "toy_digits"
    # Batch statistics, said by the spec alone: PreciseBN scores it, the batch study runs it with ghost batches,
    # and test-time adaptation applies to it.
    assert (run / "precise_bn.json").is_file() and not (results / "runs/gn/seed1").exists()
    ghost = json.loads((results / "batch_study/runs/bn_m05/batch4/seed1/settings.json").read_text())
    assert ghost["variant"]["ghost"] == 4 and ghost["variant"]["params"] == {"momentum": 0.05}
    adaptation = pd.read_csv(results / "tables" / "robustness_adaptation.csv")
    assert "bn_m05" in set(adaptation["variant"])
    summary = pd.read_csv(results / "tables" / "model_summary.csv")
    assert summary.groupby("variant")["params"].sum().to_dict() == {"bn": 7652, "bn_m05": 7652}
    page = (workflow_copy / "report" / "extended" / "index.html").read_text()
    assert "toy digits (a dataset added by docs/extending.md)" in page
    assert "BatchNorm2d(C, momentum=0.05)" in page
