#!/usr/bin/env python3
"""Render the study's self-contained HTML report (images embedded, CSS inline, nothing fetched)."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jinja2
import pandas as pd

from normstudy import atomic

PACKAGES = (
    "torch",
    "torchvision",
    "snakemake",
    "numpy",
    "pandas",
    "scipy",
    "matplotlib",
    "seaborn",
    "jinja2",
    "pyyaml",
)
NORM_LAYERS = {
    "batch": "BatchNorm2d(C)",
    "group": "GroupNorm({groups}, C)",
    "layer": "GroupNorm(1, C)",
    "instance": "GroupNorm(C, C)",
}


def data_uri(path: Path) -> str:
    """A PNG as a data: URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_num(value: Any, digits: int = 2) -> str:
    """A number with fixed decimals; an en dash where there is none."""
    return "–" if _missing(value) else f"{float(value):,.{digits}f}"


def fmt_signed(value: Any, digits: int = 2) -> str:
    """A difference with its sign."""
    return "–" if _missing(value) else f"{float(value):+.{digits}f}"


def git_state(folder: Path) -> tuple[str, bool]:
    """Commit and dirty flag of the checkout the report is rendered in."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True)
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=folder, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout", False
    return commit.stdout.strip(), bool(status.stdout.strip())


def cpu_name() -> str:
    """The processor's model name (Linux), or what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def duration(seconds: float) -> str:
    """Seconds as h:mm:ss, with the seconds too."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d} ({seconds:,.0f} s)"


def verdict(comparisons: pd.DataFrame, seeds: int) -> str:
    """A plain statement of which differences the seeds support, and which they do not."""
    tested = comparisons[comparisons["p_adjusted"].notna()]
    significant = tested[tested["significant"]]
    if tested.empty:
        return (
            f"With {seeds} seed(s) per variant no difference can be tested; the table only describes these runs, "
            "and no variant can be called better."
        )
    if significant.empty:
        return (
            f"None of the {len(tested)} pairwise differences is significant at the 5 % level after Benjamini–Hochberg "
            f"correction, with {seeds} seeds per variant. The differences in the summary are within seed-to-seed "
            "noise: this study does not show that any normalization is better than another here."
        )
    pairs = "; ".join(
        f"{r.variant_a} {'above' if r.diff_mean > 0 else 'below'} {r.variant_b} by {abs(r.diff_mean):.2f} points "
        f"(95 % CI {r.ci95_low:+.2f} to {r.ci95_high:+.2f}, adjusted p = {r.p_adjusted:.3f})"
        for r in significant.itertuples()
    )
    rest = len(tested) - len(significant)
    return (
        f"{len(significant)} of {len(tested)} pairwise differences are significant at the 5 % level after "
        f"Benjamini–Hochberg correction: {pairs}. The other {rest} are within seed-to-seed noise "
        f"with {seeds} seeds, and are not evidence either way."
    )


def read_jobs(job_files: list[Path], benchmarks: list[Path]) -> list[dict[str, Any]]:
    """Per training job: runtime and peak memory from its benchmark file, the rest from its job.json (same order)."""
    jobs = []
    for job_file, bench in zip(job_files, benchmarks, strict=True):
        job = json.loads(job_file.read_text())
        row = pd.read_csv(bench, sep="\t").iloc[0]
        jobs.append(
            {
                "variant": job["variant"],
                "seed": job["seed"],
                "s": float(row["s"]),
                "cpu_time": float(row["cpu_time"]),
                "max_rss": float(row["max_rss"]),
                "device": job["device_name"] or job["device"],
                "threads": job["threads"],
                "started": job["started_utc"],
                "finished": job["finished_utc"],
            }
        )
    return jobs


def render(context: dict[str, Any], template: Path) -> str:
    """Render the Jinja2 template with autoescaping: text from config shows as text, never as HTML."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template.parent),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    env.filters.update(pct=fmt_num, num=fmt_num, signed=fmt_signed)
    return env.get_template(template.name).render(**context)


