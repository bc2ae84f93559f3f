"""The HTML report: complete, self-contained, escaped, and rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
import tempfile
import zipfile
from html import unescape
from pathlib import Path
from types import SimpleNamespace

import describe_study
import pandas as pd
import pytest
import yaml
from conftest import REPO, snakemake
from jinja2 import Environment
from test_config import merged, shipped

import report
from normstudy.analysis.batches import ordering
from normstudy.config.recipes import is_packed, variant_batch_sizes
from normstudy.config.study import FetchSettings, Study
from normstudy.config.validation import validate_config
from normstudy.report.model_section import conv_note, group_note, variant_rows
from normstudy.report.page import BatchInputs, ReportInputs, piece_context, tuning_context
from normstudy.report.provenance import git_state
from normstudy.report.robustness_section import TABLES as ROBUSTNESS_TABLES
from normstudy.report.robustness_section import RobustnessInputs
from normstudy.values import config_digest

pytestmark = pytest.mark.workflow
FETCH_KEYS = {field.name for field in dataclasses.fields(FetchSettings)}

# Five figures, a misclassified grid per variant (six), the tuning figure and the searches recorded beside it of the
# default study's norms (the control's and instance norm's extended grid), the batch figure and two robustness figures.
IMAGES = 5 + 6 + 1 + 2 + 1 + 2
TEMPLATE = REPO / "workflow" / "report" / "index.html.j2"


def smoke_config() -> dict:
    """The smoke study's config as the workflow holds it: validated, less amend_study (how a run may write its
    folder, not part of the study: common.smk takes it out)."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    config = validate_config(merged(base, yaml.safe_load((REPO / "tests" / "smoke.yaml").read_text())))
    config.pop("amend_study")
    return config


def without_fetch(config: dict) -> dict:
    """The config the report receives: its fetch-only data keys left out."""
    return {**config, "data": {k: v for k, v in config["data"].items() if k not in FETCH_KEYS}}


RECORD = REPO / "workflow" / "resources" / "tuning"


def batch_inputs(study: Path, config: dict) -> BatchInputs | None:
    """The smoke batch study's files, as the report rule passes them (None when the config leaves it out)."""
    if not config["batch_study"]["enabled"]:
        return None
    root, jobs = study / "results" / "smoke" / "batch_study", []
    for variant in config["batch_study"]["variants"]:
        for size in variant_batch_sizes(Study.from_config(config), variant):
            packed = is_packed(Study.from_config(config), size)
            for seed in config["batch_study"]["seeds"][:1] if packed else config["batch_study"]["seeds"]:
                folder = study / "results" / "smoke" / "benchmarks" / "batch_study" / "train" / variant
                jobs.append(
                    {
                        "variant": variant,
                        "seed": seed,
                        "batch_size": size,
                        "job": root / "runs" / variant / f"batch{size}" / f"seed{seed}" / "job.json",
                        "benchmark": folder / (f"batch{size}.tsv" if packed else f"batch{size}/seed{seed}.tsv"),
                    }
                )
    tables = [root / f"{name}.csv" for name in ("summary", "comparisons", "changes", "gate")]
    return BatchInputs(*tables, root / "error_vs_batch_size.png", jobs)


def report_inputs(study: Path, config: dict, record: Path = RECORD) -> ReportInputs:
    """The report's inputs from the smoke study's files, with another config, as the report rule passes them."""
    tables = study / "results" / "smoke" / "tables"
    runs = [
        {
            "variant": v,
            "seed": s,
            "job": study / "results" / "smoke" / "runs" / v / f"seed{s}" / "job.json",
            "benchmark": study / "results" / "smoke" / "benchmarks" / "train" / v / f"seed{s}.tsv",
            "metrics": study / "results" / "smoke" / "runs" / v / f"seed{s}" / "metrics.json",
            "grid": study / "results" / "smoke" / "runs" / v / f"seed{s}" / "misclassified.png",
        }
        for v in config["variants"]
        for s in config["seeds"]
    ]
    # What the describe_study rule writes for this config, beside the smoke study (which stays as it was).
    facts = Path(tempfile.mkdtemp()) / "study.json"
    describe_study.main(Study.from_config(copy.deepcopy(config)), record / "summary.csv", facts)
    return ReportInputs(
        facts,
        tables / "summary.csv",
        tables / "comparisons.csv",
        tables / "per_class.csv",
        tables / "runs.csv",
        tables / "model_summary.csv",
        tables / "receptive_field.csv",
        sorted((study / "results" / "smoke" / "figures").glob("*.png")),
        runs,
        study / "results" / "data" / "synthetic" / "raw" / "provenance.json",
        record / "summary.csv",
        record / "search.json",
        record / "validation_accuracy.png",
        tables / "family.csv",
        tables / "analysis.json",
        RobustnessInputs(
            {name: tables / f"robustness_{name}.csv" for name in ROBUSTNESS_TABLES},
            tables / "robustness.json",
            study / "results" / "smoke" / "figures" / "robustness.png",
            study / "results" / "smoke" / "figures" / "corruptions.png",
        ),
        batch_inputs(study, config),
        study / "results" / "smoke" / "environment.json",
        control=tables / "control.csv" if config["analysis"].get("control") else None,
        tuning_pieces=studied_pieces(config),
    )


