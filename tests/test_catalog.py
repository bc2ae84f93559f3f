"""What a workflow catalog and a citation read: CITATION.cff against the Citation File Format's own schema,
.snakemake-workflow-catalog.yml's claims against what the tests run, the GitHub Actions workflow against .ci/run."""

from __future__ import annotations

import json
import re
import tomllib

import yaml
from conftest import REPO
from jsonschema import Draft7Validator

# The Citation File Format 1.2.0 schema (CC-BY-4.0, github.com/citation-file-format), as cffconvert 2.0.0 ships it.
CFF_SCHEMA = REPO / "tests" / "resources" / "citation-file-format-1.2.0.schema.json"


def test_citation_file_is_valid_cff_and_names_this_release() -> None:
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    schema = json.loads(CFF_SCHEMA.read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(citation), key=str)
    assert errors == [], [error.message for error in errors]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert citation["version"] == project["version"] and citation["license"] == project["license"]["text"]
    # The schema refuses what a citation must not hold (checked, so that the validation above can fail).
    assert list(Draft7Validator(schema).iter_errors({**citation, "cff-version": "1.2.0", "authors": []}))


def test_the_catalog_claims_only_what_the_tests_run() -> None:
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    tests = "\n".join(path.read_text() for path in (REPO / "tests").glob("test_*.py") if path.name != "test_catalog.py")
    ran = {
        "conda": bool(re.search(r"--use-conda|--sdm\W+conda|software-deployment-method\W+conda", tests)),
        "singularity": bool(re.search(r"--use-singularity|apptainer", tests)),
        "report": "--report" in tests,
    }
    deployment = usage["software-stack-deployment"]
    assert deployment["conda"] == ran["conda"] and deployment["singularity"] == ran["singularity"]
    assert not deployment["singularity+conda"] and usage["report"] == ran["report"]
    assert usage["mandatory-flags"]["flags"].split()[1] in {
        str(p.relative_to(REPO)) for p in (REPO / "profiles").iterdir()
    }


def test_the_github_workflow_runs_what_ci_runs_and_publishes_the_site() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    steps = [step.get("run", "") + step.get("uses", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "bash .ci/run" in steps and any("--report" in step for step in steps)
    pages = workflow["jobs"]["pages"]["steps"]
    upload = next(step for step in pages if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "report/default/site" and any(
        "make publish" in step.get("run", "") for step in pages
    )
    # .ci/run is what this workflow mirrors: make venv, lint and test.
    assert re.findall(r"^make (\w+)", (REPO / ".ci" / "run").read_text(), re.MULTILINE) == ["venv", "lint", "test"]
