"""Careless input refused before any job: config files read as written (keys twice, leading zeros, base-60
numbers, bare exponents, bad encodings), control characters in shown text, CUDA where there is no GPU."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import snakemake

from normstudy.config.sources import load_yaml, merge_sources
from normstudy.values import ConfigError


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("seeds: [1]\ntrain:\n  epochs: 2\ntrain:\n  epochs: 3\n", "key 'train' is written twice (lines 2 and 4)"),
        ("train:\n  epochs: 2\n  epochs: 3\n", "key 'epochs' is written twice (lines 2 and 3)"),
        ("seeds: [010]\n", "line 1: 010 has a leading zero, which YAML reads as an octal number (8); write 10"),
        ("seeds: [08]\n", "line 1: 08 has a leading zero, which YAML reads as text; write 8"),
        ("train:\n  schedule: {max_lr: 1e-4}\n", "line 2: 1e-4 is text to YAML, which needs a decimal point"),
        ("train:\n  schedule: {max_lr: -2E3}\n", "write -2.0E3"),
        ("train:\n  schedule: {max_lr: 1e400}\n", "line 2: 1e400 is not a finite number"),
        ("data: {timeout_s: 1:30}\n", "line 1: 1:30 is read by YAML as a base-60 number (90)"),
        ("seeds: [1\n", "line 2, column 1: not valid YAML"),
        ("- 1\n- 2\n", "holds a list, not keys and values"),
    ],
)
def test_a_config_read_differently_from_how_it_is_written_is_refused_naming_the_line(
    tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "extra.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert str(caught.value).startswith(f"{path}")
    assert words in str(caught.value)


def test_what_yaml_reads_as_written_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "extra.yaml"
    path.write_text(
        "train:\n  schedule: {max_lr: 1.0e-4}\nreport: {title: \"010\", subtitle: '1e-4'}\n"
        "base: &base {epochs: 2}\nother: {<<: *base, epochs: 3}\nseeds: [0, 10, -3]\n"
    )
    assert load_yaml(path) == {
        "train": {"schedule": {"max_lr": 0.0001}},
        "report": {"title": "010", "subtitle": "1e-4"},
        "base": {"epochs": 2},
        "other": {"epochs": 3},  # a merge key's values may be overridden: that is what it is for
        "seeds": [0, 10, -3],
    }


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"seeds: [1]\nreport: {title: caf\xe9}\n", "not UTF-8 text (byte 0xe9 at offset 30); save it as UTF-8"),
        (None, "no such config file"),
    ],
)
def test_an_unreadable_config_file_is_named_in_one_line(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "extra.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(words)) as caught:
        load_yaml(path)
    assert str(caught.value).startswith(f"{path}") and "\n" not in str(caught.value)


@pytest.mark.workflow
def test_snakemake_refuses_a_key_written_twice_before_any_job(workflow_copy: Path) -> None:
    config = workflow_copy / "config.yaml"
    config.write_text(config.read_text() + "\nseeds: [7]\n")  # config.yaml already has its seeds
    done = snakemake(workflow_copy, "-n", check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "config.yaml: key 'seeds' is written twice" in output and "Traceback" not in output
    assert list((workflow_copy / "results").iterdir()) == []


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("train:\n  schedule:\n    max_lr: 5e-2\n", ("extra.yaml, line 3: 5e-2 is text to YAML", "write 5.0e-2")),
        (
            'report:\n  title: "Norms \\e[2J\\u202e study"\n',
            ("'report.title': holds the control character U+001B (ESC) at position 7; remove it",),
        ),
    ],
    ids=["bare-exponent", "control-character"],
)
def test_snakemake_refuses_a_configfile_before_any_job_saying_what_to_write(
    workflow_copy: Path, text: str, words: tuple[str, ...]
) -> None:
    (workflow_copy / "extra.yaml").write_text(text)
    done = snakemake(workflow_copy, "--cores", "1", "--configfile", "extra.yaml", check=False, refused=True)
    assert done.returncode != 0
    assert all(part in done.stdout + done.stderr for part in words), done.stdout + done.stderr
    assert list((workflow_copy / "results").iterdir()) == []


@pytest.mark.workflow
def test_the_plan_is_printed_and_cuda_without_a_gpu_refused_before_any_local_job(workflow_copy: Path) -> None:
    import torch

    (workflow_copy / "cuda.yaml").write_text("variants:\n  gn:\n    train: {device: cuda}\n")
    configs = ("tests/smoke.yaml", "cuda.yaml")
    # A target and what it needs: gn's two seeds and bn's first, and the batch study's bn at statistics batch 4.
    targets = [f"results/smoke/runs/{run}/model.pt" for run in ("gn/seed1", "gn/seed2", "bn/seed1")]
    targets.append("results/smoke/batch_study/runs/bn/batch4/seed2/model.pt")
    done = snakemake(workflow_copy, *targets, "--cores", "1", "--configfile", *configs, check=False)
    output = done.stdout + done.stderr
    # The plan comes first, either way: what those targets train, counted from Snakemake's own plan.
    assert "plan: 9 jobs, 4 of them training:" in output
    assert "  study: 3 runs of bn, gn x seeds 1, 2, 2 epochs on 1000 images" in output
    assert "  batch study: 1 run in 1 training job on 400 images: bn at batch sizes 4" in output
    assert "  training CPU time, by workflow/rules/resources.smk's estimates: about 2 s;" in output
    if torch.cuda.is_available():  # the same request where there is a GPU: planned and run
        assert done.returncode == 0, output
        return
    assert done.returncode != 0
    assert "'variants.gn.train.device': cuda (for gn), but torch sees no GPU on this machine" in output
    assert list((workflow_copy / "results").iterdir()) == []


def sources(*overrides: dict) -> list[tuple[str, dict]]:
    """config.yaml, then each override as a further source."""
    repo = Path(__file__).resolve().parents[1]
    return [("config.yaml", load_yaml(repo / "config.yaml"))] + [(f"extra{i}", o) for i, o in enumerate(overrides)]


def test_a_grid_replaces_the_grid_and_other_mappings_merge() -> None:
    merged = merge_sources(
        sources({"tune": {"grid": {"dropout": [0.0, 0.1]}, "seeds": [7, 8]}, "train": {"epochs": 3}})
    )
    assert merged["tune"] == {"grid": {"dropout": [0.0, 0.1]}, "seeds": [7, 8], "bracket": True}
    assert merged["train"]["epochs"] == 3 and merged["train"]["batch_size"] == 128  # merged, not replaced
    # The last source to set the grid wins whole; one that leaves it alone keeps it.
    merged = merge_sources(sources({"tune": {"grid": {"dropout": [0.1]}}}, {"tune": {"seeds": [5, 6]}}))
    assert merged["tune"]["grid"] == {"dropout": [0.1]}


def test_a_list_of_variants_chooses_them_in_its_order_and_disables_the_rest() -> None:
    merged = merge_sources(sources({"variants": {"gn1": {"norm": "group", "groups": 1}}}, {"variants": ["gn1", "bn"]}))
    assert list(merged["variants"]) == ["gn1", "bn", "gn", "ln", "in", "bn_l1", "none"]
    assert [name for name, v in merged["variants"].items() if v["enabled"]] == ["gn1", "bn"]
    assert merged["variants"]["bn"]["train"]["schedule"]["max_lr"] == 0.1  # its definition kept
    # Leaving the control out drops its family; naming it keeps it; a source naming a control itself is obeyed.
    assert merged["analysis"]["control"] is None
    assert merge_sources(sources({"variants": ["bn", "none"]}))["analysis"]["control"] == "none"
    named = merge_sources(sources({"variants": ["bn", "gn"], "analysis": {"control": "gn"}}))
    assert named["analysis"]["control"] == "gn"
    with pytest.raises(ConfigError, match=r"'variants' in extra0 chooses variants by name, but 'bx' is not defined"):
        merge_sources(sources({"variants": ["bn", "bx"]}))
    with pytest.raises(ConfigError, match="but it names none"):
        merge_sources(sources({"variants": []}))


@pytest.mark.workflow
def test_snakemake_runs_the_grid_a_file_gives_and_the_variants_a_list_chooses(workflow_copy: Path) -> None:
    (workflow_copy / "grid.yaml").write_text("tune:\n  grid:\n    dropout: [0.0, 0.1]\n")
    planned = snakemake(workflow_copy, "-n", "tune", "--configfile", "tests/smoke.yaml", "grid.yaml").stdout
    # 6 variants x 2 points x 2 tuning seeds: the smoke grid's two peak rates are not multiplied in.
    assert re.search(r"^tuning_train\s+24$", planned, re.MULTILINE), planned
    assert "/dropout=0.1/seed101/" in planned and "max_lr=" not in planned
    chosen = snakemake(workflow_copy, "-n", "--configfile", "tests/smoke.yaml", "--config", "variants=[gn, bn]").stdout
    assert re.search(r"^train\s+4$", chosen, re.MULTILINE), chosen
    assert {match for match in re.findall(r"results/smoke/runs/(\w+)/seed", chosen)} == {"gn", "bn"}
    assert list((workflow_copy / "results").iterdir()) == []


@pytest.mark.workflow
def test_a_disabled_variants_file_asked_for_is_refused_as_disabled(workflow_copy: Path) -> None:
    (workflow_copy / "off.yaml").write_text("variants:\n  ln: {enabled: false}\n")
    target = "results/smoke/runs/ln/seed1/metrics.json"
    done = snakemake(workflow_copy, "-n", target, "--configfile", "tests/smoke.yaml", "off.yaml", check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "variant ln is disabled in the config (variants.ln.enabled: false)" in output
    assert "--config 'variants=[bn, gn, in, bn_l1, none, ln]'" in output and "No rule to produce" not in output
    assert list((workflow_copy / "results").iterdir()) == []
