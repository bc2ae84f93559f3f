"""The workflow as Snakemake sees it: dry runs, lint, and the data stage on the smoke config."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, snakemake
from snakemake.settings.types import MaxJobsPerTimespan

from normstudy.config.recipes import is_packed, merge, shared_references, variant_batch_sizes
from normstudy.config.sources import load_config
from normstudy.config.study import Study
from normstudy.data.datasets import RAW_FILES
from normstudy.data.idx import read_verified
from normstudy.layout import module_files
from normstudy.model.norm_specs import NORMS

pytestmark = pytest.mark.workflow


def test_dry_run_of_the_default_study_succeeds(workflow_copy: Path) -> None:
    done = snakemake(workflow_copy, "-n", "--cores", "2")
    assert "fetch_dataset" in done.stdout and "results/data/MNIST/raw/provenance.json" in done.stdout
    assert list((workflow_copy / "results").iterdir()) == []


def test_lint_reports_nothing(workflow_copy: Path) -> None:
    done = snakemake(workflow_copy, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in done.stdout + done.stderr


def test_smoke_config_builds_the_synthetic_data(workflow_copy: Path) -> None:
    targets = [f"results/data/synthetic/raw/{name}" for name in RAW_FILES]
    snakemake(workflow_copy, *targets, "--cores", "1", "--configfile", "tests/smoke.yaml")
    raw = workflow_copy / "results" / "data" / "synthetic" / "raw"
    arrays, _ = read_verified([raw / name for name in RAW_FILES], raw / "provenance.json", "synthetic")
    assert arrays["train-images-idx3-ubyte"].shape == (1000, 28, 28)
    assert arrays["t10k-images-idx3-ubyte"].shape == (300, 28, 28)
    assert json.loads((raw / "provenance.json").read_text())["source"] == "synthetic"
    assert (workflow_copy / "results" / "data" / "logs" / "make_synthetic.log").exists()
    # A second run finds nothing to do.
    again = snakemake(workflow_copy, *targets, "-n", "--configfile", "tests/smoke.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.parametrize("profile", ["default", "slurm"])
def test_a_profile_lets_snakemake_exit_soon_after_its_last_job(profile: str) -> None:
    # Snakemake's process ends only once its last rate-limit timer has fired, a timespan after the last job.
    text = (Path(__file__).resolve().parents[1] / "profiles" / profile / "profile.yaml").read_text()
    limit = MaxJobsPerTimespan.parse_choice(yaml.safe_load(text)["max-jobs-per-timespan"])
    assert limit.timespan <= 10, limit.timespan
    assert limit.max_jobs >= 100, limit.max_jobs


def planned_jobs(study: Path, *args: str) -> list[tuple[str, str]]:
    """The rule and the printed block of every job a dry run plans (the `all` target left out)."""
    done = snakemake(study, "-n", *args)
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", done.stdout + done.stderr)
    rules = [(re.match(r"(?:local)?rule (\w+):", block), block) for block in blocks]
    return [(rule.group(1), block) for rule, block in rules if rule and rule.group(1) != "all"]


def planned_resources(study: Path, *args: str) -> list[str]:
    """The resources line of every job a dry run of the SLURM profile plans (the `all` target left out)."""
    jobs = planned_jobs(study, "--workflow-profile", "profiles/slurm", *args)
    return [re.search(r"resources: (.*)", block).group(1) for _, block in jobs]


DEFAULT = load_config(Path(__file__).resolve().parents[1] / "config.yaml")


def default_runs() -> int:
    """Training runs of the default study: every variant of config.yaml once per seed."""
    return len(DEFAULT["variants"]) * len(DEFAULT["seeds"])


def batch_study_jobs(config: dict = DEFAULT) -> tuple[int, int]:
    """A batch study's runs (the default study's unless told), and its training jobs: one per packed variant and size,
    else per seed, and none for a reference run that is the main study's."""
    study, typed = config["batch_study"], Study.from_config(config)
    seeds = len(study["seeds"])
    sizes = [(variant, size) for variant in study["variants"] for size in variant_batch_sizes(typed, variant)]
    shared = set(shared_references(typed))
    trained = [size for variant, size in sizes if not (variant in shared and size == config["train"]["batch_size"])]
    packed = sum(is_packed(typed, size) for size in trained)
    return len(sizes) * seeds, packed + (len(trained) - packed) * seeds