def studied_pieces(config: dict) -> list[Path]:
    """The recorded tuning pieces of norms this config studies, as the report rule lists them (inputs/tune.smk)."""
    studied = {name for name, variant in config["variants"].items() if variant.get("enabled", True)}
    return [
        path.parent
        for path in sorted((REPO / "workflow" / "resources" / "tuning" / "pieces").glob("*/search.json"))
        if set(json.loads(path.read_text())["variants"]) <= studied
    ]


def render_report(study: Path, config: dict, out: Path, record: Path = RECORD) -> str:
    """Render the report from the smoke study's files with another config, as the report rule would."""
    report.write_page(report_inputs(study, config, record), TEMPLATE, out)
    return out.read_text()


def test_report_has_every_section_and_embeds_every_image(smoke_study: Path) -> None:
    html = (smoke_study / "report" / "smoke" / "index.html").read_text()
    for section in (
        "study",
        "tuning",
        "summary",
        "reproduce",
        "curves",
        "comparisons",
        "misclassified",
        "confusion",
        "model",
        "seeds",
        "provenance",
        "batch-size",
        "shift",
    ):
        assert f'<section id="{section}">' in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == IMAGES  # five figures, a misclassified grid per variant, the tuning and batch figures
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//', html), "the page must not fetch anything"
    assert "<script" not in html
    assert "normstudy smoke study" in html
    for variant in ("bn", "gn", "ln", "in", "bn_l1"):
        assert f'<td class="text">{variant}</td>' in html
    assert "7,652" in html


def tuning_record(folder: Path, config: dict, chosen: dict[str, str]) -> Path:
    """A recorded search of `config`'s grid in `folder`, choosing `chosen[variant]` for each variant."""
    from normstudy.analysis.tuning import search_digest
    from normstudy.config.recipes import tuning_points

    folder.mkdir()
    names = list(config["variants"])
    rows = [
        {
            "variant": v,
            "point": p,
            "n_seeds": 2,
            "val_acc_mean": 99.0 + (p == chosen[v]) / 10,
            "val_acc_std": 0.1,
            "val_acc_ci95_low": 98.1,
            "val_acc_ci95_high": 99.9,
            "val_loss_mean": 0.03,
            "within_noise": p == chosen[v],
            "chosen": p == chosen[v],
        }
        for v in names
        for p in tuning_points(Study.from_config(config))
    ]
    pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)
    record = {
        "search_sha256": search_digest(Study.from_config(without_fetch(config)), names),
        "commit": "0" * 40,
        "variants": names,
        "grid": config["tune"]["grid"],
        "bracket": True,
        "seeds": config["tune"]["seeds"],
        "runs": 20,
        "validation_images": 200,
        "machine": "test CPU",
        "cores": 2,
        "devices": ["cpu"],
        "torch": "x",
        "wall_time": "0:01:00 (60 s)",
    }
    (folder / "search.json").write_text(json.dumps(record))
    shutil.copyfile(RECORD / "validation_accuracy.png", folder / "validation_accuracy.png")
    return folder


def method_text(html: str) -> str:
    """The words of the report's method section."""
    section = html.split('<section id="tuning">', 1)[1].split("</section>", 1)[0]
    return " ".join(re.sub(r"<[^>]+>", " ", section).split())


