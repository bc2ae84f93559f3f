"""`make verify`: a finished study audited against its config, running nothing; what is missing, out of date or of
other settings is listed with the one command that rebuilds exactly that."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import snakemake_env
from test_run_files import kept, result_files

pytestmark = pytest.mark.workflow

SMOKE = ["--configfile", "tests/smoke.yaml"]


def verify(study: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """workflow/scripts/verify.py in `study`, in the environment of the tests' Snakemake runs."""
    return subprocess.run(
        [sys.executable, "workflow/scripts/verify.py", *args],
        cwd=study,
        env=snakemake_env(),
        capture_output=True,
        text=True,
    )


def test_a_finished_study_verifies_and_one_with_gaps_lists_them_with_the_rebuild_command(smoke_study: Path) -> None:
    done = verify(smoke_study, *SMOKE)
    assert done.returncode == 0, done.stdout + done.stderr
    # 10 runs of the study and 8 of its batch study.
    assert "are present and up to date, the models, job records and metrics of its 20 runs" in done.stdout
    assert "and its 11 main tables are what its run files give" in done.stdout  # control.csv among them
    before = result_files(smoke_study)
    run, other = smoke_study / "results/smoke/runs/gn/seed2", smoke_study / "results/smoke/runs/gn/seed1"
    table = smoke_study / "results/smoke/tables/comparisons.csv"  # read by the report alone
    with kept(table):
        table.write_text(table.read_text() + "\n")  # a table changed after the report was built from it
        done = verify(smoke_study, *SMOKE)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "verify: 2 problems\n  outdated: report/smoke/index.html  (rule report: updated input files)" in done.stdout
    assert "edited:   results/smoke/tables/comparisons.csv  (differs from what its run files give" in done.stdout
    # The edited table is remade from the runs before the report reads it again, never republished.
    assert (
        "to rebuild exactly that: snakemake --cores all --configfile tests/smoke.yaml"
        " --forcerun results/smoke/tables/comparisons.csv\n" in done.stdout
    )
    with kept(run / "metrics.json"), kept(run / "model.pt"):
        (run / "metrics.json").unlink()
        # Another seed's model in this run's place, made to look as old as the original: Snakemake sees nothing.
        stat = (run / "model.pt").stat()
        shutil.copyfile(other / "model.pt", run / "model.pt")
        os.utime(run / "model.pt", ns=(stat.st_atime_ns, stat.st_mtime_ns))
        done = verify(smoke_study, *SMOKE)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "verify: 2 problems\n  missing:  results/smoke/runs/gn/seed2/metrics.json  (rule evaluate)" in done.stdout
    assert "wrong run: results/smoke/runs/gn/seed2/model.pt was trained with other settings than" in done.stdout
    assert re.search(r"then \d+ files are made again after those \(rules .*aggregate.*\)", done.stdout)
    assert (
        "to rebuild exactly that: snakemake --cores all --configfile tests/smoke.yaml --forcerun"
        " results/smoke/runs/gn/seed2/model.pt" in done.stdout
    )
    bn = smoke_study / "results/smoke/runs/bn/seed2"
    with kept(bn / "precise_bn.json"):
        # Another seed's PreciseBN statistics in this run's place, as old as the original.
        stat = (bn / "precise_bn.json").stat()
        shutil.copyfile(smoke_study / "results/smoke/runs/bn/seed1/precise_bn.json", bn / "precise_bn.json")
        os.utime(bn / "precise_bn.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))
        done = verify(smoke_study, *SMOKE)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "wrong run: results/smoke/runs/bn/seed2/precise_bn.json is of bn seed 1, not bn seed 2" in done.stdout
    assert "--forcerun results/smoke/runs/bn/seed2/precise_bn.json" in done.stdout
    assert result_files(smoke_study) == before


@pytest.mark.parametrize("name", ["summary.csv", "runs.csv"])
def test_a_hand_edited_table_as_old_as_the_original_is_named(smoke_study: Path, name: str) -> None:
    before = result_files(smoke_study)
    table = smoke_study / "results/smoke/tables" / name
    with kept(table):
        stat = table.stat()
        lines = table.read_text().splitlines()
        cells = lines[1].split(",")
        column = lines[0].split(",").index("test_acc_mean" if name == "summary.csv" else "test_acc")
        cells[column] = "99.9"
        table.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
        os.utime(table, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # Snakemake sees nothing
        done = verify(smoke_study, *SMOKE)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"verify: 1 problem\n  edited:   results/smoke/tables/{name}  (differs from what its run files give, "
        "recomputed as aggregate.py does)" in done.stdout
    )
    assert f"--forcerun results/smoke/tables/{name}\n" in done.stdout
    assert result_files(smoke_study) == before


def test_verify_names_what_snakemake_refuses(smoke_study: Path) -> None:
    settings = smoke_study / "results/smoke/runs/bn/seed1/settings.json"
    with kept(settings):
        data = json.loads(settings.read_text())
        data["variant"]["norm"] = "instance"
        settings.write_text(json.dumps(data))
        done = verify(smoke_study, *SMOKE)
    assert done.returncode == 2
    assert done.stderr.startswith("error: snakemake refused the study as it stands")
    assert "results/smoke/runs/bn/seed1/settings.json was edited after it was written: variant.norm" in done.stderr
