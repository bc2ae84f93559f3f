"""make compare: named studies side by side, the statistics of a comparison against scipy and statsmodels, its
verdict, bad input, git revisions, and the page in Chromium."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, snakemake, snakemake_env, without_comparisons
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

sys.path.insert(0, str(REPO / "workflow" / "scripts"))

from normstudy.compare.comparison import (
    CompareError,
    Study,
    environment_diff,
    job_records,
    key_diff,
    load_study,
    shared_variants,
    variant_table,
    verdict,
)
from normstudy.compare.revisions import exported_tree, study_location, with_config_entry

PLAN = {"margin": 0.2, "alpha": 0.05, "correction": "holm"}
SMOKE_ARGS = ("--configfile", "tests/smoke.yaml")
# The copy's one change: gn's peak learning rate (the smoke study's is config.yaml's 0.1).
CHANGED_GN = "study: smoke_gn\nvariants:\n  gn:\n    train:\n      schedule: {max_lr: 0.3}\n"


def study(label: str, accuracies: dict[str, list[float]], seeds: list[int] | None = None) -> Study:
    """A study with these per-seed accuracies (nothing on disk: for the statistics)."""
    rows = [
        {"variant": name, "seed": (seeds or list(range(1, len(values) + 1)))[i], "test_acc": value}
        for name, values in accuracies.items()
        for i, value in enumerate(values)
    ]
    return Study(label, Path(label), {}, pd.DataFrame(rows), pd.DataFrame(), {}, True)


def changes(counts: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": name, "seed": 1, "changed": n} for name, n in counts.items()])


def compare(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """compare.py in `cwd`, as make compare runs it."""
    return subprocess.run(
        [sys.executable, str(cwd / "workflow" / "scripts" / "compare.py"), *args],
        cwd=cwd,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def test_key_diff_keeps_only_the_keys_that_differ() -> None:
    a = {"study": "x", "train": {"epochs": 15, "schedule": {"max_lr": 0.1}}, "seeds": [1, 2]}
    b = {"study": "x", "train": {"epochs": 15, "schedule": {"max_lr": 0.2}}, "seeds": [1, 2, 3], "new": True}
    table = key_diff(a, b)
    assert table.to_dict("records") == [
        {"key": "train.schedule.max_lr", "a": "0.1", "b": "0.2"},
        {"key": "seeds", "a": "1, 2", "b": "1, 2, 3"},
        {"key": "new", "a": "(absent)", "b": "true"},
    ]
    assert key_diff(a, a).empty


def test_paired_difference_and_equivalence_match_scipy_and_statsmodels() -> None:
    a = study("a", {"bn": [99.40, 99.45, 99.38], "gn": [99.20, 99.31, 99.25]})
    b = study("b", {"bn": [99.41, 99.47, 99.37], "gn": [99.60, 99.70, 99.58]})
    table = variant_table(a, b, ["bn", "gn"], PLAN, changes({"bn": 3, "gn": 40})).set_index("variant")
    for name in ("bn", "gn"):
        x, y = b.runs[b.runs.variant == name].test_acc.to_numpy(), a.runs[a.runs.variant == name].test_acc.to_numpy()
        expected = stats.ttest_rel(x, y)
        row = table.loc[name]
        assert row["paired"] and row["p_value"] == pytest.approx(expected.pvalue)
        interval = expected.confidence_interval(0.95)
        assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((interval.low, interval.high))
        assert row["tost_p"] == pytest.approx(ttost_paired(x, y, -0.2, 0.2)[0])
    assert table["p_adjusted"].tolist() == pytest.approx(multipletests(table["p_value"], method="holm")[1])
    assert table["tost_adjusted"].tolist() == pytest.approx(multipletests(table["tost_p"], method="holm")[1])
    assert table.loc["gn", "reading"] == "different" and table.loc["bn", "reading"] == "equivalent"
    sentence = verdict(table.reset_index(), a, b, 0.2)
    assert sentence.startswith("Moved beyond noise: gn (40 predictions changed; +0.37 points")
    assert "Changed, not shown beyond noise: bn (3 predictions changed" in sentence
    assert "equivalent within ±0.2" in sentence
    # Without gn, nothing was shown to move: bn's change is listed with its reading, not called "no change".
    alone = verdict(table.reset_index().query("variant == 'bn'"), a, b, 0.2)
    assert alone.startswith("Nothing was shown to move beyond noise. Changed, not shown beyond noise: bn (3 pred")


def test_other_seeds_are_compared_with_welch_and_its_equivalence_test() -> None:
    a = study("a", {"ln": [99.1, 99.3, 99.2]}, seeds=[1, 2, 3])
    b = study("b", {"ln": [99.2, 99.4, 99.1, 99.3]}, seeds=[4, 5, 6, 7])
    row = variant_table(a, b, ["ln"], PLAN, changes({"ln": 0})).iloc[0]
    x, y = b.runs.test_acc.to_numpy(), a.runs.test_acc.to_numpy()
    assert not row["paired"]
    assert row["p_value"] == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue)
    assert row["tost_p"] == pytest.approx(ttost_ind(x, y, -0.2, 0.2, usevar="unequal")[0])


def test_identical_predictions_say_nothing_moved() -> None:
    a = study("a", {"bn": [99.4, 99.5], "in": [99.0, 98.9]})
    table = variant_table(a, a, ["bn", "in"], PLAN, changes({"bn": 0, "in": 0}))
    assert table["reading"].tolist() == ["identical", "identical"]
    assert verdict(table, a, a, 0.2) == (
        "Nothing moved: the 4 runs of the 2 variants a and a share give the same prediction on every test image."
    )


def test_two_studies_without_a_shared_variant_are_refused() -> None:
    with pytest.raises(CompareError, match=r"a and b have no variant in common \(a: bn, gn; b: ln\)"):
        shared_variants(study("a", {"bn": [1.0], "gn": [1.0]}), study("b", {"ln": [1.0]}))


@pytest.fixture(scope="session")
def changed_copy(smoke_study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke study and, beside it in the same folder, study smoke_gn: the same config with gn's peak learning
    rate changed, started from a copy of the smoke study's files with gn's runs and its config record left out (so
    only gn's runs train)."""
    tree = tmp_path_factory.mktemp("compare") / "study"
    shutil.copytree(smoke_study, tree, symlinks=True, ignore=without_comparisons)
    shutil.copy2(REPO / ".gitignore", tree / ".gitignore")
    results = tree / "results"
    shutil.copytree(results / "smoke", results / "smoke_gn")
    shutil.rmtree(results / "smoke_gn" / "runs" / "gn")
    # The config as the report shows it, and the folder's record of the config that made it: made again from the new
    # config (a copy has no record of the old one's; the old record would refuse the new config, as it should).
    (results / "smoke_gn" / "study.json").unlink()
    (results / "smoke_gn" / "study_config.json").unlink()
    (tree / "gn.yaml").write_text(CHANGED_GN)
    return tree