def test_method_section_says_whether_the_config_runs_the_recorded_choice(smoke_study: Path, tmp_path: Path) -> None:
    smoke = smoke_config()
    at_005 = {name: {"train": {"schedule": {"max_lr": 0.05}}} for name in smoke["variants"]}
    declared = smoke["analysis"]["decisions"]
    assert any(decision["seen"] == "test" for decision in declared)
    unseen = {"analysis": {**smoke["analysis"], "decisions": [{"choice": "grid widened", "seen": "validation"}]}}
    config = without_fetch(validate_config(merged(smoke, {"variants": at_005, **unseen})))
    # This config runs every variant at max_lr 0.05: a search that chose 0.05 for all is followed...
    followed = tuning_record(tmp_path / "followed", config, dict.fromkeys(config["variants"], "max_lr=0.05"))
    text = method_text(render_report(smoke_study, config, tmp_path / "a.html", followed))
    assert "This config's search is the recorded one (search digest" in text
    assert "every variant runs with its chosen values" in text
    assert "Nothing here was chosen on the test set" in text and "the last 200" in text
    assert text.count("✓ chosen") == 6 + 2  # each variant's, and the recorded pieces' (the control, instance norm)
    # The declared rule is stated: points within noise of the best are alike, their middle chosen, no edge.
    assert "are alike, and the middle one of them in grid order is chosen" in text
    assert "a choice at an edge of the grid would have failed the search" in text
    # The claim stands only while no declared decision saw the test set.
    seen_test = {**config, "analysis": {**config["analysis"], "decisions": declared}}
    text = method_text(render_report(smoke_study, seen_test, tmp_path / "t.html", followed))
    assert "Nothing here was chosen on the test set" not in text and "(after seeing test results)" in text
    # ... one that chose 0.1 for gn is not, and the page names gn.
    chose = {**dict.fromkeys(config["variants"], "max_lr=0.05"), "gn": "max_lr=0.1"}
    text = method_text(
        render_report(smoke_study, config, tmp_path / "b.html", tuning_record(tmp_path / "gn", config, chose))
    )
    assert "but gn runs with other values than the search chose" in text
    # Another grid makes the record another search: the page says so instead of claiming it.
    other = {**config, "tune": {**config["tune"], "seeds": [7, 8]}}
    text = method_text(render_report(smoke_study, other, tmp_path / "c.html", followed))
    assert "is not this config's" in text and "make tune" in text


def test_report_states_the_verdict_plainly(smoke_study: Path) -> None:
    html = (smoke_study / "report" / "smoke" / "index.html").read_text()
    comparisons = (smoke_study / "results" / "smoke" / "tables" / "comparisons.csv").read_text().splitlines()
    assert len(comparisons) == 1 + 15  # header and every pair of six variants
    facts = json.loads((smoke_study / "results" / "smoke" / "tables" / "analysis.json").read_text())
    assert facts["df"] == (6 - 1) * (2 - 1)  # 12 runs less 1 + 5 variant and 1 seed effects
    assert (
        "<strong>Verdict.</strong> Each variant against bn, by the declared model (variant + seed, 5 residual" in html
    )
    assert "Holm-corrected over the 5 comparisons" in unescape(html)
    # Non-significance is never read as sameness (the method text may name the null hypothesis "no difference").
    assert "no significant difference" not in html and "within seed-to-seed noise" not in html
    family = pd.read_csv(smoke_study / "results" / "smoke" / "tables" / "family.csv")
    assert list(family["variant"]) == ["gn", "ln", "in", "bn_l1", "none"] and set(family["reference"]) == {"bn"}
    control = pd.read_csv(smoke_study / "results" / "smoke" / "tables" / "control.csv")
    assert list(control["variant"]) == ["bn", "gn", "ln", "in", "bn_l1"] and set(control["reference"]) == {"none"}
    assert "<strong>Sensitivity.</strong> The model's residual sd is" in unescape(html)
    assert "<h3>Every pair (exploratory)</h3>" in html and "No claim\nabove rests on this table" in html


