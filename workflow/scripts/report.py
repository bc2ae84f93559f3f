#!/usr/bin/env python3
"""Render the study's HTML report: one self-contained file (--out), or a folder for a static host (--site)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normstudy import atomic
from normstudy.cli import run_cli
from normstudy.report.page import BatchInputs, ReportInputs, build_context, config_yaml, data_uri, read_study, render
from normstudy.report.robustness_section import TABLES as ROBUSTNESS_TABLES
from normstudy.report.robustness_section import RobustnessInputs

# The robustness study's arguments: its tables, its findings and its two figures (all given, or none).
ROBUSTNESS_ARGS = (*ROBUSTNESS_TABLES, "findings", "heatmap", "gallery")


def write_page(inputs: ReportInputs, template: Path, out: Path) -> None:
    """One HTML file with every image embedded: it can be mailed or opened from disk as it is."""
    with atomic.atomic_open(out, "w") as handle:
        handle.write(render(build_context(inputs, data_uri), template))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def write_site(
    inputs: ReportInputs,
    template: Path,
    site: Path,
    svgs: list[Path],
    tables: list[Path],
    batch_tables: list[Path] = (),
) -> None:
    """index.html with relative links to figures/ (SVG, and PNG beside it), tables/ (CSV; the batch study's in
    tables/batch_study/) and config-used.yaml."""
    (site / "figures").mkdir(parents=True, exist_ok=True)
    (site / "tables" / "batch_study").mkdir(parents=True, exist_ok=True)
    vector = {path.stem: path for path in svgs}

    def place(path: Path, name: str) -> str:
        shutil.copyfile(path, site / "figures" / f"{name}.png")
        if name in vector:  # the sharp version where there is one
            shutil.copyfile(vector[name], site / "figures" / f"{name}.svg")
            return f"figures/{name}.svg"
        return f"figures/{name}.png"

    for table in tables:
        shutil.copyfile(table, site / "tables" / table.name)
    for table in batch_tables:
        shutil.copyfile(table, site / "tables" / "batch_study" / table.name)
    atomic.write_bytes(site / "config-used.yaml", config_yaml(read_study(inputs.study)["config"]).encode())
    links = {
        "config": "config-used.yaml",
        **{f"table_{t.stem}": f"tables/{t.name}" for t in tables},
        **{f"batch_table_{t.stem}": f"tables/batch_study/{t.name}" for t in batch_tables},
    }
    atomic.write_bytes(site / "index.html", render(build_context(inputs, place, links), template).encode())
    print(
        f"wrote {site}/index.html with {len(list((site / 'figures').iterdir()))} figure files and "
        f"{len(tables) + len(batch_tables)} tables"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--study", type=Path, required=True, help="study.json: the config and what it derives")
    for name in ("summary", "comparisons", "per-class", "runs-table", "model-summary", "receptive-field"):
        parser.add_argument(f"--{name}", type=Path, required=True, help=f"the {name} table (CSV)")
    parser.add_argument("--figures", type=Path, nargs="+", required=True, help="PNG figures, named by role")
    parser.add_argument(
        "--runs",
        type=json.loads,
        required=True,
        help='JSON: [{"variant", "seed", "job", "benchmark", "metrics", "grid"}]',
    )
    parser.add_argument("--data-provenance", type=Path, required=True, help="provenance.json of the dataset")
    parser.add_argument("--tuning-summary", type=Path, required=True, help="the recorded recipe search's summary.csv")
    parser.add_argument("--tuning-search", type=Path, required=True, help="the recorded search's search.json")
    parser.add_argument("--tuning-figure", type=Path, required=True, help="the recorded search's figure (PNG)")
    parser.add_argument(
        "--tuning-pieces", type=Path, nargs="*", default=[], help="summary.csv of each search recorded beside it"
    )
    parser.add_argument("--family", type=Path, required=True, help="the declared family's table (family.csv)")
    parser.add_argument("--control", type=Path, required=True, help="every norm against the control (control.csv)")
    parser.add_argument("--analysis", type=Path, required=True, help="the declared analysis' facts (analysis.json)")
    parser.add_argument("--environment", type=Path, help="environment.json: the machine and the training jobs")
    for name in ROBUSTNESS_ARGS:
        parser.add_argument(f"--robustness-{name}", type=Path, help=f"the robustness study's {name} (all or none)")
    for name in ("summary", "comparisons", "changes", "gate"):
        parser.add_argument(
            f"--batch-{name}", type=Path, help=f"the batch study's {name}.csv (all batch options or none)"
        )
    parser.add_argument("--batch-figure", type=Path, help="the batch study's figure (PNG)")
    parser.add_argument(
        "--batch-jobs",
        type=json.loads,
        help='JSON: per batch-study training job [{"variant", "seed", "batch_size", "job", "benchmark"}]',
    )
    parser.add_argument("--template", type=Path, required=True, help="Jinja2 template of the page")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="the self-contained HTML file to write")
    where.add_argument("--site", type=Path, help="the folder to write for a static host")
    parser.add_argument("--svgs", type=Path, nargs="*", default=[], help="SVG figures for --site, named by role")
    parser.add_argument("--tables", type=Path, nargs="*", default=[], help="CSV tables to publish with --site")
    parser.add_argument(
        "--batch-tables", type=Path, nargs="*", default=[], help="the batch study's CSV tables, for --site"
    )
    args = parser.parse_args(argv)
    batch = [args.batch_summary, args.batch_comparisons, args.batch_changes, args.batch_gate, args.batch_figure]
    if any(value is not None for value in [*batch, args.batch_jobs]) and not all(
        value is not None for value in [*batch, args.batch_jobs]
    ):
        parser.error(
            "the batch study needs all of --batch-summary, --batch-comparisons, --batch-changes, --batch-gate, "
            "--batch-figure and --batch-jobs, or none of them"
        )
    given = [getattr(args, f"robustness_{name}") is not None for name in ROBUSTNESS_ARGS]
    if any(given) and not all(given):
        parser.error(f"the robustness study needs all of --robustness-{{{','.join(ROBUSTNESS_ARGS)}}}, or none of them")
    return args


def robustness_inputs(args: argparse.Namespace) -> RobustnessInputs | None:
    """The robustness study's files from the command line, or None when the study left it out."""
    if args.robustness_findings is None:
        return None
    return RobustnessInputs(
        {name: getattr(args, f"robustness_{name}") for name in ROBUSTNESS_TABLES},
        args.robustness_findings,
        args.robustness_heatmap,
        args.robustness_gallery,
    )


def batch_inputs(args: argparse.Namespace) -> BatchInputs | None:
    """The batch study's files from the command line, or None when it was not run."""
    if args.batch_summary is None:
        return None
    return BatchInputs(
        args.batch_summary,
        args.batch_comparisons,
        args.batch_changes,
        args.batch_gate,
        args.batch_figure,
        args.batch_jobs,
    )


def report_from(args: argparse.Namespace) -> None:
    """The page or the site, from the command line's arguments."""
    report_inputs = ReportInputs(
        args.study,
        args.summary,
        args.comparisons,
        args.per_class,
        args.runs_table,
        args.model_summary,
        args.receptive_field,
        args.figures,
        args.runs,
        args.data_provenance,
        args.tuning_summary,
        args.tuning_search,
        args.tuning_figure,
        args.family,
        args.analysis,
        robustness_inputs(args),
        batch_inputs(args),
        args.environment,
        args.control,
        [path.parent for path in args.tuning_pieces],
    )
    if args.out:
        write_page(report_inputs, args.template, args.out)
    else:
        write_site(report_inputs, args.template, args.site, args.svgs, args.tables, args.batch_tables)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: report_from(args))