def test_every_job_of_the_default_study_declares_memory_and_runtime(workflow_copy: Path) -> None:
    lines = planned_resources(workflow_copy)
    runs = default_runs()
    batch_runs, batch_jobs = batch_study_jobs()
    # bn at 6 statistics batch sizes, gn and ln at the reference alone, x 3 seeds; the SGD batch of 128 packs nothing,
    # and the references (bn, gn and ln at 128) are the main study's runs: only bn's 15 ghost runs train
    assert (batch_runs, batch_jobs) == (24, 15)
    # download, per run (settings, train, evaluate, grid), two tables, 3 figures, study.json, report; the batch
    # study's settings and evaluation per run, training jobs, its table and its figure; the robustness study's 16
    # sets (one severity), their manifest, PreciseBN for bn and bn_l1's 6 runs, a scoring per set and the clean
    # images, its summary
    robustness = 16 + 1 + 6 + 17 + 1
    # and snakemake --report's landing-page metadata
    assert len(lines) == 1 + 4 * runs + 2 + 3 + 2 + 2 * batch_runs + batch_jobs + 2 + robustness + 1
    for line in lines:
        assert re.search(r"\bmem_mb=\d+", line) and re.search(r"\bruntime=\d+", line), line
    train = [line for line in lines if "gpu=" in line]
    assert len(train) == runs + batch_jobs and all("gpu=0" in line for line in train)


def test_the_zoo_study_plans_every_registered_norm_through_every_stage(workflow_copy: Path) -> None:
    (workflow_copy / "studies").mkdir()
    (workflow_copy / "studies" / "zoo.yaml").write_text((REPO / "studies" / "zoo.yaml").read_text())
    zoo = merge(DEFAULT, yaml.safe_load((REPO / "studies" / "zoo.yaml").read_text()))
    assert {variant["norm"] for variant in zoo["variants"].values()} == set(NORMS)  # every norm of the registry
    jobs = planned_jobs(workflow_copy, "--configfile", "studies/zoo.yaml")

    def variants_of(rule: str) -> set[str]:
        return {re.search(r"wildcards: .*?variant=(\w+)", block).group(1) for name, block in jobs if name == rule}

    every = set(zoo["variants"])
    for rule in ("train", "evaluate", "misclassified"):
        assert variants_of(rule) == every, rule
    # PreciseBN and adaptation: the norms that take batch statistics; the batch study trains those at every size.
    batch_statistics = {name for name, variant in zoo["variants"].items() if NORMS[variant["norm"]].batch_statistics}
    assert batch_statistics == {"bn", "bn_l1", "brn"}
    assert variants_of("precise_statistics") == batch_statistics
    assert variants_of("batch_train") == {"bn", "brn"}
    assert variants_of("batch_evaluate") == {"bn", "brn", "gn", "ln"}
    scored = [block for name, block in jobs if name == "robustness_summary"]
    assert len(scored) == 1 and all(f"runs/{name}/seed3/settings.json" in scored[0] for name in every)
    report = [block for name, block in jobs if name == "report"]
    assert len(report) == 1 and all(f"runs/{name}/seed1/metrics.json" in report[0] for name in every)


def test_settings_jobs_start_before_any_training_job_they_could_wait_behind(workflow_copy: Path) -> None:
    priorities: dict[str, set[int]] = {}
    for rule, block in planned_jobs(workflow_copy):
        found = re.search(r"priority: (\d+)", block)
        priorities.setdefault(rule, set()).add(int(found.group(1)) if found else 0)
    # The default (ghost) batch study packs nothing: its training is batch_train alone.
    batch = priorities["batch_train"] | priorities.get("batch_train_packed", set())
    # A settings job that waits behind a training job holds back the training that needs it.
    assert min(priorities["run_settings"]) > max(priorities["train"] | batch), priorities
    assert min(priorities["batch_settings"]) > max(batch)
    # The main study's training (the longest jobs) starts before the batch study's.
    assert min(priorities["train"]) > max(batch)