def tree_digest(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under `folder`: its SHA-256 and modification time."""
    return {
        str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="session")
def side_by_side(changed_copy: Path) -> tuple[Path, dict, dict]:
    """smoke_gn run beside the smoke study, as far as make compare reads it (its runs, tables and config record): the
    copy, and the smoke study's and the download's files before it."""
    before = {name: tree_digest(changed_copy / "results" / name) for name in ("smoke", "data")}
    # gn's runs named too: Snakemake remakes a missing intermediate file only where a target needs it.
    names = ["tables/runs.csv", "study.json", "environment.json", "runs/gn/seed1/predictions.csv"]
    targets = [f"results/smoke_gn/{name}" for name in [*names, "runs/gn/seed2/predictions.csv"]]
    snakemake(changed_copy, *targets, "--cores", "2", *SMOKE_ARGS, "gn.yaml")
    return changed_copy, before, {name: tree_digest(changed_copy / "results" / name) for name in ("smoke", "data")}


def test_two_named_studies_leave_each_others_files_alone(side_by_side: tuple[Path, dict, dict]) -> None:
    tree, before, after = side_by_side
    assert after == before  # the smoke study's files and the shared download: same bytes, not even touched
    assert (tree / "results" / "smoke_gn" / "runs" / "gn" / "seed1" / "model.pt").is_file()
    facts = json.loads((tree / "results" / "smoke_gn" / "study.json").read_text())
    assert facts["config"]["study"] == "smoke_gn"


def test_a_study_compared_with_itself_moved_nothing(smoke_study: Path, tmp_path: Path) -> None:
    done = compare(smoke_study, "results/smoke", "smoke", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Nothing moved: the 12 runs of the 6 variants smoke and smoke share")
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert len(predictions) == 12 and predictions["changed"].sum() == 0
    assert pd.read_csv(tmp_path / "out" / "config_diff.csv").empty
    assert pd.read_csv(tmp_path / "out" / "environment_diff.csv").empty
    page = (tmp_path / "out" / "compare.html").read_text()
    assert "Nothing moved" in page and 'src="data:image/png;base64,' in page and "http" not in page.split("<main>")[1]
    assert not (smoke_study / "results" / "compare").exists()


def test_a_changed_recipe_names_that_variant_and_only_it(side_by_side: tuple[Path, dict, dict]) -> None:
    tree = side_by_side[0]
    done = compare(tree, "smoke", "smoke_gn")
    assert done.returncode == 0, done.stderr
    out = tree / "results" / "compare" / "smoke..smoke_gn"
    sentence = json.loads((out / "verdict.json").read_text())["verdict"]
    assert "gn (" in sentence and "Unchanged (identical predictions): bn, ln, in, bn_l1, none." in sentence
    predictions = pd.read_csv(out / "predictions.csv")
    assert set(predictions.loc[predictions["changed"] > 0, "variant"]) == {"gn"}
    assert pd.read_csv(out / "config_diff.csv")["key"].tolist() == ["study", "variants.gn.train.schedule.max_lr"]
    variants = pd.read_csv(out / "variants.csv").set_index("variant")
    assert (variants.drop(index="gn")["reading"] == "identical").all() and variants.loc["gn", "reading"] != "identical"


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="session")
def repository(side_by_side: tuple[Path, dict, dict]) -> Path:
    """The copy as a git repository: its workflow committed, the studies' files ignored as in this one."""
    tree = side_by_side[0]
    git(tree, "init", "--quiet")
    git(tree, "add", ".")
    git(tree, "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "--quiet", "-m", "smoke")
    return tree


def test_a_revision_is_compared_through_its_own_results(repository: Path, tmp_path: Path) -> None:
    worktrees = git(repository, "worktree", "list")
    # --run: planning the revision's study runs its Snakefile, and only --run (make compare RUN=yes) allows that.
    done = compare(
        repository, "HEAD", "smoke_gn", "--study-args", "--configfile tests/smoke.yaml", "--out", str(tmp_path), "--run"
    )
    assert done.returncode == 0, done.stderr
    commit = git(repository, "rev-parse", "HEAD")
    assert "gn (" in done.stdout and "Unchanged (identical predictions): bn, ln, in, bn_l1, none." in done.stdout
    page = (tmp_path / "compare.html").read_text()
    assert commit[:10] in page and "<code>HEAD</code>" in page
    assert git(repository, "worktree", "list") == worktrees  # exported, never registered: nothing for a kill to leave


def test_a_revision_is_exported_without_a_worktree(repository: Path) -> None:
    worktrees = git(repository, "worktree", "list")
    commit = git(repository, "rev-parse", "HEAD")
    with exported_tree(repository, commit) as tree:
        # What a kill -9 here would leave: no worktree registered, and no link into the checkout.
        assert git(repository, "worktree", "list") == worktrees
        assert (tree / "Snakefile").read_bytes() == (repository / "Snakefile").read_bytes()
        assert not (tree / "results" / "smoke").exists() and not (tree / ".git").exists()
    assert not tree.parent.exists()


def test_a_revision_without_results_says_what_would_run_and_runs_nothing(repository: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(repository), str(clone)], check=True)
    shutil.copytree(repository / "results" / "smoke", clone / "results" / "smoke")
    marker = clone / "workflow" / "rules" / "common.smk"
    # The revision's code, were it run, would leave a file: planning it without RUN=yes must not run it.
    subprocess.run(["git", "-C", str(clone), "config", "user.email", "t@example.org"], check=True)
    marker.write_text(marker.read_text() + f"\nPath({str(clone / 'ran')!r}).write_text('ran')\n")
    subprocess.run(["git", "-C", str(clone), "commit", "-qam", "code that leaves a mark"], check=True)
    done = compare(clone, "HEAD", "results/smoke", "--study-args", "--configfile tests/smoke.yaml")
    assert done.returncode == 2
    assert "error: revision " in done.stderr and "runs that revision's workflow code" in done.stderr
    assert "its study's last run here took" in done.stderr  # the copied folder's benchmarks give its job time
    assert "None of its code was run" in done.stderr and "RUN=yes" in done.stderr
    assert not (clone / "ran").exists() and not (clone / "results" / "compare").exists()


@pytest.mark.parametrize(
    ("a", "message"),
    [
        (
            "no-such-revision",
            "'no-such-revision' is neither a study folder, a study under results/, nor a git revision",
        ),
        ("a b", "'a b' is not a safe study name"),
        ("workflow", "workflow: this folder holds no study (no study.json)"),
    ],
)
def test_bad_input_is_refused_naming_it_and_nothing_is_written(
    repository: Path, a: str, message: str, tmp_path: Path
) -> None:
    done = compare(repository, a, "smoke", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_the_compare_page_fits_without_sideways_scrolling(
    side_by_side: tuple[Path, dict, dict], browser, width: int
) -> None:
    page = side_by_side[0] / "results" / "compare" / "smoke..smoke_gn" / "compare.html"
    if not page.exists():
        assert compare(side_by_side[0], "smoke", "smoke_gn").returncode == 0
    browser.set_window_size(width, 900)
    browser.get(page.as_uri())
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    image = browser.execute_script(
        "const i = document.images[0]; return [i.complete, i.naturalWidth, i.getBoundingClientRect().right]"
    )
    assert image[0] and image[1] > 0 and image[2] <= width
    assert "gn (" in browser.find_element("id", "verdict").text
    if width == 1280:  # no table needs a scrollbar of its own on a laptop screen
        boxes = "Array.from(document.querySelectorAll('.scroll')).map(b => b.scrollWidth - b.clientWidth)"
        assert max(browser.execute_script(f"return {boxes}")) <= 0


def test_a_study_from_before_environment_json_is_compared_on_its_job_records(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    runs = pd.DataFrame({"variant": ["bn", "gn"], "seed": [1, 1], "test_acc": [99.4, 99.2]})
    for variant, threads in (("bn", 1), ("gn", 2)):
        (folder / "runs" / variant / "seed1").mkdir(parents=True)
        job = {"torch": "2.14.1", "python": "3.11.7", "device": "cpu", "device_name": "", "threads": threads}
        (folder / "runs" / variant / "seed1" / "job.json").write_text(json.dumps(job))
    old = Study("old", folder, {}, runs, pd.DataFrame(), job_records(folder, runs), False)
    assert old.environment == {
        "jobs": {
            "torch": ["2.14.1"],
            "python": ["3.11.7"],
            "device": ["cpu"],
            "device_name": [""],
            "threads": ["1", "2"],
        }
    }
    new = dataclasses.replace(old, environment={"jobs": {**old.environment["jobs"], "threads": ["1"]}, "cpu": "X"})
    assert environment_diff(old, new).to_dict("records") == [{"key": "jobs.threads", "a": "1, 2", "b": "1"}]


def test_a_revision_before_named_studies_writes_to_results_itself(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "config.yaml").write_text("seeds: [1]\n")
    (tmp_path / "tests" / "smoke.yaml").write_text("seeds: [1, 2]\n")
    assert study_location(tmp_path, []) == ("default", "results")
    assert study_location(tmp_path, ["--configfile", "tests/smoke.yaml"]) == ("smoke", "results")
    studies = tmp_path / "workflow" / "scripts" / "normstudy" / "studies.py"  # where it was before the wings
    studies.parent.mkdir(parents=True)
    studies.write_text("")
    (tmp_path / "tests" / "smoke.yaml").write_text("study: smoke\n")
    assert study_location(tmp_path, []) == ("default", "results/default")
    assert study_location(tmp_path, ["--configfile", "tests/smoke.yaml"]) == ("smoke", "results/smoke")
    # --config wins over the files, as in the workflow's own resolver (Snakemake's parsing of --config).
    args = ["--configfile", "tests/smoke.yaml", "--config", "seeds=[1]", "study=other", "--cores", "1"]
    assert study_location(tmp_path, args) == ("other", "results/other")
    with pytest.raises(CompareError, match="not a safe folder name"):
        study_location(tmp_path, ["--config", "study=../x"])
    # Since the package's wings, studies.py is in config/: a revision of that layout has named studies too.
    moved = studies.parent / "config" / "studies.py"
    moved.parent.mkdir()
    studies.rename(moved)
    assert study_location(tmp_path, []) == ("default", "results/default")


def test_a_config_entry_joins_the_given_ones() -> None:
    # argparse keeps the last --config only: the entry must join the user's, never follow in a second --config.
    assert with_config_entry(["--cores", "1"], "x=1") == ["--cores", "1", "--config", "x=1"]
    given = ["--configfile", "a.yaml", "--config", "study=b", "seeds=[1]", "--cores", "1"]
    assert with_config_entry(given, "x=1") == [
        "--configfile", "a.yaml", "--config", "x=1", "study=b", "seeds=[1]", "--cores", "1"
    ]  # fmt: skip


def test_seeds_on_one_side_only_are_never_identical() -> None:
    # Seed 1 predicts alike on both sides; B's seed 2 scored 9 points more: not "identical", not "Nothing moved".
    a = study("a", {"bn": [90.0]}, seeds=[1])
    b = study("b", {"bn": [90.0, 99.0]}, seeds=[1, 2])
    table = variant_table(a, b, ["bn"], PLAN, changes({"bn": 0}))
    row = table.iloc[0]
    assert row["reading"] == "inconclusive" and row["seeds_only_b"] == "2" and row["seeds_only_a"] == ""
    sentence = verdict(table, a, b, 0.2)
    assert not sentence.startswith("Nothing moved") and "seed 2 in b only" in sentence


@pytest.fixture
def smoke_copy(smoke_study: Path, tmp_path: Path) -> Path:
    """The smoke study's folder alone, copied (for edits)."""
    copy = tmp_path / "smoke"
    shutil.copytree(smoke_study / "results" / "smoke", copy)
    return copy


def test_accuracies_come_from_the_run_files_never_from_a_table(smoke_copy: Path) -> None:
    honest = load_study(smoke_copy, "smoke").runs.set_index(["variant", "seed"])["test_acc"]
    runs = pd.read_csv(smoke_copy / "tables" / "runs.csv")
    assert honest.to_dict() == pytest.approx(runs.set_index(["variant", "seed"])["test_acc"].to_dict(), abs=1e-4)
    runs.loc[runs["variant"] == "gn", "test_acc"] = [99.9, float("nan")]
    runs.to_csv(smoke_copy / "tables" / "runs.csv", index=False)
    assert load_study(smoke_copy, "smoke").runs.set_index(["variant", "seed"])["test_acc"].equals(honest)
    metrics = smoke_copy / "runs" / "gn" / "seed1" / "metrics.json"
    for value in (99.9, float("nan")):
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "test_acc": value}))
        with pytest.raises(CompareError, match=rf"smoke: a run file of .*{metrics}: test_acc {value} disagrees"):
            load_study(smoke_copy, "smoke")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text[: len(text) // 2], "study.json is unreadable (truncated or not JSON)"),
        (lambda text: json.dumps({"config": {**json.loads(text)["config"], "analysis": None}}), "records no analysis"),
        (
            lambda text: json.dumps(
                {"config": {**json.loads(text)["config"], "analysis": {"margin": "0.2", "alpha": 0.05}}}
            ),
            "records an unusable config (analysis.margin '0.2', analysis.correction None)",
        ),
    ],
)
def test_a_malformed_study_record_is_one_line_naming_the_file(smoke_copy: Path, edit, message: str) -> None:
    facts = smoke_copy / "study.json"
    facts.write_text(edit(facts.read_text()))
    with pytest.raises(CompareError, match=re.escape(message)) as error:
        load_study(smoke_copy, "smoke")
    assert str(facts) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "a",
    [
        "x'; touch {mark}; echo '",
        'x"; touch {mark}; echo "',
        "$(touch {mark})",
        "`touch {mark}`",
    ],
)
def test_make_compare_passes_its_arguments_without_a_shell(a: str, tmp_path: Path) -> None:
    mark = tmp_path / "pwned"
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "compare",
            f"A={a.format(mark=mark)}",
            "B=smoke",
            f"STUDY_ARGS=; touch {mark}",
        ],
        cwd=REPO,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    # Refused (as an unknown revision, or, where make reads $(...) as its own variable, as empty), and nothing ran.
    assert done.returncode != 0 and ("error: " in done.stderr or "usage: " in done.stderr), done.stderr
    assert not mark.exists()


def test_an_interrupted_comparison_leaves_the_last_one_whole(
    smoke_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import compare as compare_script

    target = tmp_path / "compare" / "a..b"
    a = load_study(smoke_study / "results" / "smoke", "a")
    sources = (compare_script.Source("a", "a"), compare_script.Source("b", "b"))
    compare_script.compare(a, a, sources, target)
    before = tree_digest(target)
    # A comparison stopped half-way (here by an error after its first table): the last one stays whole.
    written = compare_script._write_comparison

    def stopped(*args: object) -> str:
        out = args[-1]
        (out / "variants.csv").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(compare_script, "_write_comparison", stopped)
    with pytest.raises(KeyboardInterrupt):
        compare_script.compare(a, a, sources, target)
    assert tree_digest(target) == before and sorted(p.name for p in target.parent.iterdir()) == ["a..b"]
    # What a kill -9 leaves (a folder named by a process that no longer runs) is removed by the next comparison.
    dead = subprocess.Popen(["true"])
    dead.wait()
    (target.parent / f".a..b.part-{dead.pid}").mkdir()
    monkeypatch.setattr(compare_script, "_write_comparison", written)
    compare_script.compare(a, a, sources, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["a..b"]
