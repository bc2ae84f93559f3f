"""A study folder belongs to the config that made it: another config under its name, or a file that changes the
default study without naming one, is refused before any job; a full disk is named as such."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, copy_workflow, snakemake, snakemake_env
from helpers import study_config
from test_run_files import result_files

sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from normstudy.atomic import no_space_message
from normstudy.config.studies import concurrent_run_note, identity_problem, record_identity, study_identity
from normstudy.values import config_digest

pytestmark = pytest.mark.workflow

SMOKE = ("--configfile", "tests/smoke.yaml")


def test_a_run_records_the_config_that_made_its_folder(smoke_study: Path) -> None:
    record = json.loads((smoke_study / "results" / "smoke" / "study_config.json").read_text())
    assert record["sources"] == ["config.yaml", "tests/smoke.yaml"]
    assert record["identity"]["seeds"] == [1, 2] and record["identity"]["train.epochs"] == 2
    # How the data is fetched and the folder's own name are not what the study is.
    assert "data.mirrors" not in record["identity"] and "study" not in record["identity"]


@pytest.mark.parametrize(
    ("override", "differs"),
    [
        ("study: smoke\nseeds: [1]\n", "seeds: [1, 2] -> [1]"),
        ("study: smoke\nvariants: [bn, gn]\n", "variants.ln.enabled: true -> false"),
        ("study: smoke\ntrain: {epochs: 3}\n", "train.epochs: 2 -> 3"),
    ],
)
def test_another_config_under_a_study_name_is_refused_with_nothing_written(
    smoke_study: Path, override: str, differs: str
) -> None:
    before = result_files(smoke_study)
    other = smoke_study / "other.yaml"
    other.write_text(override)
    try:
        done = snakemake(smoke_study, "--cores", "2", *SMOKE, "other.yaml", check=False, refused=True)
        amended = snakemake(smoke_study, "-n", *SMOKE, "other.yaml", "--config", "amend_study=True", check=False)
    finally:
        other.unlink()
    told = done.stdout + done.stderr
    assert done.returncode != 0 and "study 'smoke': results/smoke/ holds the study of another config (" in told
    assert differs in told and "Nothing was run or written" in told
    assert "--config study=<name>" in told and "remove results/smoke/ and report/smoke/" in told
    assert "--config amend_study=True" in told and "Traceback" not in told
    assert result_files(smoke_study) == before
    # Said on purpose, the change is planned (this dry run writes nothing either).
    assert amended.returncode == 0, amended.stderr
    assert result_files(smoke_study) == before


def test_a_config_that_changes_nothing_of_the_study_is_the_same_study(smoke_study: Path) -> None:
    other = smoke_study / "fetch.yaml"
    other.write_text("data: {timeout_s: 5}\n")  # how the data is fetched, not what the study is
    try:
        done = snakemake(smoke_study, "-n", *SMOKE, "fetch.yaml", check=False)
    finally:
        other.unlink()
    assert done.returncode == 0 and "Nothing to be done" in done.stdout + done.stderr, done.stderr


def test_a_config_file_without_a_study_name_may_not_change_the_default_study(workflow_copy: Path) -> None:
    (workflow_copy / "mine.yaml").write_text("seeds: [1, 2]\n")
    done = snakemake(workflow_copy, "--cores", "1", "--configfile", "mine.yaml", check=False, refused=True)
    told = done.stdout + done.stderr
    assert (
        done.returncode != 0 and "mine.yaml changes what the 'default' study runs (seeds: [1, 2, 3] -> [1, 2])" in told
    )
    assert "names no study, so it would overwrite results/default/" in told and "Traceback" not in told
    assert not (workflow_copy / "results" / "default").exists()
    (workflow_copy / "mine.yaml").write_text("study: mine\nseeds: [1, 2]\n")
    assert snakemake(workflow_copy, "-n", "--configfile", "mine.yaml").returncode == 0
    done = snakemake(workflow_copy, "-n", "--config", "train={epochs: 1}", check=False)
    assert "--config changes what the 'default' study runs" not in done.stdout + done.stderr  # refused as text first


def test_a_damaged_record_is_named(smoke_study: Path, tmp_path: Path) -> None:
    record = smoke_study / "results" / "smoke" / "study_config.json"
    saved = tmp_path / "record"
    shutil.copy2(record, saved)
    try:
        record.write_text(record.read_text()[:40])
        done = snakemake(smoke_study, "-n", *SMOKE, check=False)
    finally:
        shutil.copy2(saved, record)
    told = done.stdout + done.stderr
    assert done.returncode != 0 and "results/smoke/study_config.json: unreadable record of the config" in told


def tmpfs_available() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.mark.skipif(not tmpfs_available(), reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_named_in_the_log_and_the_runs_message(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        study = copy_workflow(disk / "study")
        # The synthetic data first, then the disk filled to 60 KiB: the training job cannot write its model.
        snakemake(study, "results/data/synthetic/raw/provenance.json", "--cores", "1", *SMOKE)
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(b"\0" * (free - 60 * 1024))
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", "results/smoke/runs/bn/seed1/metrics.json", "--cores", "1", *SMOKE],
            cwd=study,
            env=snakemake_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        told = done.stdout + done.stderr
        assert done.returncode != 0 and "No space left on device" in told
        # The job's own error reached its log (Snakemake prints the log on failure), and the run's message.
        log = study / "results" / "smoke" / "logs" / "train" / "bn" / "seed1.log"
        assert "error: [Errno 28] No space left on device" in log.read_text()
        assert "error: [Errno 28] No space left on device" in told
        # What the workflow's onerror prints where Snakemake itself is still able to end the run.
        said = no_space_message(study / "results" / "smoke")
        assert said is not None and said.startswith(f"No space left on device: the file system of {disk}")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_the_makefile_passes_user_values_as_data(tmp_path: Path) -> None:
    mark = tmp_path / "pwned"
    for target, value in (
        ("verify", f"STUDY_ARGS=--cores 1 ; touch {mark}"),
        ("record-tuning", f"STUDY_ARGS=--config study=x';touch {mark};'"),
    ):
        done = subprocess.run(
            ["make", "-s", target, value], cwd=REPO, env=snakemake_env(), capture_output=True, text=True, check=False
        )
        assert done.returncode != 0, done.stdout
    assert not mark.exists()


def test_a_second_run_in_a_locked_checkout_is_told_to_wait_not_to_unlock(tmp_path: Path) -> None:
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    assert concurrent_run_note(tmp_path) is None  # no lock held
    (locks / "0.output.lock").write_text("results/one/x\n")
    assert concurrent_run_note(tmp_path) is None  # a lock no live run holds: Snakemake's --unlock advice is right
    # A process named snakemake working in the folder, as a study's run is.
    other = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 30"], cwd=tmp_path)
    try:
        for _ in range(50):
            note = concurrent_run_note(tmp_path)
            if note:
                break
            time.sleep(0.1)
    finally:
        other.kill()
        other.wait()
    assert note is not None and f"{other.pid}: snakemake 30" in note
    assert "wait for that run to end, or run the second study in another clone. Do not pass --unlock" in note


def test_a_key_added_since_a_study_was_recorded_is_its_config_while_it_is_off(tmp_path: Path) -> None:
    values = study_config({"analysis": {"control": None}})  # the default study has one now; a study without it
    assert study_identity(values)["analysis.control"] is None
    record_identity(tmp_path, values, ["config.yaml"])
    record = json.loads((tmp_path / "study_config.json").read_text())
    del record["identity"]["analysis.control"]  # as a study recorded before the key existed
    record["digest"] = config_digest(record["identity"])
    (tmp_path / "study_config.json").write_text(json.dumps(record))
    assert identity_problem(tmp_path, values, amend=False) is None
    # Switched on, it is another config, named.
    controlled = study_config({"analysis": {"control": "in"}})
    assert 'analysis.control: absent -> "in"' in identity_problem(tmp_path, controlled, amend=False)


@pytest.mark.parametrize(("key", "on"), [("crop_padding", 4), ("horizontal_flip", True)])
def test_an_augmentation_added_since_a_study_was_recorded_is_its_config_while_it_is_off(
    tmp_path: Path, key: str, on: object
) -> None:
    values = study_config({"analysis": {"control": None}})
    assert study_identity(values)[f"train.augment.{key}"] in (0, False)
    record_identity(tmp_path, values, ["config.yaml"])
    record = json.loads((tmp_path / "study_config.json").read_text())
    del record["identity"][f"train.augment.{key}"]  # a study recorded before colour datasets' augmentation
    record["digest"] = config_digest(record["identity"])
    (tmp_path / "study_config.json").write_text(json.dumps(record))
    assert identity_problem(tmp_path, values, amend=False) is None
    switched = study_config({"analysis": {"control": None}, "train": {"augment": {key: on}}})
    assert f"train.augment.{key}: absent -> {json.dumps(on)}" in identity_problem(tmp_path, switched, amend=False)
