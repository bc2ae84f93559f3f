"""Two finished studies side by side (make compare): what differs in their config and environment, each shared
variant's accuracy with a test of the difference, the runs whose predictions changed, and the one sentence that
says whether anything moved beyond noise."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from normstudy.analysis.stats import decided, over_seeds, paired_difference, welch_difference
from normstudy.config.studies import STUDY_FACTS_FILE
from normstudy.report.provenance import job_values
from normstudy.runs import read_runs, study_run_files
from normstudy.values import flat_keys, short

ABSENT = "(absent)"
# The table of runs whose predictions changed (prediction_changes).
PREDICTION_COLUMNS = ["variant", "seed", "images", "changed", "fixed", "broken"]
# The corrections analysis.decided applies (the config schema's).
CORRECTIONS = ("holm", "bonferroni")


class CompareError(ValueError):
    """Input make compare cannot use; the message names which and why."""


@dataclass(frozen=True)
class Study:
    """One finished study's folder, as make compare reads it: its numbers from the run files, never its tables."""

    label: str
    folder: Path
    config: dict[str, Any]
    runs: pd.DataFrame  # one row per run, from its metrics.json (digest-checked, agreeing with predictions.csv)
    epochs: pd.DataFrame  # one row per run and epoch, from its history.csv
    environment: dict[str, Any]  # environment.json, or in a study from before it what the job records hold
    environment_recorded: bool  # False: packages, CPU and OS were not recorded

    def accuracies(self, variant: str) -> pd.Series:
        """The variant's test accuracy per seed (indexed by seed)."""
        return self.runs[self.runs["variant"] == variant].set_index("seed")["test_acc"]

    def predictions(self, variant: str, seed: int) -> pd.DataFrame:
        """The run's per-image labels and predictions."""
        path = self.folder / "runs" / variant / f"seed{seed}" / "predictions.csv"
        return pd.read_csv(path, usecols=["index", "label", "prediction"])


