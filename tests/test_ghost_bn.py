"""Ghost batch norm (statistics over groups of a batch) and PreciseBN (population statistics after training),
against hand computations and against plain BatchNorm."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import synthetic_files, tiny_settings
from torch import nn

from normstudy.data.tensors import eval_batch, load_splits
from normstudy.engine import fit
from normstudy.model.ghost_kernel import fits_kernel, ghost_form, kernel_available
from normstudy.model.network import build_model
from normstudy.model.norms import GhostBatchNorm2d, batch_statistics_layers, create_norm
from normstudy.model.precise_bn import set_population_statistics

CPU = torch.device("cpu")


# The two forms of ghost batch norm: the fused kernel takes channels-last activations, tensor operations the rest.
LAYOUTS = {"kernel": torch.channels_last, "tensor operations": torch.contiguous_format}


def inputs(batch: int, seed: int = 0, layout: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """A batch of random activations, [batch, 3, 4, 5], with per-channel offsets, in memory `layout`."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 4, 5, generator=generator) * 2 + torch.tensor([1.0, -2.0, 0.5]).view(1, 3, 1, 1)
    return x.contiguous(memory_format=layout)


def test_the_fused_kernel_builds_here_and_takes_channels_last_cpu_float32_alone() -> None:
    assert kernel_available(), "ghost batch norm's C++ kernel did not build: is a C++ compiler installed?"
    x = inputs(8, layout=torch.channels_last)
    assert fits_kernel(x)
    assert not fits_kernel(x.contiguous()) and not fits_kernel(x.double())
    # A ghost run's job record names the form that computed it (their last bits differ).
    assert ghost_form(CPU, "channels_last") == "fused CPU kernel"
    assert ghost_form(CPU, "contiguous") == ghost_form(torch.device("cuda"), "channels_last") == "tensor operations"


@pytest.mark.parametrize("ghost", [8, 32])
def test_a_ghost_batch_no_smaller_than_the_batch_is_plain_batch_norm_bit_for_bit(ghost: int) -> None:
    plain, ghosted = nn.BatchNorm2d(3), GhostBatchNorm2d(3, ghost)
    with torch.no_grad():
        for layer in (plain, ghosted):
            layer.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
            layer.bias.copy_(torch.tensor([0.1, 0.0, 3.0]))
    x = inputs(8)
    assert torch.equal(plain(x), ghosted(x))
    assert torch.equal(plain.running_mean, ghosted.running_mean) and torch.equal(plain.running_var, ghosted.running_var)
    plain.eval(), ghosted.eval()
    assert torch.equal(plain(x), ghosted(x))


@pytest.mark.parametrize("form", LAYOUTS)
@pytest.mark.parametrize(("batch", "ghost"), [(8, 2), (8, 4), (7, 3)])
def test_each_ghost_group_is_normalized_with_its_own_statistics(batch: int, ghost: int, form: str) -> None:
    layer = GhostBatchNorm2d(3, ghost)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
        layer.bias.copy_(torch.tensor([0.1, 0.0, 3.0]))
    x = inputs(batch, seed=1, layout=LAYOUTS[form])
    out = layer(x)
    assert out.is_contiguous(memory_format=LAYOUTS[form])  # the next convolution gets the layout it was given
    means, variances = [], []
    for start in range(0, batch, ghost):  # by hand: one group at a time, a last smaller group on its own
        group = x[start : start + ghost].double()
        values = group.transpose(0, 1).reshape(3, -1)  # per channel, every image and position of the group
        mean, var = values.mean(1), values.var(1, unbiased=False)
        expected = (group - mean.view(1, 3, 1, 1)) / torch.sqrt(var.view(1, 3, 1, 1) + layer.eps)
        expected = expected * layer.weight.double().view(1, 3, 1, 1) + layer.bias.double().view(1, 3, 1, 1)
        torch.testing.assert_close(out[start : start + ghost].double(), expected, rtol=1e-5, atol=1e-5)
        means.append(mean), variances.append(values.var(1, unbiased=True))
    # Running averages: momentum 0.1 towards the mean over groups of their means and unbiased variances.
    torch.testing.assert_close(layer.running_mean.double(), 0.1 * torch.stack(means).mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        layer.running_var.double(), 0.9 + 0.1 * torch.stack(variances).mean(0), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("form", LAYOUTS)
def test_ghost_gradients_are_those_of_the_groups_own_formula(form: str) -> None:
    layer, x = GhostBatchNorm2d(3, 3), inputs(7, seed=2, layout=LAYOUTS[form]).requires_grad_()
    weight = torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        layer.weight.copy_(weight)
    twin = x.detach().double().requires_grad_()
    layer(x).pow(3).sum().backward()
    by_hand = []
    for start in range(0, 7, 3):  # the same formula, differentiated by autograd in float64
        group = twin[start : start + 3]
        mean = group.mean(dim=(0, 2, 3), keepdim=True)
        var = group.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        by_hand.append((group - mean) / torch.sqrt(var + layer.eps) * weight.view(1, 3, 1, 1))
    torch.cat(by_hand).pow(3).sum().backward()
    torch.testing.assert_close(x.grad.double(), twin.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer.weight.grad.double(), weight.grad, rtol=1e-4, atol=1e-4)
    assert layer.bias.grad is not None
    torch.testing.assert_close(
        layer.bias.grad.double(), (3 * torch.cat(by_hand).pow(2)).sum((0, 2, 3)), rtol=1e-4, atol=1e-4
    )


def test_the_kernel_gives_the_same_bits_on_one_thread_and_on_two() -> None:
    x = (torch.randn(64, 6, 9, 9) * 3 + 1).contiguous(memory_format=torch.channels_last).requires_grad_()
    grads = torch.randn_like(x)
    results = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            layer = GhostBatchNorm2d(6, 4)
            out = layer(x)
            dx, dweight = torch.autograd.grad(out, (x, layer.weight), grads)
            results.append((out, dx, dweight, layer.running_mean, layer.running_var))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(one, two) for one, two in zip(*results, strict=True))


