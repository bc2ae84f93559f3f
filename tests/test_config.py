"""The config schema and cross-field rules: the shipped configs pass, every kind of mistake is named."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, snakemake

from normstudy.analysis.tuning import search_digest
from normstudy.config.recipes import (
    batch_run_settings,
    batch_study_variants,
    is_packed,
    merge,
    run_settings,
    scaled_lr,
    shared_references,
    shares_main_run,
    tuning_points,
    tuning_settings,
    variant_batch_sizes,
)
from normstudy.config.reference import reference
from normstudy.config.schema import load_schema
from normstudy.config.sources import load_yaml
from normstudy.config.study import Study
from normstudy.config.validation import MAX_CONFIG_NODES, validate_config
from normstudy.model.nets.normnet import SPEC as NORMNET
from normstudy.settings import RunSettings, steps_per_epoch
from normstudy.values import ConfigError


def shipped() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config.yaml").read_text())


merged = merge


def test_shipped_config_validates_and_gets_defaults() -> None:
    config = validate_config(shipped())
    assert set(config["variants"]) == {"bn", "gn", "ln", "in", "bn_l1", "none"}
    assert config["analysis"]["control"] == "none" and config["variants"]["none"]["norm"] == "none"
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
    assert len(config["variants"]) == 6


def study_file(name: str) -> dict[str, Any]:
    """A named study's config file under studies/."""
    return yaml.safe_load((REPO / "studies" / name).read_text())


def test_the_confirmatory_study_is_the_default_one_at_ten_seeds_under_its_own_name() -> None:
    confirmatory = study_file("confirmatory.yaml")
    config, default = validate_config(merged(shipped(), confirmatory)), validate_config(shipped())
    assert config["study"] == "confirmatory" and config["seeds"] == list(range(1, 11))
    assert config["seeds"][:3] == default["seeds"]  # its first three runs of each norm are the default study's seeds
    assert config["variants"] == default["variants"] and config["train"] == default["train"]
    assert config["batch_study"]["enabled"] is False


def test_the_gpu_study_is_the_default_one_on_cuda_with_every_batch_size_packed() -> None:
    config, default = validate_config(merged(shipped(), study_file("gpu.yaml"))), validate_config(shipped())
    assert config["study"] == "gpu" and config["train"]["device"] == "cuda"
    assert config["variants"] == default["variants"] and config["seeds"] == default["seeds"]
    assert {**config["train"], "device": default["train"]["device"]} == default["train"]
    study = Study.from_config(config)
    ghost_sizes = [size for size in config["batch_study"]["batch_sizes"] if size < config["train"]["batch_size"]]
    assert ghost_sizes and all(is_packed(study, size) for size in ghost_sizes)
    assert not any(is_packed(Study.from_config(default), size) for size in ghost_sizes if size > 16)


def test_the_control_is_a_studied_variant_other_than_the_reference() -> None:
    zoo = validate_config(merged(shipped(), study_file("zoo.yaml")))
    assert Study.from_config(zoo).analysis.control == "none"
    assert Study.from_config(zoo).analysis.against_control().reference == "none"
    # Without a control the plan holds no such key: a study planned before the control existed keeps its identity.
    uncontrolled = validate_config(merged(shipped(), {"analysis": {"control": None}}))
    assert "control" not in Study.from_config(uncontrolled).analysis.values()
    for control, message in (("nothing", "'nothing' is not a studied variant"), ("bn", "other than the reference")):
        with pytest.raises(ConfigError, match=message):
            validate_config(merged(shipped(), {"analysis": {"control": control}}))


