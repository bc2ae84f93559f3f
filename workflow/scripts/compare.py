#!/usr/bin/env python3
"""Compare two finished studies (make compare A=... B=...): each a study folder (results/<study>), a study's name,
or a git revision. Writes results/compare/<A>..<B>/: compare.html (self-contained) and the tables and figure
behind it. A revision's study is taken from its results when present and up to date, and never run silently."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import pandas as pd

from normstudy import atomic
from normstudy.cli import run_cli
from normstudy.compare.comparison import (
    PREDICTION_COLUMNS,
    CompareError,
    Study,
    environment_diff,
    key_diff,
    load_study,
    prediction_changes,
    shared_variants,
    variant_table,
    verdict,
)
from normstudy.compare.revisions import commit_of, revision_study
from normstudy.compare.transfer import dataset_of, on_other_datasets, pair_orderings, ranking, ranking_sentence
from normstudy.config.studies import STUDY_NAME, is_study_folder
from normstudy.report.page import data_uri, render
from normstudy.report.plots import save_figures, use_style
from normstudy.tables import write_csv, write_text
from normstudy.values import config_digest

TEMPLATE = Path(__file__).resolve().parents[1] / "report" / "compare.html.j2"


@dataclass(frozen=True)
class Source:
    """How the command line named one side: what to call it, and how to find its folder."""

    text: str
    label: str
    folder: Path | None = None  # a study folder
    commit: str | None = None  # or a git revision


def resolve(text: str, checkout: Path) -> Source:
    """A study folder, a study's name under results/, or a git revision; CompareError naming which it is not."""
    path = Path(text)
    if path.is_dir():
        if not is_study_folder(path):
            raise CompareError(f"{text}: this folder holds no study (no study.json); name a results/<study> folder")
        return Source(text, path.resolve().name, folder=path)
    if STUDY_NAME.fullmatch(text) and is_study_folder(checkout / "results" / text):
        return Source(text, text, folder=checkout / "results" / text)
    commit = commit_of(checkout, text)
    if commit is not None:
        return Source(text, commit[:10], commit=commit)
    if "/" not in text and not STUDY_NAME.fullmatch(text):
        raise CompareError(f"{text!r} is not a safe study name (letters, digits, '_' or '-') nor a git revision")
    raise CompareError(f"{text!r} is neither a study folder, a study under results/, nor a git revision here")


def curves_figure(a: Study, b: Study, variants: list[str], paths: list[Path]) -> None:
    """Both studies' test accuracy per epoch (mean over seeds), one colour per variant: A solid, B dashed."""
    use_style()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(variants):
        for study, style in ((a, "-"), (b, "--")):
            rows = study.epochs[study.epochs["variant"] == name].groupby("epoch")["test_acc"].mean()
            ax.plot(rows.index, rows.values, style, color=colours[i % len(colours)], label=f"{name} ({study.label})")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"{a.label} (solid) and {b.label} (dashed)")
    ax.legend(fontsize=7, ncols=2)
    save_figures(fig, paths)


def study_facts(study: Study, source: Source) -> dict[str, str]:
    """What the page says of one side: how it was named, its folder, commit and config digest."""
    commit = source.commit or study.environment.get("commit", "not recorded")
    return {
        "label": study.label,
        "named": source.text,
        "folder": str(study.folder),
        "commit": commit,
        "config_digest": config_digest(study.config),
    }


