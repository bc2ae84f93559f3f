#!/usr/bin/env python3
"""Audit a finished study against its config without running anything (`make verify`).

Snakemake's own summary of the default target (its checks at parse time included: run settings against the config,
data against its provenance) says which files are missing or out of date; then every run's model, job record and
metrics must carry the digest of its settings.json. Prints what is wrong and the one command that rebuilds exactly
that; exit status 0 only when everything holds.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aggregate

from normstudy.cli import run_cli, snakemake_arguments
from normstudy.config.studies import STUDY_FACTS_FILE
from normstudy.config.study import Study
from normstudy.model_file import ModelFileError, check_trained_with, read_model_file
from normstudy.runs import RunMismatchError, read_named_json, study_run_files
from normstudy.settings import RunSettings
from normstudy.values import ConfigError

SUMMARY_HEADER = "output_file\tdate\trule\tlog-file(s)\tstatus\tplan"
SHOWN = 25
# Files of one run that record the digest of its settings (PreciseBN's statistics: runs with BatchNorm only).
DIGEST_RECORDS = ("job.json", "metrics.json", "precise_bn.json")
# The main study's tables verify recomputes from the run files (aggregate.py's outputs, by its keys), byte for byte;
# environment.json says where and with what they were written, which another process cannot recompute.
RECOMPUTED = {key: f"{key}.csv" for key in ("summary", "runs", "epochs", "comparisons", "per_class", "confusion")}
RECOMPUTED |= {
    "family": "family.csv",
    "control": "control.csv",
    "analysis": "analysis.json",
    "summary_md": "summary.md",
}
RECOMPUTED |= {"summary_html": "summary.html"}


@dataclass(frozen=True)
class Planned:
    """One output file of the study as Snakemake's summary describes it."""

    path: str
    rule: str
    status: str
    pending: bool


@dataclass
class Audit:
    """What is wrong, file by file, and the files to train again although Snakemake finds them up to date."""

    problems: list[str] = field(default_factory=list)
    retrain: list[str] = field(default_factory=list)


def snakemake_summary(snakemake_args: list[str]) -> list[Planned]:
    """Snakemake's --summary of the study, or ConfigError with what Snakemake refused (its parse-time checks)."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--summary", *snakemake_args], capture_output=True, text=True, check=False
    )
    lines = done.stdout.splitlines()
    if done.returncode != 0 or SUMMARY_HEADER not in lines:
        told = [line for line in (done.stderr + done.stdout).splitlines() if line.strip() and "File " not in line]
        raise ConfigError("snakemake refused the study as it stands:\n" + "\n".join(told[-8:]))
    rows = [line.split("\t") for line in lines[lines.index(SUMMARY_HEADER) + 1 :] if line.count("\t") == 5]
    return [Planned(path, rule, status, plan == "update pending") for path, _, rule, _, status, plan in rows]


def stale_files(planned: list[Planned]) -> tuple[list[str], str]:
    """One line per file Snakemake would make again for a reason of its own (missing; newer inputs, changed params
    or code), and one for the files remade only because of those ("" when none)."""
    lines, downstream = [], {}
    for item in planned:
        if item.status == "missing":
            lines.append(f"missing:  {item.path}  (rule {item.rule})")
        elif item.pending and item.status != "ok":
            lines.append(f"outdated: {item.path}  (rule {item.rule}: {item.status})")
        elif item.pending:
            downstream.setdefault(item.rule, []).append(item.path)
    count = sum(map(len, downstream.values()))
    then = f"then {count} files are made again after those (rules {', '.join(downstream)})" if count else ""
    return lines, then


def audit_run(folder: Path, audit: Audit) -> None:
    """A run's model, job record, metrics and PreciseBN statistics must carry the digest of its settings.json."""
    settings_path = folder / "settings.json"
    try:
        settings = RunSettings.read(settings_path)
    except (ConfigError, OSError) as error:
        audit.problems.append(f"unreadable: {error}")
        return
    identity = (settings.variant.name, settings.seed)
    model = folder / "model.pt"
    if model.exists():
        try:
            check_trained_with(read_model_file(model), model, settings, settings_path)
        except ModelFileError as error:
            audit.problems.append(f"wrong run: {error}")
            audit.retrain.append(str(model))
    for name in DIGEST_RECORDS:
        if (folder / name).exists():
            try:
                read_named_json(folder / name, identity, settings.digest())
            except (RunMismatchError, ValueError) as error:
                audit.problems.append(f"wrong run: {error}")
                audit.retrain.append(str(folder / name))