@pytest.mark.parametrize("piece", sorted(path.name for path in (REPO / "studies" / "tuning").glob("*.yaml")))
def test_each_tuning_piece_searches_one_norm_as_the_zoo_runs_it(piece: str) -> None:
    """A piece (studies/tuning/<name>.yaml) enables one variant, with the values the zoo (or the default study) gives
    it: its record is then that study's search of the norm, on the piece's own grid and seeds."""
    config = validate_config(merged(shipped(), yaml.safe_load((REPO / "studies" / "tuning" / piece).read_text())))
    (variant,) = [name for name, values in config["variants"].items() if values["enabled"]]
    # make tune-pieces finds a piece's record by its file's name: tune_<name>.
    assert config["study"] == f"tune_{variant}" == f"tune_{piece.removesuffix('.yaml')}"
    assert config["batch_study"]["enabled"] is False
    zoo = validate_config(merged(shipped(), study_file("zoo.yaml")))
    searched = Study.from_config({**zoo, "tune": config["tune"]})
    assert search_digest(Study.from_config(config), [variant]) == search_digest(searched, [variant])


def test_group_counts_follow_from_the_architecture() -> None:
    assert NORMNET.normed_channels == (8, 8, 8, 12, 14, 8, 26, 50)
    assert NORMNET.valid_divisors() == [1, 2]


def _set(path: str, value: Any) -> dict[str, Any]:
    """A one-key override, e.g. _set('train.epochs', 0)."""
    override: dict[str, Any] = {}
    node = override
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return override


