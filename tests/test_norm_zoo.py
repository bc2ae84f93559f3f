"""The norms beyond torch's, each against a direct float64 computation of its paper's equations; the control; group
norm's channels-per-group form; and every registered norm training end to end, bitwise deterministic."""

from __future__ import annotations

import dataclasses
import re
import shutil
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from background import BackgroundRuns, background_study
from conftest import REPO, background_snakemake, copy_workflow
from helpers import study_config, synthetic_files, tiny_settings
from torch import nn

from normstudy.config.study import Study
from normstudy.config.validation import validate_config
from normstudy.data.tensors import load_splits
from normstudy.engine import fit
from normstudy.model.network import NormNet, StandardizedConv2d
from normstudy.model.norm_layers import BatchRenorm2d
from normstudy.model.norm_specs import NORMS, norm_spec, statistics_words
from normstudy.model.norms import batch_statistics_layers, create_norm
from normstudy.values import ConfigError

CPU = torch.device("cpu")


def activations(batch: int = 8, channels: int = 4, seed: int = 0) -> torch.Tensor:
    """Random activations [batch, channels, 5, 6] with per-channel offsets and scales."""
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.linspace(-2, 2, channels).view(1, -1, 1, 1)
    return torch.randn(batch, channels, 5, 6, generator=generator) * (1 + offsets.abs()) + offsets