def audit_tables(tables: Path, audit: Audit) -> int:
    """Recompute the main study's tables from its run files as aggregate.py does, into a temporary folder, and name
    each table of `tables` whose bytes differ (edited, or written from other runs); return how many were checked."""
    facts = tables.parent / STUDY_FACTS_FILE
    try:
        study = Study.from_config(json.loads(facts.read_text())["config"])
        files = study_run_files(tables.parent, study.enabled_variants(), list(study.seeds))
        plan = study.analysis
    except (OSError, ValueError, KeyError, TypeError) as error:
        audit.problems.append(f"unreadable: {facts} ({error}): the tables cannot be recomputed")
        return 0
    with tempfile.TemporaryDirectory(prefix="normstudy-verify-") as scratch:
        out = {key: Path(scratch) / name for key, name in RECOMPUTED.items()}
        out["environment"] = Path(scratch) / "environment.json"  # where and with what: not recomputable elsewhere
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                aggregate.main(files, plan, {key: out[key] for key in aggregate.OUTPUTS})
        except (OSError, ValueError, KeyError, TypeError) as error:
            audit.problems.append(f"unreadable: the run files behind {tables} ({error})")
            return 0
        for key, name in RECOMPUTED.items():
            table = tables / name
            if table.is_file() and table.read_bytes() != out[key].read_bytes():
                audit.problems.append(
                    f"edited:   {table}  (differs from what its run files give, recomputed as aggregate.py does)"
                )
                audit.retrain.append(str(table))
    return len(RECOMPUTED)


def rebuild_command(snakemake_args: list[str], retrain: list[str]) -> str:
    """The one command that rebuilds what is missing or out of date, forcing the files Snakemake finds up to date."""
    force = ["--forcerun", *retrain] if retrain else []
    return shlex.join(["snakemake", "--cores", "all", *snakemake_args, *force])


def main(snakemake_args: list[str]) -> int:
    """Audit the study; print the findings and the rebuild command; return the exit status (0: all holds)."""
    planned = snakemake_summary(snakemake_args)
    stale, then = stale_files(planned)
    audit = Audit(problems=stale)
    runs = sorted({Path(item.path).parent for item in planned if item.path.endswith("/settings.json")})
    for folder in runs:
        audit_run(folder, audit)
    # The main tables, recomputed where Snakemake finds them up to date (a pending rebuild remakes them anyway).
    tables = [
        Path(item.path).parent for item in planned if item.rule == "aggregate" and item.path.endswith("/summary.csv")
    ]
    pending = any(item.pending for item in planned if item.rule == "aggregate")
    checked = 0 if pending else sum(audit_tables(folder, audit) for folder in tables)
    if not audit.problems:
        print(
            f"verify: all {len(planned)} files of the study are present and up to date, the models, job records"
            f" and metrics of its {len(runs)} runs are of their settings, and its {checked} main tables are what"
            " its run files give"
        )
        return 0
    print(f"verify: {len(audit.problems)} problem{'' if len(audit.problems) == 1 else 's'}")
    for line in audit.problems[:SHOWN]:
        print(f"  {line}")
    if len(audit.problems) > SHOWN:
        print(f"  ... and {len(audit.problems) - SHOWN} more")
    if then:
        print(then)
    print(f"to rebuild exactly that: {rebuild_command(snakemake_args, audit.retrain)}")
    return 1


def parse_args(argv: list[str] | None = None) -> list[str]:
    """Parse the command line: every argument but --help is the study's own Snakemake argument."""
    return snakemake_arguments(__doc__, "--configfile my.yaml, as the study was run with", argv)


if __name__ == "__main__":
    arguments = parse_args()
    run_cli(lambda: sys.exit(main(arguments)))