# The earlier batch-study design, kept as an option: the SGD batch itself shrinks, one pass over 20,000 images.
SGD_BATCH = {"design": "sgd_batch", "batch_sizes": [2, 4, 8, 16, 32], "epochs": 1, "train_images": 20000}

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
        {"variants": {name: {"enabled": False} for name in ("bn", "gn", "ln", "in", "bn_l1", "none")}},
        "'variants'",
        "every variant is disabled",
    ),
    (_set("data.dataset", "cifar100"), "'data.dataset'", "not one of"),
    (_set("data.sources", []), "'data.sources'", "non-empty"),
    (_set("data.sources", ["ftp"]), "'data.sources.0'", "not one of"),
    (_set("data.sources", ["local"]), "'data.local_dir'", "required when"),
    ({"data": {"sources": ["local"], "local_dir": "/no/such/dir"}}, "'data.local_dir'", "not a directory"),
    (_set("data.mirrors", ["ftp://x/"]), "'data.mirrors.0'", "does not match"),
    (_set("data.synthetic.train_size", 5), "'data.synthetic.train_size'", "minimum"),
    (_set("misclassified.count", 11), "'misclassified.count'", "do not fit a 5 x 2 grid"),
    (_set("report.title", ""), "'report.title'", "should be non-empty"),
    ({"study": "../other"}, "'study'", "'../other' is not a safe folder name"),
    ({"study": "a b"}, "'study'", "is not a safe folder name"),
    ({"study": "data"}, "'study'", "'data' is reserved (results/data/ holds the shared download)"),
    ({"study": "compare"}, "'study'", "is reserved"),
    ({"study": "smoke\n"}, "'study'", "U+000A (newline) at position 6"),
    ({"study": 7}, "'study'", "expected string"),
    (_set("report.subtitle", "x"), "'report.subtitle'", "unknown key"),
    (_set("train", None), "'train'", "expected object"),
    (_set("train", "{epochs: 1}"), "'train'", "pass it with --configfile FILE"),
    (_set("train.epochs", "1"), "'train.epochs'", "nested in Snakemake's --config"),
    (_set("variants.bn\n", {"norm": "batch"}), "'variants'", "nothing after it"),
    (_set("variants.bn ", {"norm": "batch"}), "'variants'", "does not match"),
    (_set("report.title", "x" * 5000), "'report.title'", "is too long"),
    (_set("report.title", "red \x1b[31mtext"), "'report.title'", "control character U+001B (ESC) at position 5"),
    (_set("report.title", "a\x00b"), "'report.title'", "U+0000 (NUL) at position 2; remove it"),
    (_set("report.title", "Norms\nstudy"), "'report.title'", "U+000A (newline) at position 6"),
    (_set("report.title", "abc\u202efdp.exe"), "'report.title'", "U+202E (RIGHT-TO-LEFT OVERRIDE) at position 4"),
    (_set("data.mirrors", ["https://a.example/\x07"]), "'data.mirrors.0'", "U+0007 (BEL)"),
    (
        {
            "train": {"epochs": 1, "batch_size": 1000},
            "data": {"dataset": "synthetic", "synthetic": {"train_size": 1000}},
        },
        "'train.schedule.pct_start'",
        "less than one warm-up step",
    ),
    (
        {"train": {"batch_size": 2000}, "data": {"dataset": "synthetic", "synthetic": {"train_size": 1000}}},
        "'train.batch_size'",
        "2000 is more than the 1000 training images",
    ),
    (
        {
            "variants": {"gn": {"train": {"batch_size": 2000}}},
            "data": {"dataset": "synthetic", "validation": 200, "synthetic": {"train_size": 1000}},
        },
        "'variants.gn.train.batch_size'",
        "2000 is more than the 1000 training images",
    ),
    # Tuning runs keep 60,000 - 10,000 validation images.
    (
        {"train": {"batch_size": 55000}},
        "'tune.grid point max_lr=0.05, variant bn: train.batch_size'",
        "55000 is more than the 50000 training images",
    ),
    (_set("batch_study.variants", ["bx"]), "'batch_study.variants'", "'bx' is not a variant"),
    (_set("batch_study.variants", []), "'batch_study.variants'", "should be non-empty"),
    (
        {"variants": {name: {"enabled": False} for name in ("bn", "gn", "ln")}, "analysis": {"reference": "in"}},
        "'batch_study.variants'",
        "every variant it lists is disabled",
    ),
    (_set("batch_study.batch_sizes", [1, 4]), "'batch_study.batch_sizes.0'", "minimum of 2"),
    (_set("batch_study.batch_sizes", [4]), "'batch_study.batch_sizes'", "too short"),
    (_set("batch_study.batch_sizes", [2, 2]), "'batch_study.batch_sizes'", "non-unique"),
    (
        {"batch_study": {**SGD_BATCH, "batch_sizes": [2, 30000]}},
        "'batch_study.batch_sizes'",
        "30000 is more than the 20000",
    ),
    (_set("batch_study.batch_sizes", [2, 64]), "'batch_study.batch_sizes'", "64 is not bn's train.batch_size 128"),
    (_set("batch_study.precise_bn_images", 70000), "'batch_study.precise_bn_images'", "maximum of 60000"),
    ({"batch_study": {**SGD_BATCH, "precise_bn_images": 30000}}, "'batch_study.precise_bn_images'", "20000 training"),
    (_set("analysis.reference", "bx"), "'analysis.reference'", "'bx' is not a studied variant"),
    (_set("analysis.margin", 0), "'analysis.margin'", "less than or equal to the minimum"),
    (_set("analysis.correction", "bh"), "'analysis.correction'", "not one of holm, bonferroni"),
    (_set("analysis.decisions", [{"choice": "x", "seen": "tea leaves"}]), "'analysis.decisions.0.seen'", "not one of"),
    (_set("batch_study.train_images", 70000), "'batch_study.train_images'", "more than the 60000 training images"),
    (_set("batch_study.train_images", 20000.0), "'batch_study.train_images'", "expected integer or null, got float"),
    (_set("batch_study.epochs", 0), "'batch_study.epochs'", "minimum of 1"),
    (_set("batch_study.seeds", [1, 1]), "'batch_study.seeds'", "non-unique"),
    (_set("batch_study.lr_scaling", "cubic"), "'batch_study.lr_scaling'", "not one of linear, sqrt, none"),
    (_set("batch_study.pack", "sometimes"), "'batch_study.pack'", "not one of auto, always, never"),
    (_set("batch_study.size", 3), "'batch_study.size'", "unknown key"),
    (_set("robustness.corruptions", ["shot_noise", "frost"]), "'robustness.corruptions.1'", "not one of shot_noise"),
    (_set("robustness.severities", [3, 6]), "'robustness.severities.1'", "maximum of 5"),
    (_set("robustness.severities", []), "'robustness.severities'", "non-empty"),
    (_set("robustness.severities", [3, "graded"]), "'robustness.severities.1'", "'graded'"),
    (_set("robustness.endpoint", "fog_only"), "'robustness.endpoint'", "not one of mnist_c, non_intensity, all"),
    (
        {"robustness": {"corruptions": ["contrast", "fog"], "severities": [3], "endpoint": "non_intensity"}},
        "'robustness.endpoint'",
        "none of them in robustness.corruptions (contrast, fog): it would average no set",
    ),
    (_set("robustness.adaptation_batches", [1]), "'robustness.adaptation_batches.0'", "minimum of 2"),
    (_set("robustness.level", 3), "'robustness.level'", "unknown key"),
    (_set("robustness.precise_bn_images", 0), "'robustness.precise_bn_images'", "minimum of 1"),
    (_set("robustness.precise_bn_images", 2.5), "'robustness.precise_bn_images'", "expected integer"),
    # Linear scaling from bn's 0.1 at 128 gives 12.8 at 16,384: over the schema's maximum peak rate.
    (
        {"batch_study": {**SGD_BATCH, "batch_sizes": [2, 16384]}},
        "batch_study batch size 16384, variant bn",
        "maximum of 10",
    ),
    (
        {"batch_study": {**SGD_BATCH, "batch_sizes": [2, 10000], "lr_scaling": "none"}},
        "batch_study batch size 10000, variant bn: train.schedule.pct_start",
        "less than one warm-up step",
    ),
    (
        {"train": {"batch_size": 64}, "batch_study": {"batch_sizes": [3, 8, 64]}},
        "'batch_study.batch_sizes'",
        "3 does not divide the SGD batch of 64, so each step's last group would hold 1 image, not 3",
    ),
    (
        {"batch_study": {"variants": ["gn", "ln"]}},
        "'batch_study.variants'",
        "none of gn, ln takes batch statistics",
    ),
    ({"study": "x" * 10_000}, "'study'", "... (10,002 characters) is not a safe folder name"),
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
    done = snakemake(workflow_copy, "--cores", "1", "--configfile", "bad.yaml", check=False, refused=True)
    assert done.returncode != 0
    assert key in done.stderr + done.stdout
    assert list((workflow_copy / "results").iterdir()) == []