def test_key_results_come_first(smoke_study: Path) -> None:
    html = (smoke_study / "report" / "smoke" / "index.html").read_text()
    order = [html.index(marker) for marker in ('id="key-results"', '<section id="summary">', "<nav", 'id="study"')]
    assert order == sorted(order)
    key = html[html.index('id="key-results"') : html.index("</section>", html.index('id="key-results"'))]
    summary = pd.read_csv(smoke_study / "results" / "smoke" / "tables" / "summary.csv")
    best = summary[summary["variant"] != "none"].sort_values("test_acc_mean").iloc[-1]  # the norms, not the control
    assert f"Highest mean test accuracy of a norm: {best['variant']}, {best['test_acc_mean']:.2f} %" in key
    assert key.index("Normalization") < key.index("Highest mean test accuracy")  # the control's sentence first
    assert "synthetic test images (not MNIST:" in key


def test_the_shift_section_prints_what_the_robustness_files_say(smoke_study: Path) -> None:
    html = unescape((smoke_study / "report" / "smoke" / "index.html").read_text())
    section = html[html.index('<section id="shift">') : html.index('<section id="misclassified">')]
    facts = json.loads((smoke_study / "results" / "smoke" / "tables" / "robustness.json").read_text())
    for name in ("overall", "flips", "adaptation", "contrast"):
        assert facts["findings"][name] in section
    # One row per set, clean first, in three tables: every variant with its running statistics, then each BatchNorm
    # model's test-time statistics (bn, bn_l1).
    sets = re.findall(r'<tr><td class="text">(clean|contrast 3|fog 3)</td>', section)
    assert sets == ["clean", "contrast 3", "fog 3"] * 3, sets
    assert section.index("<p>bn, with test-time statistics:</p>") < section.index("<p>bn_l1, with test-time")
    for column in ("bn · adapted to the set", "bn · adapted per 32 images", "bn_l1 · PreciseBN", "in", "bn"):
        assert f"<th>{column}</th>" in section
    assert "in · adapted" not in section and "Schneider et al. 2020" in section
    # The declared endpoint is named (MNIST-C's kinds: fog alone here), and the intensity shifts shown apart.
    assert "The declared endpoint is the mean accuracy over MNIST-C's kinds (1\nsets: fog)" in section
    assert facts["endpoint"] == {"name": "mnist_c", "words": "MNIST-C's kinds", "kinds": ["fog"], "sets": 1}
    groups = re.findall(r'<tr><td class="text">(intensity shifts|other kinds)</td>', section)
    assert groups == ["intensity shifts"] * 5, groups  # every variant against bn: gn, ln, in, bn_l1, none


def test_report_says_how_to_reproduce_it(smoke_study: Path) -> None:
    html = (smoke_study / "report" / "smoke" / "index.html").read_text()
    section = html[html.index('<section id="reproduce">') : html.index('<section id="provenance">')]
    assert "snakemake --cores all --configfile config-used.yaml" in section
    assert "git checkout " in section
    embedded = yaml.safe_load(unescape(re.search(r"<details>.*?<pre>(.*?)</pre>", section, re.S).group(1)))
    assert "sources" not in embedded["data"] and "timeout_s" not in embedded["data"]  # fetch-only keys
    assert embedded == without_fetch(smoke_config())
    # Valid on its own, and what decides the numbers comes back unchanged.
    revalidated = validate_config(embedded)
    assert revalidated.pop("amend_study") is False  # the schema's default: a rerun from this file amends nothing
    assert without_fetch(revalidated) == without_fetch(smoke_config())


def test_publish_writes_a_folder_for_a_static_host(smoke_study: Path) -> None:
    site = smoke_study / "report" / "smoke" / "site"
    snakemake(smoke_study, "publish", "--cores", "1", "--configfile", "tests/smoke.yaml")
    try:
        html = (site / "index.html").read_text()
        targets = re.findall(r'(?:src|href)="([^"#]+)"', html)
        assert not [t for t in targets if t.startswith(("data:", "/", "http:", "https:", "file:"))]
        assert all((site / t).is_file() for t in targets), [t for t in targets if not (site / t).is_file()]
        assert sum(t.endswith(".svg") for t in targets) == 8 and "tables/summary.csv" in targets
        assert "figures/robustness.svg" in targets and "tables/robustness_cells.csv" in targets
        assert "tables/batch_study/summary.csv" in targets and "figures/error_vs_batch_size.svg" in targets
        assert sorted(p.name for p in (site / "tables").glob("*.csv")) == sorted(
            p.name for p in (smoke_study / "results" / "smoke" / "tables").glob("*.csv")
        )
        assert sorted(p.name for p in (site / "tables" / "batch_study").iterdir()) == [
            "changes.csv", "comparisons.csv", "gate.csv", "runs.csv", "summary.csv",
        ]  # fmt: skip
        assert yaml.safe_load((site / "config-used.yaml").read_text()) == without_fetch(smoke_config())
    finally:
        shutil.rmtree(site)