def compare(a: Study, b: Study, sources: tuple[Source, Source], target: Path) -> str:
    """Write every table, the figure and the page to `target`, all at once (written into a fresh folder beside it,
    then moved into place: an interrupted comparison never leaves a folder mixing two); return the verdict."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(target)
    out, replaced = (target.parent / f".{target.name}.{kind}-{os.getpid()}" for kind in ("part", "old"))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    try:
        sentence = _write_comparison(a, b, sources, out)
        if target.exists():
            target.rename(replaced)
        out.rename(target)
        shutil.rmtree(replaced, ignore_errors=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return sentence


def remove_abandoned(target: Path) -> None:
    """The folders an interrupted comparison of `target` left beside it (named by a process that no longer runs)."""
    for folder in target.parent.glob(f".{target.name}.*-*"):
        pid = folder.name.rpartition("-")[2]
        if pid.isdigit() and not running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def running(pid: int) -> bool:
    """Whether a process `pid` runs (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_comparison(a: Study, b: Study, sources: tuple[Source, Source], out: Path) -> str:
    """Every table, the figure and the page written into the folder `out`; the verdict: on two datasets, whether the
    ranking of the norms held; on one, whether anything moved beyond noise."""
    variants = shared_variants(a, b)
    plan = b.config["analysis"]
    across = on_other_datasets(a, b)
    # Two datasets' runs score different test images and share nothing by seed: no prediction or seed is paired.
    changes = pd.DataFrame(columns=PREDICTION_COLUMNS) if across else prediction_changes(a, b, variants)
    table = variant_table(a, b, variants, plan, changes, paired=not across)
    pairs = pair_orderings(a, b, variants, plan) if across else None
    tau = ranking(a, b, variants) if across else None
    sentence = ranking_sentence(a, b, tau, pairs) if across else verdict(table, a, b, plan["margin"])
    config, environment = key_diff(a.config, b.config), environment_diff(a, b)
    curves_figure(a, b, variants, [out / "curves.png", out / "curves.svg"])
    tables = {"config_diff": config, "environment_diff": environment, "variants": table, "predictions": changes}
    if across:
        tables["orderings"] = pairs
    for name, frame in tables.items():
        write_csv(frame, out / f"{name}.csv")
    only = {s.label: sorted(set(s.runs["variant"]) - set(variants)) for s in (a, b)}
    context = {
        "title": f"{a.label} against {b.label}",
        "verdict": sentence,
        "studies": [study_facts(study, source) for study, source in zip((a, b), sources, strict=True)],
        "plan": plan,
        "config": config.to_dict("records"),
        "environment": environment.to_dict("records"),
        "unrecorded": [study.label for study in (a, b) if not study.environment_recorded],
        "variants": table.to_dict("records"),
        "predictions": changes.to_dict("records"),
        "only": {label: names for label, names in only.items() if names},
        "curves": data_uri(out / "curves.png"),
        "datasets": [dataset_of(study) for study in (a, b)] if across else None,
        "ranking": tau,
        "orderings": [] if pairs is None else pairs.to_dict("records"),
    }
    write_text(out / "compare.html", render(context, TEMPLATE))
    atomic.write_json(out / "verdict.json", {"verdict": sentence, "a": sources[0].text, "b": sources[1].text})
    return sentence


def main(a_text: str, b_text: str, out: Path | None, snakemake_args: list[str], run: bool, cores: str) -> None:
    """Resolve both sides (running nothing unless `run`), compare them and print the verdict."""
    checkout = Path.cwd()
    sources = (resolve(a_text, checkout), resolve(b_text, checkout))
    studies = []
    for source in sources:
        folder = source.folder or revision_study(checkout, source.commit, snakemake_args, run, cores)
        studies.append(load_study(folder, source.label))
    target = out or checkout / "results" / "compare" / f"{sources[0].label}..{sources[1].label}"
    sentence = compare(studies[0], studies[1], sources, target)
    print(f"{sentence}\nwrote {target / 'compare.html'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a", help="the baseline: a study folder, a study's name under results/, or a git revision")
    parser.add_argument("b", help="the study compared with it, named the same ways")
    parser.add_argument("--out", type=Path, help="folder to write (default results/compare/<A>..<B>)")
    parser.add_argument(
        "--study-args",
        default="",
        help="Snakemake arguments that choose a revision's study, e.g. '--configfile tests/smoke.yaml'",
    )
    parser.add_argument("--run", action="store_true", help="run a revision's study when its results are absent")
    parser.add_argument("--cores", default="all", help="cores for a revision's study run with --run")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(args.a, args.b, args.out, shlex.split(args.study_args), args.run, args.cores))