@pytest.mark.workflow
def test_snakemake_refuses_bad_command_line_config(workflow_copy: Path) -> None:
    done = snakemake(workflow_copy, "--cores", "1", "--config", "seeds=[]", check=False, refused=True)
    assert done.returncode != 0
    assert "'seeds'" in done.stderr + done.stdout
    assert list((workflow_copy / "results").iterdir()) == []


# Every float key of the schema: NaN and infinities must be refused, naming the key.
FLOAT_KEYS = [
    "train.optimizer.momentum",
    "train.optimizer.weight_decay",
    "train.schedule.max_lr",
    "train.schedule.pct_start",
    "train.schedule.div_factor",
    "train.schedule.final_div_factor",
    "train.augment.rotation_degrees",
    "data.timeout_s",
    "data.mean",
    "data.std",
    "variants.bn_l1.l1",
    "variants.gn.dropout",
]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_non_finite_numbers_are_refused(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"'{key}': -?(nan|inf) is not a finite number"):
        validate_config(merged(shipped(), _set(key, value)))


def test_nan_in_a_yaml_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "nan.yaml").write_text("train:\n  schedule:\n    max_lr: .nan\n")
    with pytest.raises(ConfigError, match=r"'train\.schedule\.max_lr': nan is not a finite number"):
        validate_config(merged(shipped(), load_yaml(tmp_path / "nan.yaml")))


# Every integer key: a whole-number float is refused (JSON Schema alone would accept 2.0 as an integer).
INTEGER_KEYS = [
    ("train.epochs", 2.0),
    ("train.batch_size", 64.0),
    ("train.threads", 1.0),
    ("misclassified.count", 4.0),
    ("misclassified.rows", 2.0),
    ("misclassified.cols", 2.0),
    ("data.synthetic.train_size", 1000.0),
    ("data.synthetic.test_size", 100.0),
    ("data.synthetic.seed", 0.0),
    ("variants.gn.groups", 2.0),
]