def randomized(layer: nn.Module, seed: int = 1) -> nn.Module:
    """`layer` with every parameter drawn at random (not the identity it starts as)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(torch.rand(parameter.shape, generator=generator) + 0.5)
    return layer


def test_the_control_leaves_the_norm_out_and_adds_no_bias() -> None:
    model = NormNet("none", 0.0)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(conv.bias is None for conv in convs)  # the spec keeps the convolutions bias-free
    assert norm_spec("none").layer() == "Identity (no norm; He-initialized convolutions without bias)"
    weights = [conv.weight for conv in convs[:-1]]  # He's normal init: variance 2 / fan_in, the signal's scale kept
    for weight in weights[1:]:
        fan_in = weight[0].numel()
        assert abs(weight.var().item() * fan_in / 2 - 1) < 0.25
    # The batch-norm network with its norms taken out and its weights kept computes what the control computes.
    normed = NormNet("batch", 0.0)
    model.load_state_dict({key: value for key, value in normed.state_dict().items() if key in model.state_dict()})
    for index, layer in enumerate(normed.layers):
        if isinstance(layer, nn.BatchNorm2d):
            normed.layers[index] = nn.Identity()
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(model(x), normed(x))
    assert batch_statistics_layers(model) == []


def renorm_by_hand(x, weight, bias, running_mean, running_var, r_max, d_max, eps):
    """Ioffe 2017, Algorithm 1, in float64, over one batch: the output and r and d."""
    x = x.double()
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    sigma_batch = torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False, keepdim=True) + eps)
    sigma = torch.sqrt(running_var.double().view(1, -1, 1, 1) + eps)
    r = (sigma_batch / sigma).clamp(1 / r_max, r_max).detach()
    d = ((mean - running_mean.double().view(1, -1, 1, 1)) / sigma).clamp(-d_max, d_max).detach()
    x_hat = (x - mean) / sigma_batch * r + d
    return x_hat * weight.double().view(1, -1, 1, 1) + bias.double().view(1, -1, 1, 1), r, d


def test_batch_renorm_is_algorithm_1_with_r_and_d_clipped_and_no_gradient_through_them() -> None:
    layer = randomized(BatchRenorm2d(4, r_max=1.5, d_max=0.5))
    with torch.no_grad():  # running averages far from this batch's, so both r and d are clipped on some channels
        layer.running_mean.copy_(torch.tensor([3.0, 0.0, -0.2, 1.0]))
        layer.running_var.copy_(torch.tensor([0.1, 9.0, 1.0, 4.0]))
    start_mean, start_var = layer.running_mean.clone(), layer.running_var.clone()
    x = activations().requires_grad_()
    out = layer(x)
    twin = x.detach().double().requires_grad_()
    weight = layer.weight.detach().double().requires_grad_()
    expected, r, d = renorm_by_hand(twin, weight, layer.bias, start_mean, start_var, 1.5, 0.5, layer.eps)
    assert (r == 1.5).any() and (r == 1 / 1.5).any() and (d.abs() == 0.5).any()  # the bounds bite
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
    grads = torch.randn_like(out)
    out.backward(grads)
    expected.backward(grads.double())
    torch.testing.assert_close(x.grad.double(), twin.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer.weight.grad.double(), weight.grad, rtol=1e-4, atol=1e-4)
    # The running averages move as BatchNorm2d's: momentum 0.1 towards the batch mean and unbiased variance.
    values = x.detach().double().transpose(0, 1).reshape(4, -1)
    torch.testing.assert_close(layer.running_mean.double(), 0.9 * start_mean.double() + 0.1 * values.mean(1))
    torch.testing.assert_close(
        layer.running_var.double(), 0.9 * start_var.double() + 0.1 * values.var(1), rtol=1e-5, atol=1e-6
    )
    layer.eval()  # evaluation is batch norm's on the running averages
    plain = nn.BatchNorm2d(4).eval()
    plain.load_state_dict(layer.state_dict())
    assert torch.equal(layer(x.detach()), plain(x.detach()))


def test_batch_renorm_with_r_max_1_and_d_max_0_trains_as_batch_norm() -> None:
    layer, plain = BatchRenorm2d(4, r_max=1.0, d_max=0.0), nn.BatchNorm2d(4)
    for module in (layer, plain):
        randomized(module)
    x = activations(seed=3)
    torch.testing.assert_close(layer(x), plain(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer.running_var, plain.running_var)


def test_batch_renorm_relaxes_its_bounds_over_the_warm_up_and_takes_ghost_groups() -> None:
    layer = BatchRenorm2d(4, r_max=3.0, d_max=5.0, warmup=4)
    assert layer.bounds() == (1.0, 0.0)
    for _ in range(2):
        layer(activations())
    assert layer.bounds() == (2.0, 2.5)
    for _ in range(3):
        layer(activations())
    assert layer.bounds() == (3.0, 5.0)
    # Statistics batches of 2 within a batch of 8: each group renormalized on its own against the same averages.
    ghost = randomized(BatchRenorm2d(4, r_max=1.5, d_max=0.5, ghost=2))
    x = activations(seed=4)
    out = ghost(x)
    for start in range(0, 8, 2):
        expected, _, _ = renorm_by_hand(
            x[start : start + 2], ghost.weight, ghost.bias, torch.zeros(4), torch.ones(4), 1.5, 0.5, ghost.eps
        )
        torch.testing.assert_close(out[start : start + 2].double(), expected, rtol=1e-5, atol=1e-5)
    assert create_norm("batch_renorm", 4, ghost=2, r_max=2.0, d_max=1.0, renorm_warmup=0).ghost == 2


def test_filter_response_norm_and_its_tlu_are_the_papers_equations() -> None:
    layer = randomized(create_norm("filter_response", 4))
    with torch.no_grad():
        layer.tau.copy_(torch.tensor([0.0, 0.8, -0.5, 1.2]))  # thresholds that cut some outputs
    x = activations(seed=5).double()
    nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
    y = layer.weight.double().view(1, -1, 1, 1) * x / torch.sqrt(nu2 + 1e-6) + layer.bias.double().view(1, -1, 1, 1)
    expected = torch.maximum(y, layer.tau.double().view(1, -1, 1, 1))
    torch.testing.assert_close(layer(x.float()).double(), expected, rtol=1e-5, atol=1e-5)
    assert (expected == layer.tau.double().view(1, -1, 1, 1)).any()
    assert not any(isinstance(m, nn.ReLU) for m in NormNet("filter_response", 0.0).modules())  # the TLU replaces it


def test_rms_norm_scales_each_image_by_its_root_mean_square_with_a_gain_per_channel() -> None:
    layer = randomized(create_norm("rms", 4))
    x = activations(seed=6).double()
    rms = torch.sqrt(x.pow(2).mean(dim=(1, 2, 3), keepdim=True) + 1e-5)
    expected = x / rms * layer.weight.double().view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x.float()).double(), expected, rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in layer.parameters()) == 4  # a gain alone, no shift


def test_evonorm_s0_is_the_papers_sample_based_layer() -> None:
    layer = randomized(create_norm("evonorm_s0", 4, groups=2))
    x = activations(seed=7).double()
    grouped = x.view(8, 2, 2, 5, 6)
    std = (
        torch.sqrt(grouped.var(dim=(2, 3, 4), unbiased=False, keepdim=True) + 1e-5).expand_as(grouped).reshape(x.shape)
    )
    v, weight, bias = (t.double().view(1, -1, 1, 1) for t in (layer.v, layer.weight, layer.bias))
    expected = x * torch.sigmoid(v * x) / std * weight + bias
    torch.testing.assert_close(layer(x.float()).double(), expected, rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, nn.ReLU) for m in NormNet("evonorm_s0", 0.0, groups=2).modules())


def test_dynamic_tanh_is_tanh_of_alpha_x_with_an_affine_pair() -> None:
    layer = randomized(create_norm("dyt", 4, alpha_init=0.5))
    assert create_norm("dyt", 4, alpha_init=0.5).alpha.item() == 0.5
    x = activations(seed=8).double()
    weight, bias = layer.weight.double().view(1, -1, 1, 1), layer.bias.double().view(1, -1, 1, 1)
    expected = torch.tanh(layer.alpha.double() * x) * weight + bias
    torch.testing.assert_close(layer(x.float()).double(), expected, rtol=1e-5, atol=1e-5)
    layer(x.float()).sum().backward()
    assert layer.alpha.grad is not None and layer.alpha.grad.abs().item() > 0  # alpha learns


def test_group_norm_after_weight_standardization_is_two_known_parts() -> None:
    model = NormNet("group_ws", 0.0, groups=2)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [type(conv) for conv in convs] == [StandardizedConv2d] * 8 + [nn.Conv2d]
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 8 and all(norm.num_groups == 2 for norm in norms)


def test_group_norm_takes_channels_per_group_as_the_gn_papers_second_form() -> None:
    by_width = create_norm("group", 26, channels_per_group=2)
    assert isinstance(by_width, nn.GroupNorm) and by_width.num_groups == 13
    assert norm_spec("group").layer({"channels_per_group": 2}) == "GroupNorm(C/2, C)"
    assert norm_spec("group").layer({"groups": 2}) == "GroupNorm(2, C)"
    model = NormNet("group", 0.0, channels_per_group=2)
    assert [m.num_groups for m in model.modules() if isinstance(m, nn.GroupNorm)] == [4, 4, 4, 6, 7, 4, 13, 25]
    with pytest.raises(ValueError, match="one of"):
        create_norm("group", 8, groups=2, channels_per_group=2)
    for variant, message in (
        ({"norm": "group", "groups": 2, "channels_per_group": 2}, "exactly one of groups or channels_per_group"),
        ({"norm": "group"}, "not neither"),
        ({"norm": "group", "channels_per_group": 3}, "does not divide"),
    ):
        with pytest.raises(ConfigError, match=message):
            validate_config(study_config({"variants": {"gx": variant}}))


def test_optional_norm_parameters_reach_the_settings_at_their_defaults() -> None:
    config = study_config({"variants": {"brn": {"norm": "batch_renorm", "d_max": 2.0}}})
    variant = Study.from_config(config).variants["brn"]
    assert variant.params == {"r_max": 3.0, "d_max": 2.0, "renorm_warmup": 0}
    with pytest.raises(ConfigError, match="r_max"):
        study_config({"variants": {"brn": {"norm": "batch_renorm", "r_max": 0.5}}})


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory):
    data = synthetic_files(tmp_path_factory.mktemp("synthetic"), tiny_settings())
    return load_splits(data.files, data.provenance, tiny_settings().data)


@pytest.mark.parametrize("norm", sorted(NORMS))
def test_every_registered_norm_trains_and_is_bitwise_deterministic(norm: str, splits, tmp_path) -> None:
    settings = tiny_settings(norm, epochs=2)
    quiet = {"log": lambda _: None}
    first = fit(settings, splits, CPU, 1, tmp_path / "a.pt", **quiet)
    second = fit(settings, splits, CPU, 1, tmp_path / "b.pt", **quiet)
    timeless = [[{k: v for k, v in row.items() if k != "seconds"} for row in run.history] for run in (first, second)]
    assert timeless[0] == timeless[1]
    one, two = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(one[key], two[key]) for key in one)
    assert all(torch.isfinite(torch.tensor(row["train_loss"])) for row in first.history)
    assert first.history[-1]["train_loss"] < first.history[0]["train_loss"] * 1.5  # it trains, not diverges
    ghosted = dataclasses.replace(settings, variant=dataclasses.replace(settings.variant, ghost=4))
    if norm_spec(norm).batch_statistics:  # the batch-size study's statistics batches apply to it
        fit(ghosted, splits, CPU, 1, tmp_path / "c.pt", **quiet)


def test_the_robustness_section_says_which_norms_have_statistics_to_recompute() -> None:
    said = statistics_words({"bn": "batch", "gn": "group", "frn": "filter_response", "none": "none", "dyt": "dyt"})
    assert said == (
        "gn, frn compute their statistics per image, so their one mode is already per image; none, dyt compute no "
        "statistics at all: there is nothing for PreciseBN or adaptation to recompute, and their one mode is the model "
        "as trained."
    )
    assert statistics_words({"bn": "batch", "brn": "batch_renorm"}) == ""  # the section's subject, not listed


# The zoo on the smoke study's synthetic digits (2 seeds, 2 epochs): every norm of the registry through the main
# comparison with the control, the batch study (batch renorm beside batch norm) and the robustness study, to a report.
ZOO_SMOKE = "study: zoo_smoke\nbatch_study:\n  variants: [bn, brn, gn]\n"


@background_study
def zoo_study(runs: BackgroundRuns, folder: Path) -> Path:
    """The zoo study on synthetic digits, run once per test session."""
    study = copy_workflow(folder / "study")
    (study / "studies").mkdir()
    shutil.copy2(REPO / "studies" / "zoo.yaml", study / "studies" / "zoo.yaml")
    (study / "zoo_smoke.yaml").write_text(ZOO_SMOKE)
    background_snakemake(
        runs, study, "--cores", "2", "--configfile", "tests/smoke.yaml", "studies/zoo.yaml", "zoo_smoke.yaml"
    )
    return study


def test_the_zoo_study_reports_every_norm_in_every_section_and_leads_with_the_control(zoo_study: Path) -> None:
    html = unescape((zoo_study / "report" / "zoo_smoke" / "index.html").read_text())
    variants = yaml.safe_load((REPO / "studies" / "zoo.yaml").read_text())["variants"]
    summary = pd.read_csv(zoo_study / "results" / "zoo_smoke" / "tables" / "summary.csv")
    assert set(variants) <= set(summary["variant"]) and set(summary["norm"]) == set(NORMS)
    control = pd.read_csv(zoo_study / "results" / "zoo_smoke" / "tables" / "control.csv")
    assert set(control["reference"]) == {"none"} and set(control["variant"]) == set(summary["variant"]) - {"none"}
    key_results = html.split('id="key-results"')[1].split("</section>")[0] if 'id="key-results"' in html else html
    assert re.search(
        r"Normalization (helps this network|helps some norms here|is not shown to help this network)", key_results
    )
    assert "Does normalization help? Every norm against the control" in html
    for name in summary["variant"]:  # the model table: each variant's count and what its norm's own parameters are
        assert f'<td class="text">{name}</td>' in html
    assert "7,384" in html and "7,786" in html and "a gain per channel, no shift (1 per channel)" in html
    assert "none, dyt compute no statistics at all" in html
    batch = pd.read_csv(zoo_study / "results" / "zoo_smoke" / "batch_study" / "summary.csv")
    assert {"bn", "brn"} <= set(batch.loc[batch["batch_size"] == 4, "variant"])
    robustness = pd.read_csv(zoo_study / "results" / "zoo_smoke" / "tables" / "robustness_family.csv")
    assert set(robustness["variant"]) == set(summary["variant"]) - {"bn"}