def test_report_provenance_traces_the_numbers(smoke_study: Path) -> None:
    html = (smoke_study / "report" / "smoke" / "index.html").read_text()
    provenance = json.loads((smoke_study / "results" / "data" / "synthetic" / "raw" / "provenance.json").read_text())
    for info in provenance["files"].values():
        assert info["md5"] in html
    summary = (smoke_study / "results" / "smoke" / "tables" / "summary.csv").read_text().splitlines()[1].split(",")
    assert f"{float(summary[4]):,.2f}" in html  # bn's mean test accuracy, as the table holds it
    assert "config hash" in html and "git commit" in html and "torch 2.14.1" in html


def section_text(html: str, section: str) -> str:
    """The words of the report's section with this id (tags dropped, white space collapsed)."""
    part = html.split(f'id="{section}"', 1)[1].split(">", 1)[1].split("</section>", 1)[0]
    return " ".join(unescape(re.sub(r"<[^>]+>", "", part)).split())


def test_batch_size_section_says_what_the_numbers_say(smoke_study: Path) -> None:
    html = (smoke_study / "report" / "smoke" / "index.html").read_text()
    text = section_text(html, "batch-size")
    root = smoke_study / "results" / "smoke" / "batch_study"
    summary = pd.read_csv(root / "summary.csv")
    tables = [pd.read_csv(root / f"{name}.csv") for name in ("changes", "comparisons", "gate")]
    found = ordering(summary, *tables, ghost=True)
    assert " ".join(found.text.split()) in text  # the verdict, generated from the tables
    key = section_text(html, "key-results")
    assert f"Batch size (bn, gn): {found.sentences[0].rstrip('.')} (see Batch size)." in key
    # One row per statistics batch size, largest first; gn ran at the reference alone; the GN paper's figure where it
    # has that size.
    rows = re.findall(r"<tr><td>(\d+)</td>", html.split('id="batch-size"')[1])
    assert rows[:3] == ["64", "16", "4"]
    bn_4 = summary[(summary["variant"] == "bn") & (summary["batch_size"] == 4)].iloc[0]
    assert f"{bn_4['test_err_mean']:.2f}" in text and f"{bn_4['precise_err_mean']:.2f}" in text
    assert "27.3" in text and "24.1" in text  # the paper's batch 4
    assert "Ghost batch norm: every run keeps its recipe" in text and "Convergence gate:" in text
    assert "PreciseBN" in text and "were trained as one network" not in text
    provenance = section_text(html, "provenance")
    assert "over all 20 training jobs (the main study's and the batch study's)" in provenance  # 12 + 8 jobs


def test_a_study_without_the_batch_study_says_so(smoke_study: Path, tmp_path: Path) -> None:
    config = without_fetch(validate_config(merged(smoke_config(), {"batch_study": {"enabled": False}})))
    html = render_report(smoke_study, config, tmp_path / "index.html")
    assert "Not run in this study (batch_study.enabled: false)." in section_text(html, "batch-size")
    assert "Test error against the statistics batch size" not in html and len(re.findall(r"<img ", html)) == IMAGES - 1
    provenance = section_text(html, "provenance")
    assert "over all 12 training jobs" in provenance and "the batch study's" not in provenance