@pytest.mark.parametrize(("key", "value"), INTEGER_KEYS)
def test_whole_number_floats_are_not_integers(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"'{key}': expected integer, got float {value!r} \(write {value:.0f},"):
        validate_config(merged(shipped(), _set(key, value)))


def test_float_seeds_are_not_integers() -> None:
    with pytest.raises(ConfigError, match=r"'seeds.0': expected integer, got float 1.0"):
        validate_config(merged(shipped(), {"seeds": [1.0, 2]}))


def test_booleans_are_not_integers() -> None:
    with pytest.raises(ConfigError, match=r"'train\.epochs': expected integer, got bool True"):
        validate_config(merged(shipped(), _set("train.epochs", True)))


@pytest.mark.parametrize("train_size", [257, 258, 320, 1000, 1001])
@pytest.mark.parametrize("batch_size", [64, 128, 256])
@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_the_config_check_and_the_engine_agree_on_the_warm_up(train_size: int, batch_size: int, epochs: int) -> None:
    """A config passes validation exactly when the engine can build its OneCycleLR schedules: the study's and,
    on the images the validation split leaves, every tuning run's."""
    import torch

    from normstudy.engine import new_run

    held_out = 100
    config = merged(
        shipped(),
        {
            "train": {"epochs": epochs, "batch_size": batch_size},
            "data": {"dataset": "synthetic", "synthetic": {"train_size": train_size}, "validation": held_out},
            "batch_study": {"enabled": False},
        },
    )
    try:
        validated = validate_config(config)
    except ConfigError:
        accepted = False
    else:
        accepted = True
        cpu = torch.device("cpu")
        # Neither may raise.
        new_run((run_settings(Study.from_config(validated), "bn", 1),), train_size, cpu)
        for point in tuning_points(Study.from_config(validated)):
            tuning = tuning_settings(Study.from_config(validated), "bn", point, 101)
            new_run((tuning,), train_size - held_out, cpu)
    steps = epochs * steps_per_epoch(train_size, batch_size)
    tuning_steps = epochs * steps_per_epoch(train_size - held_out, batch_size)
    assert accepted == (0.2 * steps > 1 and 0.2 * tuning_steps > 1)


def billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\nseeds: *a{levels - 1}\n"


def test_alias_bombs_are_refused_quickly(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(billion_laughs())
    with pytest.raises(ConfigError, match=rf"more than {MAX_CONFIG_NODES:,} values") as caught:
        load_yaml(tmp_path / "bomb.yaml")
    assert len(str(caught.value)) < 300
    # Already loaded (as Snakemake loads --configfile): validation refuses it with a short message, too.
    import yaml

    bomb = yaml.safe_load(billion_laughs())
    with pytest.raises(ConfigError, match="more than") as caught:
        validate_config(merged(shipped(), {"seeds": bomb["seeds"]}))
    assert len(str(caught.value)) < 300


def test_bad_values_are_quoted_by_a_short_prefix_only() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(merged(shipped(), {"seeds": [*range(5000), -1], "colour": "x" * 100_000}))
    assert len(str(caught.value)) < 1000


def test_run_settings_round_trip_through_json() -> None:
    config = validate_config(shipped())
    for name in config["variants"]:
        settings = run_settings(Study.from_config(config), name, 3)
        assert RunSettings.from_dict(settings.to_dict()) == settings
        assert settings.variant.name == name and settings.seed == 3
    assert run_settings(Study.from_config(config), "gn", 1).variant.groups == 2
    assert run_settings(Study.from_config(config), "bn", 1).variant.groups is None


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("train", "epochs"), 2.0, "expected int"),
        (("train", "schedule", "max_lr"), math.nan, "expected float"),
        (("variant", "l1"), "0.1", "expected float"),
        (("variant", "colour"), "red", "unknown keys ['colour']"),
    ],
)
def test_settings_json_is_type_checked_when_read(path: tuple, value: Any, words: str) -> None:
    data = run_settings(Study.from_config(validate_config(shipped())), "bn", 1).to_dict()
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        RunSettings.from_dict(data)


