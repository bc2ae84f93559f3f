"""The config schema and cross-field rules: the shipped configs pass, every kind of mistake is named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, snakemake

from normstudy.architecture import NORMED_CHANNELS, valid_group_counts
from normstudy.config import ConfigError, validate_config


def shipped() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge like Snakemake's --configfile: mappings merge recursively, other values replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def test_shipped_config_validates_and_gets_defaults() -> None:
    config = validate_config(shipped())
    assert set(config["variants"]) == {"bn", "gn", "ln", "in", "bn_l1"}
    assert config["variants"]["gn"]["groups"] == 2
    assert "groups" not in config["variants"]["bn"]
    assert config["variants"]["bn"]["dropout"] == 0.0  # the default: no dropout (see config.yaml)
    assert config["variants"]["bn_l1"]["l1"] == 1e-4
    assert config["variants"]["bn"]["enabled"] is True


def test_smoke_config_merged_into_defaults_validates() -> None:
    smoke = yaml.safe_load((REPO / "tests" / "smoke.yaml").read_text())
    config = validate_config(merged(shipped(), smoke))
    assert config["data"]["dataset"] == "synthetic"
    assert config["seeds"] == [1, 2]
    assert len(config["variants"]) == 5


def test_group_counts_follow_from_the_architecture() -> None:
    assert NORMED_CHANNELS == (8, 8, 8, 12, 14, 8, 26, 50)
    assert valid_group_counts() == [1, 2]


def _set(path: str, value: Any) -> dict[str, Any]:
    """A one-key override, e.g. _set('train.epochs', 0)."""
    override: dict[str, Any] = {}
    node = override
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return override


BAD_CONFIGS = [
    # (override merged into config.yaml, key the message must name, words it must contain)
    (_set("seeds", []), "'seeds'", "non-empty"),
    (_set("seeds", [1, 1]), "'seeds'", "non-unique"),
    (_set("seeds", ["one"]), "'seeds.0'", "expected integer"),
    (_set("seeds", [-3]), "'seeds.0'", "minimum"),
    (_set("train.epochs", 0), "'train.epochs'", "minimum of 1"),
    (_set("train.epochs", "15"), "'train.epochs'", "expected integer"),
    (_set("train.batch_size", 1), "'train.batch_size'", "minimum"),
    (_set("train.schedule.max_lr", -0.1), "'train.schedule.max_lr'", "less than or equal to the minimum"),
    (_set("train.schedule.anneal_strategy", "step"), "'train.schedule.anneal_strategy'", "not one of"),
    (_set("train.optimizer.lr", 0.1), "'train.optimizer.lr'", "unknown key"),
    (_set("train.device", "tpu"), "'train.device'", "not one of"),
    (_set("train.augment.rotation_degrees", 400), "'train.augment.rotation_degrees'", "maximum"),
    (_set("colour", "blue"), "'colour'", "unknown key"),
    (_set("variants.gn.grups", 2), "'variants.gn.grups'", "unknown key"),
    (_set("variants.gn.groups", 4), "'variants.gn.groups'", "does not divide"),
    (_set("variants.bn.groups", 2), "'variants.bn.groups'", "only used with norm 'group'"),
    (_set("variants.xx", {"norm": "weight"}), "'variants.xx.norm'", "not one of"),
    (_set("variants.xx", {"dropout": 0.1}), "'variants.xx.norm'", "required"),
    (_set("variants.bad name", {"norm": "batch"}), "'variants'", "does not match"),
    (_set("variants.bn.dropout", 1.0), "'variants.bn.dropout'", "maximum"),
    (_set("variants.bn", "batch"), "'variants.bn'", "expected object"),
    (
        {"variants": {name: {"enabled": False} for name in ("bn", "gn", "ln", "in", "bn_l1")}},
        "'variants'",
        "every variant is disabled",
    ),
    (_set("data.dataset", "cifar10"), "'data.dataset'", "not one of"),
    (_set("data.sources", []), "'data.sources'", "non-empty"),
    (_set("data.sources", ["ftp"]), "'data.sources.0'", "not one of"),
    (_set("data.sources", ["local"]), "'data.local_dir'", "required when"),
    ({"data": {"sources": ["local"], "local_dir": "/no/such/dir"}}, "'data.local_dir'", "not a directory"),
    (_set("data.mirrors", ["ftp://x/"]), "'data.mirrors.0'", "does not match"),
    (_set("data.synthetic.train_size", 5), "'data.synthetic.train_size'", "minimum"),
    (_set("misclassified.count", 11), "'misclassified.count'", "do not fit a 5 x 2 grid"),
    (_set("report.title", ""), "'report.title'", "should be non-empty"),
    (_set("report.subtitle", "x"), "'report.subtitle'", "unknown key"),
    (_set("train", None), "'train'", "expected object"),
    (
        {
            "train": {"epochs": 1, "batch_size": 1000},
            "data": {"dataset": "synthetic", "synthetic": {"train_size": 1000}},
        },
        "'train.schedule.pct_start'",
        "less than one warm-up step",
    ),
]


@pytest.mark.parametrize(("override", "key", "words"), BAD_CONFIGS, ids=[c[1] + ":" + c[2] for c in BAD_CONFIGS])
def test_bad_value_is_refused_naming_its_key(override: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(merged(shipped(), override))
    message = str(caught.value)
    lines = [line for line in message.splitlines() if key in line]
    assert lines, f"no line names {key}:\n{message}"
    assert any(words in line for line in lines), message


def test_every_problem_is_reported_at_once() -> None:
    override = merged(_set("train.epochs", 0), _set("report.colour", "x"))
    with pytest.raises(ConfigError) as caught:
        validate_config(merged(shipped(), override))
    assert "'train.epochs'" in str(caught.value)
    assert "'report.colour'" in str(caught.value)


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("train:\n  epochs: -1\n", "'train.epochs'"),
        ("variants:\n  gn:\n    groups: 3\n", "'variants.gn.groups'"),
        ("data:\n  unknown_key: 1\n", "'data.unknown_key'"),
    ],
)
def test_snakemake_refuses_bad_configfile_before_any_job(workflow_copy: Path, yaml_text: str, key: str) -> None:
    (workflow_copy / "bad.yaml").write_text(yaml_text)
    done = snakemake(workflow_copy, "--cores", "1", "--configfile", "bad.yaml", check=False)
    assert done.returncode != 0
    assert key in done.stderr + done.stdout
    assert list((workflow_copy / "results").iterdir()) == []


@pytest.mark.workflow
def test_snakemake_refuses_bad_command_line_config(workflow_copy: Path) -> None:
    done = snakemake(workflow_copy, "--cores", "1", "--config", "seeds=[]", check=False)
    assert done.returncode != 0
    assert "'seeds'" in done.stderr + done.stdout
    assert list((workflow_copy / "results").iterdir()) == []