def test_config_text_is_escaped(smoke_study: Path, tmp_path: Path) -> None:
    config = smoke_config()
    config["report"]["title"] = '<script>alert("x")</script> & <b>bold</b>'
    html = render_report(smoke_study, config, tmp_path / "index.html")
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_snakemake_report_zip_opens_on_the_studys_commit_config_and_key_results(smoke_study: Path) -> None:
    metadata = yaml.safe_load((smoke_study / "results" / "smoke" / "report_metadata.yaml").read_text())
    study = json.loads((smoke_study / "results" / "smoke" / "study.json").read_text())
    assert metadata["Config SHA-256"] == config_digest(study["config"])
    git = git_state(smoke_study)  # the copy the tests run is not a git checkout, and says so
    assert metadata["Commit"] == git.commit + (" (with uncommitted changes)" if git.dirty else "")
    html = unescape((smoke_study / "report" / "smoke" / "index.html").read_text())
    key = html[html.index('id="key-results"') : html.index("</section>", html.index('id="key-results"'))]
    assert metadata["Key results"] and all(line in key for line in metadata["Key results"])
    target = smoke_study / "report" / "smoke" / "snakemake-report.zip"
    snakemake(smoke_study, "--configfile", "tests/smoke.yaml", "--report", "report/smoke/snakemake-report.zip",
              "--report-metadata", "results/smoke/report_metadata.yaml")  # fmt: skip
    try:
        with zipfile.ZipFile(target) as archive:
            page = next(archive.read(name) for name in archive.namelist() if name.endswith("report.html"))
        assert metadata["Config SHA-256"].encode() in page
    finally:
        target.unlink()


@pytest.mark.browser
def test_report_renders_in_chromium(smoke_study: Path, browser, tmp_path: Path) -> None:
    page = smoke_study / "report" / "smoke" / "index.html"
    browser.set_window_size(1280, 900)
    browser.get(page.as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth, "
        "height: i.naturalHeight, shown: i.getBoundingClientRect().width, alt: i.alt}))"
    )
    assert len(images) == IMAGES
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["shown"] > 100, image
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(name.startswith("data:") for name in fetched), fetched
    assert browser.title == "normstudy smoke study"
    screenshot = smoke_study / "report" / "smoke" / "screenshot.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    shutil.copy(screenshot, tmp_path / "screenshot.png")


@pytest.mark.browser
def test_key_results_and_summary_fill_the_first_laptop_screen(smoke_study: Path, browser, tmp_path: Path) -> None:
    browser.set_window_size(1280, 800)
    browser.get((smoke_study / "report" / "smoke" / "index.html").as_uri())
    height = browser.execute_script("return window.innerHeight")
    # The key results whole, and the summary table begun: its header and first rows (a zoo's table of thirteen norms
    # cannot fit a laptop's first screen, and needs not).
    box = browser.execute_script("return document.querySelector('#key-results').getBoundingClientRect().toJSON()")
    assert box["top"] >= 0 and box["bottom"] <= height, box
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#summary table tr')).map(r => r.getBoundingClientRect().bottom)"
    )
    assert rows[2] <= height, (rows, height)  # the header and two variants
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    table_overflow = browser.execute_script(
        "return Array.from(document.querySelectorAll('.scroll')).map(b => b.scrollWidth - b.clientWidth)"
    )
    assert max(table_overflow) <= 0  # no table needs a horizontal scrollbar at 1280 px
    browser.save_screenshot(str(tmp_path / "first-screen.png"))


@pytest.mark.browser
def test_report_fits_a_phone_screen(smoke_study: Path, browser) -> None:
    browser.set_window_size(390, 844)
    browser.get((smoke_study / "report" / "smoke" / "index.html").as_uri())
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1  # wide tables scroll inside their box, not the page
    widths = browser.execute_script("return Array.from(document.images).map(i => i.getBoundingClientRect().width)")
    assert max(widths) <= 390
    boxes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#key-results, .verdict, pre, p, h1, h2'))"
        ".map(e => e.getBoundingClientRect().right)"
    )
    assert max(boxes) <= 390  # text wraps: nothing runs off the right edge


@pytest.mark.browser
def test_escaped_title_shows_as_text_in_the_browser(smoke_study: Path, browser, tmp_path: Path) -> None:
    config = smoke_config()
    title = '<img src=x onerror="document.title=1"> & co'
    config["report"]["title"] = title
    page = tmp_path / "index.html"
    render_report(smoke_study, config, page)
    browser.get(page.as_uri())
    assert browser.find_element("css selector", "h1").text == title
    assert browser.title == title
    assert len(browser.execute_script("return document.images")) == IMAGES


