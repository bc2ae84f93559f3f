"""Run files are checked, not trusted: a hand-edited settings.json is refused before any job, a model is only
evaluated with the settings it was trained with, a missing run or data file is noticed, and every script ends
on bad input in one line with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import snakemake
from test_reruns import planned

from normstudy.cli import DEBUG_VARIABLE
from normstudy.data.datasets import raw_paths

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
RAW = raw_paths("synthetic")
DATA = str(Path(RAW["provenance"]).parent)
DATA_FILES = [path for role, path in RAW.items() if role != "provenance"]


@contextmanager
def kept(path: Path) -> Iterator[Path]:
    """Change or remove `path` in the block; its bytes and mtime are restored after."""
    before, stat = path.read_bytes(), path.stat()
    try:
        yield path
    finally:
        path.write_bytes(before)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def result_files(study: Path) -> dict[str, tuple[int, int]]:
    """Every file under results/ and report/, with its size and mtime: what a refused run must not touch."""
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for folder in ("results", "report")
        for path in sorted((study / folder).rglob("*"))
        if path.is_file() and ".snakemake" not in path.parts
    }


def dry_run(study: Path) -> str:
    """A dry run of the smoke study that is expected to be refused; its output."""
    done = snakemake(study, "-n", "--configfile", "tests/smoke.yaml", check=False)
    assert done.returncode != 0
    return done.stdout + done.stderr


def test_a_hand_edited_settings_file_is_refused_before_any_job(smoke_study: Path) -> None:
    settings = smoke_study / "results/smoke/runs/bn/seed1/settings.json"
    before = result_files(smoke_study)
    with kept(settings):
        data = json.loads(settings.read_text())
        data["variant"]["norm"] = "group"
        data["variant"]["groups"] = 2
        settings.write_text(json.dumps(data, indent=2))
        output = dry_run(smoke_study)
        assert (
            "results/smoke/runs/bn/seed1/settings.json was edited after it was written: variant.groups is 2 there, the"
            " config implies None; variant.norm is 'group' there, the config implies 'batch'. Delete it" in output
        )
        assert "Traceback" not in output
        done = snakemake(smoke_study, "--cores", "1", "--configfile", "tests/smoke.yaml", check=False)
        assert done.returncode != 0 and "was edited after it was written" in done.stdout + done.stderr
    assert result_files(smoke_study) == before


def test_a_truncated_settings_file_is_refused_naming_it(smoke_study: Path) -> None:
    settings = smoke_study / "results/smoke/batch_study/runs/gn/batch64/seed2/settings.json"
    with kept(settings):
        settings.write_text(settings.read_text()[:40])
        output = dry_run(smoke_study)
    assert f"{settings.relative_to(smoke_study)}: not valid JSON" in output and "truncated or edited?" in output


def test_a_settings_file_the_config_has_since_changed_is_rebuilt_not_refused(smoke_study: Path) -> None:
    (smoke_study / "longer.yaml").write_text("train:\n  epochs: 3\n")
    try:
        jobs = planned(smoke_study, "longer.yaml")
    finally:
        (smoke_study / "longer.yaml").unlink()
    assert jobs["run_settings"] == 12 and jobs["train"] == 12


@pytest.mark.parametrize(
    ("name", "rule"),
    [("settings.json", "run_settings"), ("metrics.json", "evaluate"), ("misclassified.png", "misclassified")],
)
def test_a_missing_run_file_is_rebuilt_with_what_depends_on_it(smoke_study: Path, name: str, rule: str) -> None:
    path = smoke_study / "results/smoke/runs/gn/seed2" / name
    with kept(path):
        path.unlink()
        jobs = planned(smoke_study)
    # The one run's chain from the missing file on, and the tables, figures and report that read it (and the batch
    # study's tables, whose convergence gate reads the summary; the robustness study's scoring, which reads the
    # run's model, and snakemake --report's metadata, which reads the tables).
    assert jobs[rule] == 1 and all(jobs[step] <= 1 for step in ("run_settings", "train", "evaluate"))
    assert set(jobs) <= {"run_settings", "train", "evaluate", "misclassified", "aggregate", "report"} | {
        "plot_curves",
        "plot_final",
        "plot_confusion",
        "batch_summary",
        "plot_batch_study",  # its gate reads the summary
        "score_clean_set",
        "score_corrupted_set",
        "robustness_summary",
        "report_metadata",
    }
    # gn has no BatchNorm: no PreciseBN statistics are remade for it, and no set is made again.
    assert not {"precise_statistics", "corrupt_test_set"} & set(jobs)


def test_a_missing_data_file_is_refused_naming_it(smoke_study: Path) -> None:
    path = smoke_study / f"{DATA}/t10k-labels-idx1-ubyte"
    before = result_files(smoke_study)
    with kept(path):
        path.unlink()
        output = dry_run(smoke_study)
        assert f"{DATA}/t10k-labels-idx1-ubyte: missing, though {DATA}/provenance.json records it" in output
    assert result_files(smoke_study) == before


def script(name: str, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one of the workflow's scripts as its rule does."""
    command = [sys.executable, str(SCRIPTS / name), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def evaluate(study: Path, settings: Path, model: Path, out: Path) -> subprocess.CompletedProcess:
    """evaluate.py on the smoke study's data, writing into `out`."""
    return script(
        "evaluate.py",
        "--settings",
        settings,
        "--model",
        model,
        "--data",
        *(study / path for path in DATA_FILES),
        "--provenance",
        study / RAW["provenance"],
        "--predictions",
        out / "predictions.csv",
        "--metrics",
        out / "metrics.json",
        "--threads",
        "1",
        "--precise-bn-images",
        "0",
    )


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """The message of a script that refused its input: exit status 2, one line, no traceback."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_evaluate_refuses_another_seeds_model(smoke_study: Path, tmp_path: Path) -> None:
    runs = smoke_study / "results/smoke/runs"
    done = evaluate(smoke_study, runs / "bn/seed1/settings.json", runs / "bn/seed2/model.pt", tmp_path)
    message = one_line_error(done)
    assert f"{runs}/bn/seed2/model.pt was trained with other settings than {runs}/bn/seed1/settings.json" in message
    assert list(tmp_path.iterdir()) == []


def test_evaluate_names_a_truncated_model(smoke_study: Path, tmp_path: Path) -> None:
    runs = smoke_study / "results/smoke/runs"
    model = tmp_path / "model.pt"
    model.write_bytes((runs / "ln/seed1/model.pt").read_bytes()[:3000])
    out = tmp_path / "out"
    message = one_line_error(evaluate(smoke_study, runs / "ln/seed1/settings.json", model, out))
    assert f"{model}: not a model file torch can read" in message and "delete it to retrain" in message
    assert not out.exists()


def test_the_traceback_is_kept_for_developers_who_ask(smoke_study: Path, tmp_path: Path) -> None:
    runs = smoke_study / "results/smoke/runs"
    settings = tmp_path / "settings.json"
    settings.write_text((runs / "in/seed1/settings.json").read_text()[:-5])
    env = {**os.environ, DEBUG_VARIABLE: "1"}
    args = ["--metrics", runs / "in/seed1/metrics.json", "--data", *(smoke_study / f for f in DATA_FILES)]
    args += ["--provenance", "p", "--predictions", "p", "--out-csv", tmp_path / "a.csv", "--out-png", "a.png"]
    args += ["--count", "4", "--rows", "2", "--cols", "2", "--title", "t"]
    plain = script("misclassified.py", "--settings", settings, *args)
    assert f"{settings}: not valid JSON" in one_line_error(plain)
    debug = script("misclassified.py", "--settings", settings, *args, env=env)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "UnreadableFileError" in debug.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--train-size", "0", "--test-size", "10", "--seed", "1"], "--train-size: 0 is below 1"),
        (["--train-size", "ten", "--test-size", "10", "--seed", "1"], "--train-size: 'ten' is not a whole number"),
        (["--train-size", "10", "--test-size", "10", "--seed", "-1"], "--seed: -1 is below 0"),
    ],
)
def test_a_script_names_a_bad_number_before_it_starts(tmp_path: Path, args: list[str], words: str) -> None:
    data = [tmp_path / name for name in ("a", "b", "c", "d")]
    done = script("make_synthetic.py", "--data", *data, "--provenance", tmp_path / "p.json", *args)
    assert done.returncode == 2 and words in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_is_one_line(smoke_study: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder must be")
    settings = json.loads((smoke_study / "results/smoke/runs/bn/seed1/settings.json").read_text())
    settings.pop("digest")
    done = script("write_settings.py", "--settings", json.dumps(settings), "--out", blocked / "settings.json")
    assert f"{blocked}" in one_line_error(done)
    assert blocked.read_text() == "a file where a folder must be"


def test_a_model_file_records_its_settings(smoke_study: Path) -> None:
    import torch

    run = smoke_study / "results/smoke/runs/gn/seed1"
    saved = torch.load(run / "model.pt", weights_only=True)
    recorded = json.loads((run / "settings.json").read_text())["digest"]
    assert saved["settings_digest"] == recorded
    assert json.loads((run / "metrics.json").read_text())["settings_digest"] == recorded
    assert json.loads((run / "job.json").read_text())["settings_digest"] == recorded
    assert sorted(saved) == ["model", "settings_digest"] and all(
        isinstance(value, torch.Tensor) for value in saved["model"].values()
    )