def test_ghost_statistics_are_batch_norms_alone() -> None:
    assert isinstance(create_norm("batch", 8, ghost=4), GhostBatchNorm2d)
    with pytest.raises(ValueError, match="group norm has no batch statistics"):
        create_norm("group", 8, groups=2, ghost=4)
    with pytest.raises(ValueError, match="groups of at least 2 images"):
        GhostBatchNorm2d(8, 1)


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory):
    data = synthetic_files(tmp_path_factory.mktemp("synthetic"), tiny_settings())
    return load_splits(data.files, data.provenance, tiny_settings().data)


def test_a_run_with_ghost_batches_of_the_whole_batch_is_the_plain_run_bit_for_bit(splits, tmp_path) -> None:
    plain = tiny_settings(epochs=2)  # batch 32
    ghost = dataclasses.replace(plain, variant=dataclasses.replace(plain.variant, ghost=32))
    smaller = dataclasses.replace(plain, variant=dataclasses.replace(plain.variant, ghost=4))
    quiet = {"log": lambda _: None}
    runs = [fit(s, splits, CPU, 1, tmp_path / f"{i}.pt", **quiet).model for i, s in enumerate((plain, ghost, smaller))]
    first, second, third = (run.state_dict() for run in runs)
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not all(torch.equal(first[key], third[key]) for key in first)


def test_precise_bn_sets_each_layer_to_the_population_statistics_of_its_inputs(splits) -> None:
    settings = tiny_settings()
    model = build_model(settings.variant)
    images, data = splits.train_images[:100], settings.data
    set_population_statistics(model, images, data.mean, data.std, batch_size=30)
    assert len(batch_statistics_layers(model)) == 8
    first, layers = model.layers[0], batch_statistics_layers(model)
    with torch.no_grad():
        values = first(eval_batch(images, data.mean, data.std)).double()  # the first norm's inputs, all at once
    torch.testing.assert_close(layers[0].running_mean.double(), values.mean((0, 2, 3)), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(
        layers[0].running_var.double(), values.transpose(0, 1).reshape(8, -1).var(1, unbiased=False), rtol=1e-5, atol=0
    )
    # A later layer: its inputs, with every layer before it evaluating on its new statistics, have its statistics.
    captured = []
    hook = layers[3].register_forward_pre_hook(lambda _m, args: captured.append(args[0].double()))
    model.eval()
    with torch.no_grad():
        model(eval_batch(images, data.mean, data.std))
    hook.remove()
    torch.testing.assert_close(layers[3].running_mean.double(), captured[0].mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    group_model = build_model(tiny_settings("group").variant)
    set_population_statistics(group_model, images, data.mean, data.std)
    assert batch_statistics_layers(group_model) == []