def test_a_search_recorded_beside_the_main_one_is_shown_with_whether_it_is_this_configs(tmp_path: Path) -> None:
    piece = tmp_path / "pieces" / "zoo_none"
    shutil.copytree(REPO / "workflow" / "resources" / "tuning", piece)
    default = Study.from_config(validate_config(merged(shipped(), {})))
    shown = piece_context(piece, default, lambda path, name: f"{name}:{path.name}")
    assert shown["name"] == "zoo_none" and shown["figure"] == "tuning_zoo_none:validation_accuracy.png"
    # The recorded search is the default config's search of its five variants; each runs with its choice but bn_l1,
    # which runs at bn's rate (a declared decision: the penalty's effect alone), and in, which runs with the choice
    # of its own search on an extended grid (the piece tune_in, checked below).
    assert shown["same_search"]
    assert shown["uses_choice"] == {"bn": True, "gn": True, "ln": True, "in": False, "bn_l1": False}
    extended = piece_context(REPO / "workflow/resources/tuning/pieces/tune_in", default, lambda path, name: name)
    assert extended["same_search"] and extended["uses_choice"] == {"in": True}
    assert len(shown["rows"]) == 30 and shown["record"]["machine"]
    # A piece is judged on its own grid and seeds (it may extend the main grid): a config searching other seeds or
    # points still runs these variants as the piece did, but another recipe does not.
    other_grid = {"tune": {"seeds": [101, 103], "grid": {"train.schedule.max_lr": [1.6, 3.2]}}}
    elsewhere = Study.from_config(validate_config(merged(shipped(), other_grid)))
    assert piece_context(piece, elsewhere, lambda path, name: name)["same_search"]
    other = Study.from_config(validate_config(merged(shipped(), {"train": {"epochs": 14}})))
    assert not piece_context(piece, other, lambda path, name: name)["same_search"]


def test_a_variant_run_with_its_own_extended_search_is_not_said_to_deviate(tmp_path: Path) -> None:
    # The default config runs in at 1.6, its own extended search's choice (the piece tune_in), not the main search's.
    default = Study.from_config(validate_config(merged(shipped(), {})))
    tuning = REPO / "workflow" / "resources" / "tuning"
    record = json.loads((tuning / "search.json").read_text())
    uses = {"bn": True, "gn": True, "ln": True, "in": False, "bn_l1": False}
    study = {"tuning": {"search_sha256": record["search_sha256"], "uses_choice": uses}}
    inputs = SimpleNamespace(
        tuning_search=tuning / "search.json",
        tuning_summary=tuning / "summary.csv",
        tuning_figure=tuning / "validation_accuracy.png",
        tuning_pieces=sorted((tuning / "pieces").iterdir()),
    )
    shown = tuning_context(study, default, list(uses), inputs, lambda path, name: name)
    assert shown["elsewhere"] == ["in"] and shown["other_values"] == ["bn_l1"] and not shown["all_use_choice"]
    # The template's sentence on it, rendered alone from its line of the page.
    template = (REPO / "workflow" / "report" / "index.html.j2").read_text().splitlines()
    (line,) = [line for line in template if line.startswith("<p>{% if tuning.all_use_choice %}")]
    text = Environment(autoescape=True).from_string("{% set t = tuning.record %}" + line).render(tuning=shown)
    assert "but bn_l1 runs with other values than the search chose; in with the choice of its own search" in text


def test_the_model_section_says_what_group_norm_is_here_and_how_each_variants_convolutions_start() -> None:
    zoo = Study.from_config(
        validate_config(merged(shipped(), yaml.safe_load((REPO / "studies" / "zoo.yaml").read_text())))
    )
    names = list(zoo.variants)
    summary = pd.DataFrame({"variant": names, "params": [7652] * len(names)})
    groups = {row["name"]: row["groups"] for row in variant_rows(zoo, summary)}
    # Per layer on 8, 8, 8, 12, 14, 8, 26, 50 channels: 2 groups each, or channels // 2 groups of 2.
    assert groups["gn"] == "2" and groups["gn_c2"] == "4–25" and groups["evo"] == "2" and groups["bn"] == "–"
    note = group_note(zoo, names)
    assert "32 groups" in note and "8 to 50 channels wide" in note and "1 or 2" in note
    assert "gn, 2 groups of 4–25 channels" in note and "gn_c2, 4–25 groups of 2 channels" in note
    assert group_note(zoo, ["bn", "ln", "none"]) == ""
    conv = conv_note(zoo, names)
    assert "no bias in any variant" in conv and "except in none, dyt: He-initialized" in conv
    assert "In gn_ws each convolution's weights are standardized" in conv
    assert "He-initialized" not in conv_note(zoo, ["bn", "gn"])