@pytest.mark.workflow
def test_snakemake_explains_that_config_values_are_text(workflow_copy: Path) -> None:
    done = snakemake(workflow_copy, "-n", "--config", "train={epochs: 1}", check=False)
    output = done.stderr + done.stdout
    assert done.returncode != 0
    assert "'train.epochs': expected integer, got str '1': the value is text" in output
    assert "--configfile FILE" in output


@pytest.mark.workflow
def test_snakemake_refuses_an_alias_bomb_before_any_job(workflow_copy: Path) -> None:
    (workflow_copy / "bomb.yaml").write_text(billion_laughs())
    done = snakemake(workflow_copy, "-n", "--configfile", "bomb.yaml", check=False)
    assert done.returncode != 0
    assert f"more than {MAX_CONFIG_NODES:,} values" in done.stderr + done.stdout
    assert len(done.stderr + done.stdout) < 20_000
    assert list((workflow_copy / "results").iterdir()) == []


@pytest.mark.workflow
def test_snakemake_refuses_a_variant_name_with_a_newline(workflow_copy: Path) -> None:
    (workflow_copy / "newline.yaml").write_text('variants:\n  "bn\\n":\n    norm: batch\n')
    done = snakemake(workflow_copy, "-n", "--configfile", "newline.yaml", check=False)
    assert done.returncode != 0
    assert "with nothing after it" in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("rule", "batch_size", "expected"),
    [("linear", 2, 0.2 / 64), ("linear", 128, 0.2), ("linear", 512, 0.8), ("sqrt", 32, 0.1), ("none", 2, 0.2)],
)
def test_the_peak_learning_rate_scales_with_the_batch_size(rule: str, batch_size: int, expected: float) -> None:
    """From a peak of 0.2 at 128: linear 0.2 x 2/128 = 0.003125; square root 0.2 x (32/128)^0.5 = 0.1."""
    assert scaled_lr(0.2, batch_size, 128, rule) == pytest.approx(expected, rel=1e-12)


def test_a_sgd_batch_study_run_is_its_variants_recipe_at_that_batch_size() -> None:
    config = validate_config(merged(shipped(), {"batch_study": SGD_BATCH}))
    settings = batch_run_settings(Study.from_config(config), "gn", 4, 2)
    main = run_settings(Study.from_config(config), "gn", 2)
    assert settings.variant == main.variant and settings.seed == 2
    assert settings.train.batch_size == 4 and settings.train.epochs == 1
    assert settings.train.schedule.max_lr == pytest.approx(main.train.schedule.max_lr * 4 / 128)
    same = ("optimizer", "augment", "device", "memory_format", "threads")
    assert all(getattr(settings.train, key) == getattr(main.train, key) for key in same)
    assert settings.data.train_images == 20000 and main.data.train_images == 0
    assert RunSettings.from_dict(settings.to_dict()) == settings
    # The whole training set is written as 0, as every other run writes it: one run, one settings digest.
    everything = validate_config(merged(shipped(), {"batch_study": {**SGD_BATCH, "train_images": 60000}}))
    assert batch_run_settings(Study.from_config(everything), "gn", 4, 2).data.train_images == 0
    assert batch_run_settings(
        Study.from_config(validate_config(merged(shipped(), {"batch_study": {**SGD_BATCH, "train_images": None}}))),
        "gn",
        4,
        2,
    ) == (batch_run_settings(Study.from_config(everything), "gn", 4, 2))


def test_a_ghost_study_run_keeps_its_recipe_and_groups_batch_norms_statistics() -> None:
    config = validate_config(shipped())
    main, reference, ghost = (
        run_settings(Study.from_config(config), "bn", 2),
        batch_run_settings(Study.from_config(config), "bn", 128, 2),
        None,
    )
    ghost = batch_run_settings(Study.from_config(config), "bn", 4, 2)
    assert ghost.variant == dataclasses.replace(main.variant, ghost=4) and reference.variant == main.variant
    assert ghost.train == reference.train == dataclasses.replace(main.train, epochs=config["batch_study"]["epochs"])
    # The batch-free norms run at the reference only: the statistics batch cannot change them.
    assert variant_batch_sizes(Study.from_config(config), "gn") == [128] and variant_batch_sizes(
        Study.from_config(config), "bn"
    ) == [2, 4, 8, 16, 32, 128]
    assert batch_run_settings(Study.from_config(config), "gn", 128, 2).variant.ghost == 0