def test_training_asks_for_a_gpu_only_with_cuda(workflow_copy: Path) -> None:
    (workflow_copy / "cuda.yaml").write_text("study: gpu\ntrain:\n  device: cuda\n")
    train = [line for line in planned_resources(workflow_copy, "--configfile", "cuda.yaml") if "gpu=" in line]
    on_gpu = merge(DEFAULT, {"study": "gpu", "train": {"device": "cuda"}})
    # On CUDA the batch study packs its seeds at every size: bn's 5 ghost sizes are 5 jobs, not 15.
    assert batch_study_jobs(on_gpu)[1] == 5
    assert len(train) == default_runs() + 5 and all("gpu=1" in line for line in train)
    # CUDA's host memory on top of the CPU job's.
    assert all(int(re.search(r"mem_mb=(\d+)", line).group(1)) >= 3500 for line in train)


SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
MODULE_FILES = module_files(SCRIPTS / "normstudy")


def package_imports(path: Path, seen: set[str] | None = None) -> set[str]:
    """Every normstudy module a script or module imports, directly or through the package's other modules."""
    seen = set() if seen is None else seen
    tree = ast.parse(path.read_text())
    # Imports under `if TYPE_CHECKING:` serve annotations only and never run.
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("normstudy"):
            # `from normstudy.data import tensors` imports the module tensors; `from normstudy.data.tensors import x`
            # the module itself.
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("normstudy.")]
        for name in names:
            module = name.rsplit(".", 1)[-1]
            if module in MODULE_FILES and module not in seen:
                seen.add(module)
                package_imports(MODULE_FILES[module], seen)
    return seen


def test_every_job_lists_the_package_modules_its_script_imports(workflow_copy: Path) -> None:
    # Snakemake 9 does not see a script's imports: a module missing from the inputs is an edit that reruns nothing.
    checked = set()
    for rule, block in planned_jobs(workflow_copy, "all", "tune", "publish", "corrupted_sets"):
        if rule in checked:  # every job of a rule lists the same script and modules
            continue
        inputs = re.search(r"input: (.*)", block).group(1).split(", ")
        scripts = [path for path in inputs if re.fullmatch(r"workflow/scripts/\w+\.py", path)]
        if not scripts:  # a target rule (tune) runs nothing
            continue
        (script,) = scripts
        declared = {Path(p).stem for p in inputs if p.startswith("workflow/scripts/normstudy/")}
        missing = package_imports(workflow_copy / script) - declared
        assert not missing, f"rule {rule} ({script}) does not list {sorted(missing)}"
        checked.add(rule)
    assert {"train", "tuning_train", "batch_train", "evaluate", "report", "publish", "tuning_summary"} <= checked
    assert {"corrupt_test_set", "corrupted_sets_manifest"} <= checked


def report_items(text: str) -> list[str]:
    """The text of each report(...) call in a rule file, to its closing parenthesis."""
    items = []
    for start in (match.end() for match in re.finditer(r"\breport\(", text)):
        depth, end = 1, start
        while depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        items.append(text[start : end - 1])
    return items


def test_every_report_item_is_labelled() -> None:
    """`snakemake --report` shows toggles by label (variant and seed for the per-run grids): every item has one."""
    items = [item for path in (REPO / "workflow" / "rules").rglob("*.smk") for item in report_items(path.read_text())]
    assert len(items) >= 13
    assert [item for item in items if "labels=" not in item] == []
    grids = [item for item in items if "misclassified.png" in item]
    assert len(grids) == 1 and '"variant": "{variant}"' in grids[0] and '"seed": "{seed}"' in grids[0]