def main(
    config: dict[str, Any],
    tables: Path,
    figures: list[Path],
    job_files: list[Path],
    benchmarks: list[Path],
    metrics_files: list[Path],
    grids: list[Path],
    data_provenance: Path,
    template: Path,
    out: Path,
) -> None:
    """Collect tables, figures and provenance into one HTML file."""
    summary = pd.read_csv(tables / "summary.csv")
    comparisons = pd.read_csv(tables / "comparisons.csv")
    per_class = pd.read_csv(tables / "per_class.csv")
    model_rows = pd.read_csv(tables / "model_summary.csv")
    variant_names = list(summary["variant"])
    seeds = config["seeds"]
    first_seed = seeds[0]
    jobs = read_jobs(job_files, benchmarks)
    # The same run order as the jobs: variant and seed of each metrics file and grid come from its job.
    run_files = {(j["variant"], j["seed"]): (m, g) for j, m, g in zip(jobs, metrics_files, grids, strict=True)}
    started = min(dt.datetime.fromisoformat(j["started"]) for j in jobs)
    finished = max(dt.datetime.fromisoformat(j["finished"]) for j in jobs)
    commit, dirty = git_state(Path.cwd())
    data = json.loads(data_provenance.read_text())
    variants = []
    for name in variant_names:
        settings = config["variants"][name]
        variants.append(
            {
                "name": name,
                "norm": settings["norm"],
                "layer": NORM_LAYERS[settings["norm"]].format(groups=settings.get("groups", "–")),
                "groups": settings.get("groups", "–"),
                "l1": settings["l1"],
                "dropout": settings["dropout"],
            }
        )
    misclassified = []
    for name in variant_names:
        metrics_file, grid = run_files[(name, first_seed)]
        mistakes = json.loads(metrics_file.read_text())["n_misclassified"]
        misclassified.append({"variant": name, "image": data_uri(grid), "mistakes": mistakes})
    summaries = [
        {
            "variant": name,
            "norm": config["variants"][name]["norm"],
            "rows": group.to_dict("records"),
            "total": int(group["params"].sum()),
        }
        for name, group in model_rows.groupby("variant", sort=False)
    ]
    dataset_name = "MNIST" if config["data"]["dataset"] == "mnist" else "synthetic digits (test data, not MNIST)"
    context = {
        "title": config["report"]["title"],
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "params": int(summary["params"].iloc[0]),
        "dataset_name": dataset_name,
        "train_size": data["files"]["train-images-idx3-ubyte"]["shape"][0],
        "test_size": data["files"]["t10k-images-idx3-ubyte"]["shape"][0],
        "seeds": seeds,
        "first_seed": first_seed,
        "variants": variants,
        "any_l1": any(v["l1"] > 0 for v in variants),
        "any_dropout": any(v["dropout"] > 0 for v in variants),
        "recipe": {"train": config["train"], "data": config["data"]},
        "summary": summary.to_dict("records"),
        "comparisons": comparisons.to_dict("records"),
        "verdict": verdict(comparisons, len(seeds)),
        "figures": {path.stem: data_uri(path) for path in figures},
        "misclassified_count": config["misclassified"]["count"],
        "misclassified": misclassified,
        "per_class": [
            {"variant": name, "accuracies": list(group.sort_values("class")["acc_mean"])}
            for name, group in per_class.groupby("variant", sort=False)
        ],
        "summaries": summaries,
        "receptive_field": pd.read_csv(tables / "receptive_field.csv").to_dict("records"),
        "provenance": {
            "git_commit": commit,
            "git_dirty": dirty,
            "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
            "python": platform.python_version(),
            "packages": {name: importlib.metadata.version(name) for name in PACKAGES},
            "cpu": f"{cpu_name()}, {platform.system()} {platform.machine()}",
            "devices": sorted({j["device"] for j in jobs}),
            "data": data,
            "wall_time": f"{duration((finished - started).total_seconds())}, from the first training job's start "
            f"to the last one's end",
            "job_time": duration(sum(j["s"] for j in jobs)),
            "jobs": jobs,
        },
    }
    with atomic.atomic_open(out, "w") as handle:
        handle.write(render(context, template))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=json.loads, required=True, help="the validated study config as JSON")
    parser.add_argument("--tables", type=Path, required=True, help="results/tables")
    parser.add_argument(
        "--figures", type=Path, nargs="+", required=True, help="the PNG figures to embed, named by role"
    )
    parser.add_argument("--jobs", type=Path, nargs="+", required=True, help="every run's job.json, in config order")
    parser.add_argument("--benchmarks", type=Path, nargs="+", required=True, help="train benchmark files, same order")
    parser.add_argument("--metrics", type=Path, nargs="+", required=True, help="every run's metrics.json, same order")
    parser.add_argument(
        "--grids", type=Path, nargs="+", required=True, help="every run's misclassified.png, same order"
    )
    parser.add_argument("--data-provenance", type=Path, required=True, help="provenance.json of the dataset")
    parser.add_argument("--template", type=Path, required=True, help="Jinja2 template of the page")
    parser.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    main(
        args.config,
        args.tables,
        args.figures,
        args.jobs,
        args.benchmarks,
        args.metrics,
        args.grids,
        args.data_provenance,
        args.template,
        args.out,
    )