def test_a_paper_design_run_takes_devices_statistics_batches_per_sgd_batch_for_every_norm() -> None:
    config = validate_config(merged(shipped(), study_file("gn_paper.yaml")))
    main = {name: run_settings(Study.from_config(config), name, 1) for name in ("bn", "gn")}
    for size in (2, 32):
        bn, gn = (
            batch_run_settings(Study.from_config(config), "bn", size, 1),
            batch_run_settings(Study.from_config(config), "gn", size, 1),
        )
        # The GN paper's 8 GPUs: an SGD batch of 8 x b, the peak LR linear in it, BatchNorm's statistics per b.
        assert bn.train.batch_size == gn.train.batch_size == 8 * size
        assert bn.variant == dataclasses.replace(main["bn"].variant, ghost=size) and gn.variant == main["gn"].variant
        for name, run in (("bn", bn), ("gn", gn)):
            assert run.train.schedule.max_lr == pytest.approx(main[name].train.schedule.max_lr * 8 * size / 128)
    # Every norm runs at every size: the batch-free norms' flatness is tested, not built in.
    assert (
        variant_batch_sizes(Study.from_config(config), "gn")
        == variant_batch_sizes(Study.from_config(config), "bn")
        == [2, 32]
    )
    # An SGD batch larger than the training images is named with the statistics batch it comes from.
    small = merged(shipped(), {**study_file("gn_paper.yaml"), "batch_study": {
        **study_file("gn_paper.yaml")["batch_study"], "train_images": 200, "precise_bn_images": 100}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"'batch_study.batch_sizes': 32 \(its SGD batch 256\) is more than the 200"):
        validate_config(small)


def test_the_ghost_studys_references_at_the_main_recipe_are_the_main_studys_runs() -> None:
    """Same settings, same bytes: the reference runs are read from the main study; every other run is its own."""
    config = validate_config(shipped())
    assert config["batch_study"]["epochs"] == config["train"]["epochs"]
    for variant in ("bn", "gn", "ln"):
        assert (
            batch_run_settings(Study.from_config(config), variant, 128, 2).to_json()
            == run_settings(Study.from_config(config), variant, 2).to_json()
        )
        assert shares_main_run(Study.from_config(config), variant, 128, 2)
    assert not any(shares_main_run(Study.from_config(config), "bn", size, 2) for size in (2, 4, 8, 16, 32))
    assert shared_references(Study.from_config(config)) == ["bn", "gn", "ln"]
    # A variant's own recipe is both studies' recipe: still shared.
    assert shared_references(
        Study.from_config(validate_config(merged(shipped(), _set("variants.gn.train.schedule.max_lr", 0.3))))
    ) == [
        "bn",
        "gn",
        "ln",
    ]
    # Another budget or other images: nothing is shared. A seed the main study lacks: that seed's reference is not.
    for change in (_set("batch_study.epochs", 6), _set("batch_study.train_images", 20000)):
        assert shared_references(Study.from_config(validate_config(merged(shipped(), change)))) == []
    seven = validate_config(merged(shipped(), _set("batch_study.seeds", [1, 7])))
    assert shares_main_run(Study.from_config(seven), "bn", 128, 1) and not shares_main_run(
        Study.from_config(seven), "bn", 128, 7
    )
    assert shared_references(Study.from_config(seven)) == []


def test_settings_json_leaves_out_the_training_subset_and_ghost_of_a_run_that_has_none() -> None:
    """Runs recorded before batch_study existed keep their settings.json and digest (the tuning record's)."""
    config = validate_config(merged(shipped(), {"batch_study": SGD_BATCH}))
    assert "train_images" not in run_settings(Study.from_config(config), "bn", 1).to_dict()["data"]
    assert "ghost" not in run_settings(Study.from_config(config), "bn", 1).to_dict()["variant"]
    assert batch_run_settings(Study.from_config(config), "bn", 2, 1).to_dict()["data"]["train_images"] == 20000
    assert (
        batch_run_settings(Study.from_config(validate_config(shipped())), "bn", 2, 1).to_dict()["variant"]["ghost"] == 2
    )
    data = run_settings(Study.from_config(config), "bn", 1).to_dict()
    data["data"]["train_images"] = "all"
    with pytest.raises(ConfigError, match=r"settings\.data\.train_images: expected int"):
        RunSettings.from_dict(data)


def test_packing_follows_the_pack_setting_and_needs_two_seeds() -> None:
    def packed(device: str = "auto", **study: Any) -> list[int]:
        overrides = {"batch_study": {**SGD_BATCH, **study}, "train": {"device": device}}
        config = validate_config(merged(shipped(), overrides))
        return [size for size in config["batch_study"]["batch_sizes"] if is_packed(Study.from_config(config), size)]

    assert packed() == [2, 4, 8, 16]  # auto: up to PACKING_PAYS_UP_TO
    assert packed(pack="always") == [2, 4, 8, 16, 32]
    assert packed(pack="never") == []
    assert packed(pack="always", seeds=[7]) == []  # one seed: nothing to pack
    # The ghost design keeps the recipe's SGD batch of 128 at every size: packing does not pay there.
    assert packed(design="ghost", batch_sizes=[2, 4, 128], epochs=3, train_images=None) == []
    # On a GPU one launch per layer serves every packed seed: auto packs at every size, the ghost design's too.
    assert packed(device="cuda") == [2, 4, 8, 16, 32]
    assert packed(device="cuda", design="ghost", batch_sizes=[2, 4, 128], epochs=3, train_images=None) == [2, 4, 128]
    assert packed(device="cuda", pack="never") == []


def test_a_disabled_variant_is_left_out_of_the_batch_study() -> None:
    config = validate_config(merged(shipped(), _set("variants.gn.enabled", False)))
    assert batch_study_variants(Study.from_config(config)) == ["bn", "ln"]
    assert batch_study_variants(Study.from_config(validate_config(shipped()))) == ["bn", "gn", "ln"]


def schema_keys(node: dict, path: str = "") -> Iterator[tuple[str, dict]]:
    """(dotted path, schema) of every key the schema names, variants' own keys as `variants.<name>.key`."""
    for key, child in node.get("properties", {}).items():
        where = f"{path}.{key}" if path else key
        yield where, child
        yield from schema_keys(child, where)
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_keys(node["additionalProperties"], f"{path}.<name>")
    if isinstance(node.get("items"), dict):
        yield from schema_keys(node["items"], path)


def test_every_schema_key_says_what_it_is() -> None:
    """A workflow catalog renders the schema's descriptions as the parameter table: none may be missing."""
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    keys = dict(schema_keys(schema))
    assert len(keys) > 70 and "robustness.precise_bn_images" in keys and "variants.<name>.norm" in keys
    assert [key for key, node in keys.items() if not str(node.get("description", "")).strip()] == []


def test_the_configuration_reference_is_the_schemas_as_the_workflow_loads_it() -> None:
    # docs/configuration.md is generated (workflow/scripts/config_reference.py): a schema or registry change without
    # regenerating it fails here, naming the command.
    page = (REPO / "docs" / "configuration.md").read_text()
    assert page == reference(), "docs/configuration.md is stale: python workflow/scripts/config_reference.py --out it"
    # Every key the schema accepts has its row, the registries' values included.
    schema = load_schema()
    for section, node in schema["properties"].items():
        for key in node.get("properties", {}):
            assert f"| `{section}.{key}` |" in page
    assert "`variants.<name>.groups`" in page and "one of `batch`, `group`, `layer`, `instance`" in page
    assert "`data.dataset` | one of `cifar10`, `fashion_mnist`, `kmnist`, `mnist`, `synthetic`" in page