def recorded_config(path: Path, label: str) -> dict[str, Any]:
    """The config a study.json records, with an analysis make compare can apply; CompareError naming the file."""
    try:
        config = json.loads(path.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        problem = "truncated or not JSON" if isinstance(error, ValueError) else f"no config ({error!r})"
        raise CompareError(f"{label}: {path} is unreadable ({problem}); rebuild it (snakemake {path})") from None
    analysis = config.get("analysis") if isinstance(config, dict) else None
    if not isinstance(analysis, dict):
        raise CompareError(f"{label}: {path} records no analysis section: the comparison's test is not declared")
    checks = {
        "margin": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 100,
        "alpha": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1,
        "correction": lambda v: v in CORRECTIONS,
    }
    wrong = [key for key, valid in checks.items() if not valid(analysis.get(key))]
    if wrong or not isinstance(config.get("variants"), dict) or not isinstance(config.get("seeds"), list):
        keys = ", ".join(f"analysis.{key} {short(analysis.get(key))}" for key in wrong) or "variants or seeds"
        raise CompareError(f"{label}: {path} records an unusable config ({keys})")
    return config


def load_study(folder: Path, label: str) -> Study:
    """The study in `folder`, its accuracies read from the run files; CompareError naming what is missing or wrong."""
    facts = folder / STUDY_FACTS_FILE
    if not facts.is_file():
        raise CompareError(
            f"{label}: {folder} holds no finished study ({facts} missing); "
            "run the study first (make study, or snakemake with its --configfile)"
        )
    config = recorded_config(facts, label)
    # A record of any version of the study (the typed Study is this version's): read as the mapping it is.
    enabled = [name for name, variant in config.get("variants", {}).items() if variant.get("enabled", True)]
    files = study_run_files(folder, enabled, config.get("seeds", []))
    try:
        runs = read_runs(files)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CompareError(f"{label}: a run file of {folder} cannot be compared: {error}") from None
    table = runs.table[["variant", "seed", "test_acc"]]
    environment = folder / "environment.json"
    try:
        recorded = json.loads(environment.read_text()) if environment.is_file() else None
    except (OSError, ValueError) as error:
        raise CompareError(f"{label}: {environment} is unreadable ({error})") from None
    return Study(
        label=label,
        folder=folder,
        config=config,
        runs=table,
        epochs=runs.epochs,
        environment=recorded if isinstance(recorded, dict) else job_records(folder, table),
        environment_recorded=isinstance(recorded, dict),
    )


def job_records(folder: Path, runs: pd.DataFrame) -> dict[str, Any]:
    """What the runs' job.json files hold of torch, Python, device and threads, as environment.json has it."""
    jobs = [
        json.loads((folder / "runs" / v / f"seed{s}" / "job.json").read_text())
        for v, s in zip(runs.variant, runs.seed, strict=True)
    ]
    return {"jobs": job_values(jobs)}


def shared_variants(a: Study, b: Study) -> list[str]:
    """The variants both studies ran, in B's order; CompareError when there is none."""
    in_a = list(dict.fromkeys(a.runs["variant"]))
    shared = [name for name in dict.fromkeys(b.runs["variant"]) if name in in_a]
    if not shared:
        raise CompareError(
            f"{a.label} and {b.label} have no variant in common ({a.label}: {', '.join(in_a)}; "
            f"{b.label}: {', '.join(dict.fromkeys(b.runs['variant']))}): there is nothing to compare"
        )
    return shared


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return json.dumps(value) if isinstance(value, bool | dict) or value is None else str(value)


def key_diff(a: dict[str, Any], b: dict[str, Any]) -> pd.DataFrame:
    """The dotted keys whose values differ between two nested mappings (a key one lacks shows as ABSENT)."""
    flat_a, flat_b = flat_keys(a), flat_keys(b)
    keys = [key for key in dict.fromkeys([*flat_a, *flat_b]) if flat_a.get(key, ABSENT) != flat_b.get(key, ABSENT)]
    rows = [{"key": key, "a": _shown(flat_a.get(key, ABSENT)), "b": _shown(flat_b.get(key, ABSENT))} for key in keys]
    return pd.DataFrame(rows, columns=["key", "a", "b"])


def environment_diff(a: Study, b: Study) -> pd.DataFrame:
    """Packages, CPU, OS, threads and devices that differ, among what both studies recorded."""
    flat_a, flat_b = flat_keys(a.environment), flat_keys(b.environment)
    shared = [key for key in flat_a if key in flat_b]
    return key_diff({key: flat_a[key] for key in shared}, {key: flat_b[key] for key in shared})


def _difference(acc_a: pd.Series, acc_b: pd.Series, margin: float, paired: bool = True) -> dict[str, Any]:
    """B - A: paired by seed when both ran the same seeds (two or more) and `paired` (the same data), else Welch's;
    with TOST against margin."""
    if paired and len(acc_a) >= 2 and set(acc_a.index) == set(acc_b.index):
        return {"paired": True, **paired_difference(acc_b, acc_a, margin)}
    return {"paired": False, **welch_difference(acc_b, acc_a, margin)}


def _accuracy(values: pd.Series) -> dict[str, float]:
    """Mean accuracy over seeds with its 95 % t-interval, kept within 0-100 % (what an accuracy can be)."""
    summary = over_seeds(values, "acc")
    for bound in ("acc_ci95_low", "acc_ci95_high"):
        summary[bound] = float(np.clip(summary[bound], 0.0, 100.0))
    return summary


def variant_table(
    a: Study, b: Study, variants: list[str], plan: dict[str, Any], changes: pd.DataFrame, paired: bool = True
) -> pd.DataFrame:
    """Per shared variant: A's and B's mean test accuracy with 95 % CIs over seeds, B - A with its test (unpaired
    unless `paired`: two datasets' runs of a seed share nothing), corrected over the shared variants by the
    analysis' correction, and the reading: identical (no prediction changed), different, equivalent within +-margin,
    or inconclusive."""
    rows = []
    for name in variants:
        acc_a, acc_b = a.accuracies(name), b.accuracies(name)
        rows.append(
            {
                "variant": name,
                **{f"a_{k}": v for k, v in _accuracy(acc_a).items()},
                **{f"b_{k}": v for k, v in _accuracy(acc_b).items()},
                "seeds_a": len(acc_a),
                "seeds_b": len(acc_b),
                "seeds_only_a": _seed_list(set(acc_a.index) - set(acc_b.index)),
                "seeds_only_b": _seed_list(set(acc_b.index) - set(acc_a.index)),
                **_difference(acc_a, acc_b, plan["margin"], paired),
            }
        )
    table = decided(pd.DataFrame(rows), plan["correction"], plan["alpha"])
    table = table.rename(columns={"tost_p_adjusted": "tost_adjusted", "verdict": "reading"})
    changed = changes.groupby("variant")["changed"].sum(min_count=1)
    table["predictions_changed"] = table["variant"].map(changed)
    # Identical only when both ran the same seeds and every one of those runs predicts every image alike.
    same_runs = (table["predictions_changed"] == 0) & (table["seeds_only_a"] == "") & (table["seeds_only_b"] == "")
    table["reading"] = table.pop("reading").mask(same_runs, "identical")  # the last column
    return table


def _seed_list(seeds: set[int]) -> str:
    return ", ".join(str(seed) for seed in sorted(seeds))


def prediction_changes(a: Study, b: Study, variants: list[str]) -> pd.DataFrame:
    """Per run both studies hold (variant and seed): the test images whose predicted class differs. CompareError
    when the two runs were scored on different test images (another dataset): nothing to pair."""
    rows = []
    for name in variants:
        seeds_a = set(a.runs.loc[a.runs["variant"] == name, "seed"])
        for seed in b.runs.loc[b.runs["variant"] == name, "seed"]:
            if seed not in seeds_a:
                continue
            first, second = a.predictions(name, seed), b.predictions(name, seed)
            if len(first) != len(second) or not np.array_equal(first["label"], second["label"]):
                raise CompareError(
                    f"{name} seed {seed}: {a.label} and {b.label} scored different test images "
                    f"({len(first)} and {len(second)} rows, labels differ): their predictions cannot be paired"
                )
            changed = first["prediction"].to_numpy() != second["prediction"].to_numpy()
            right_a = first["prediction"] == first["label"]
            right_b = second["prediction"] == second["label"]
            rows.append(
                {
                    "variant": name,
                    "seed": int(seed),
                    "images": len(first),
                    "changed": int(changed.sum()),
                    "fixed": int((~right_a & right_b).sum()),
                    "broken": int((right_a & ~right_b).sum()),
                }
            )
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


def _moved(row: Any, margin: float, labels: tuple[str, str]) -> str:
    change = "no change" if math.isnan(row.diff_mean) else f"{row.diff_mean:+.2f} points"
    if not math.isnan(row.ci95_low):
        change += f", 95 % CI {row.ci95_low:+.2f} to {row.ci95_high:+.2f}"
    said = {"different": "different", "equivalent": f"equivalent within ±{margin:g}", "inconclusive": "inconclusive"}
    changed = "" if math.isnan(row.predictions_changed) else f"{int(row.predictions_changed)} predictions changed; "
    one_side = "".join(
        f"; seed{'s' * (',' in seeds)} {seeds} in {side} only"
        for side, seeds in zip(labels, (row.seeds_only_a, row.seeds_only_b), strict=True)
        if seeds
    )
    return f"{row.variant} ({changed}{change}: {said[row.reading]}{one_side})"


def verdict(table: pd.DataFrame, a: Study, b: Study, margin: float) -> str:
    """One sentence: whether anything moved beyond noise between A and B, and what."""
    moved = table[table["reading"] != "identical"]
    same = table.loc[table["reading"] == "identical", "variant"].tolist()
    if moved.empty:
        runs = int(table[["seeds_a", "seeds_b"]].min(axis=1).sum())
        return (
            f"Nothing moved: the {runs} runs of the {len(table)} variants {a.label} and {b.label} share give the same "
            "prediction on every test image."
        )
    labels = (a.label, b.label)
    beyond = moved[moved["reading"] == "different"]
    lead = (
        f"Moved beyond noise: {'; '.join(_moved(row, margin, labels) for row in beyond.itertuples())}."
        if not beyond.empty
        else "Nothing was shown to move beyond noise."
    )
    within = moved[moved["reading"] != "different"]
    rest = (
        f" Changed, not shown beyond noise: {'; '.join(_moved(row, margin, labels) for row in within.itertuples())}."
        * (not within.empty)
    )
    return lead + rest + (f" Unchanged (identical predictions): {', '.join(same)}." if same else "")
