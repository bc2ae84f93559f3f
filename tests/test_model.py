"""The norm factory and the 7,652-parameter CNN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normstudy.model.architecture import Conv, NetworkSpec, Pool, network_spec
from normstudy.model.nets.normnet import SPEC as NORMNET
from normstudy.model.network import NormNet, StandardizedConv2d, count_parameters, model_summary
from normstudy.model.norm_specs import NORMS as REGISTRY
from normstudy.model.norm_specs import NormSpec, canonical_name, norm_spec
from normstudy.model.norms import BUILDERS, create_norm
from normstudy.packing import pack_state_dicts, unpack_state_dict

NORMS = sorted(REGISTRY)


def params_of(norm: str) -> dict[str, int]:
    """Parameter values every norm of the registry accepts on this network: two groups (the first of a norm's
    alternatives), and 2 for every other parameter (batch renorm's bounds and warm-up, DyT's alpha)."""
    spec = norm_spec(norm)
    return {param.name: 2 for param in spec.params if param.name not in spec.one_of[1:]}


# Where a norm's parameters are not the affine pair per channel (2 x the 134 normalized channels): the control has
# none, RMS norm a gain alone, FRN and EvoNorm-S0 a third vector (the TLU's tau, the sigmoid's v), DyT one alpha
# per layer (8 layers).
PARAMETERS = {"none": 7384, "rms": 7518, "filter_response": 7786, "evonorm_s0": 7786, "dyt": 7660}


def net(norm: str, dropout: float = 0.05, copies: int = 1) -> NormNet:
    """The study's network with `norm` and its parameters."""
    return NormNet(norm, dropout, copies, **params_of(norm))


def test_every_norm_of_the_registry_has_one_builder() -> None:
    assert sorted(BUILDERS) == NORMS


def test_weight_standardization_is_the_papers_formula() -> None:
    # Qiao et al. 2019, eq. 5: each output channel's filter less its mean, over its standard deviation.
    torch.manual_seed(0)
    conv = StandardizedConv2d(3, 4, 3, bias=False)
    x = torch.randn(2, 3, 8, 8)
    weight = conv.weight.detach()
    mean = weight.mean(dim=(1, 2, 3), keepdim=True)
    var = (weight - mean).square().mean(dim=(1, 2, 3), keepdim=True)
    expected = F.conv2d(x, (weight - mean) / torch.sqrt(var + 1e-5))
    torch.testing.assert_close(conv(x), expected)
    # So an affine change of the weights leaves the output as it was, but for eps (0.04 % here).
    with torch.no_grad():
        conv.weight.mul_(3.0).add_(0.5)
    torch.testing.assert_close(conv(x), expected, atol=1e-2, rtol=1e-3)


def test_the_block_follows_the_spec_an_own_activation_and_a_standardized_convolution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = NormSpec("toy_own", "toy norm", "Toy(C)", "a norm with its own activation", batch_statistics=False,
                    owns_activation=True, conv="standardized")  # fmt: skip
    monkeypatch.setitem(REGISTRY, spec.name, spec)
    monkeypatch.setitem(
        BUILDERS, spec.name, lambda channels, copies: nn.Sequential(nn.GroupNorm(copies, copies * channels), nn.Tanh())
    )
    model = NormNet("toy_own", 0.0)
    layers = list(model.layers)
    assert not any(isinstance(layer, nn.ReLU) for layer in layers)  # the norm's Tanh is the block's activation
    convs = [layer for layer in layers if isinstance(layer, nn.Conv2d)]
    assert [type(conv) for conv in convs] == [StandardizedConv2d] * 8 + [nn.Conv2d]  # the classifier stays plain
    plain = NormNet("layer", 0.0)
    assert sum(isinstance(layer, nn.ReLU) for layer in plain.layers) == 8
    out = model(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("name", "kind", "groups"),
    [
        ("batch", nn.BatchNorm2d, None),
        ("group", nn.GroupNorm, 2),
        ("layer", nn.GroupNorm, 1),
        ("instance", nn.GroupNorm, 12),
    ],
)
def test_factory_builds_each_norm(name: str, kind: type, groups: int | None) -> None:
    layer = create_norm(name, 12, **params_of(name))
    assert type(layer) is kind
    if groups is not None:
        assert layer.num_groups == groups and layer.num_channels == 12
    assert sum(p.numel() for p in layer.parameters()) == 24  # one affine pair per channel


@pytest.mark.parametrize("alias", ["BatchNorm", "batch_norm", "BATCH", " batchnorm2d "])
def test_names_are_normalized(alias: str) -> None:
    assert canonical_name(alias) == "batch"
    assert isinstance(create_norm(alias, 8), nn.BatchNorm2d)


def test_a_registered_name_ending_in_norm_is_found_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = NormSpec("toy_renorm", "toy renorm", "Toy(C)", "a name that ends in norm", batch_statistics=True)
    monkeypatch.setitem(REGISTRY, spec.name, spec)
    assert canonical_name("toy_renorm") == canonical_name("ToyReNorm2d") == "toy_renorm"
    assert canonical_name("Group_Norm") == "group" and norm_spec("GroupNorm") is REGISTRY["group"]


def test_unknown_norm_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown norm 'weight'; known: batch, group, layer, instance"):
        create_norm("weight", 8)


def test_group_count_must_divide_channels() -> None:
    with pytest.raises(ValueError, match="4 groups do not divide 14 channels"):
        create_norm("group", 14, groups=4)


def test_layer_norm_normalizes_over_channels_and_space_per_sample() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 8, 5, 5) * 4 + 2
    y = create_norm("layer", 8)(x)
    flat = y.flatten(1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.var(1, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


def test_instance_norm_normalizes_each_channel_of_each_sample() -> None:
    x = torch.randn(2, 8, 6, 6) * 3 - 1
    y = create_norm("instance", 8)(x).flatten(2)
    torch.testing.assert_close(y.mean(2), torch.zeros(2, 8), atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm", NORMS)
def test_every_variant_stays_under_8000_parameters_and_the_usual_norms_have_7652(norm: str) -> None:
    assert count_parameters(net(norm)) == PARAMETERS.get(norm, 7652) < 8000


@pytest.mark.parametrize("norm", NORMS)
def test_forward_and_backward(norm: str) -> None:
    torch.manual_seed(0)
    model = net(norm).train()
    x = torch.randn(4, 1, 28, 28)
    out = model(x)
    assert out.shape == (4, 10)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(4))  # log-softmax
    out[:, 3].sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)


def test_summary_matches_the_seeds_table() -> None:
    rows = model_summary(net("batch"), NORMNET.input_shape)
    assert rows[0] == {"layer": "Conv2d-1", "output_shape": [-1, 8, 26, 26], "params": 72}
    assert rows[1] == {"layer": "BatchNorm2d-2", "output_shape": [-1, 8, 26, 26], "params": 16}
    assert rows[12] == {"layer": "MaxPool2d-13", "output_shape": [-1, 8, 11, 11], "params": 0}
    assert rows[-2] == {"layer": "AvgPool2d-34", "output_shape": [-1, 50, 1, 1], "params": 0}
    assert rows[-1] == {"layer": "Conv2d-35", "output_shape": [-1, 10, 1, 1], "params": 500}
    assert len(rows) == 35 and sum(r["params"] for r in rows) == 7652
    norms = [r for r in rows if r["layer"].startswith("BatchNorm2d")]
    assert [r["output_shape"][1] for r in norms] == list(NORMNET.normed_channels)


# Write-up 004's receptive-field table for its CIFAR-10 network (input 32), as printed there:
# layer, input size, input RF, jump in, padding, kernel, stride, output size, output RF, jump out.
SEED_004_TABLE = [
    (1, 32, 1, 1, 0, 3, 1, 30, 3, 1),
    (2, 30, 3, 1, 0, 3, 1, 28, 5, 1),
    (3, 28, 5, 1, 0, 1, 1, 28, 5, 1),
    (4, 28, 5, 1, 0, 2, 2, 14, 6, 2),
    (5, 14, 6, 2, 1, 3, 1, 14, 10, 2),
    (6, 14, 10, 2, 1, 3, 1, 14, 14, 2),
    (7, 14, 14, 2, 1, 3, 1, 14, 18, 2),
    (8, 14, 18, 2, 0, 1, 1, 14, 18, 2),
    (9, 14, 18, 2, 0, 2, 2, 7, 20, 4),
    (10, 7, 20, 4, 1, 3, 1, 7, 28, 4),
    (11, 7, 28, 4, 1, 3, 1, 7, 36, 4),
    (12, 7, 36, 4, 1, 3, 1, 7, 44, 4),
    (13, 7, 44, 4, 0, 7, 7, 1, 68, 28),
    (14, 1, 68, 28, 0, 1, 1, 1, 68, 28),
]


def seed_004_layers() -> tuple:
    """Write-up 004's network as layer specs (channel counts do not enter the receptive field)."""
    conv = lambda k, p=0: Conv(8, 8, k, padding=p)  # noqa: E731
    return (
        conv(3), conv(3), conv(1), Pool("max", 2), conv(3, 1), conv(3, 1), conv(3, 1), conv(1),
        Pool("max", 2), conv(3, 1), conv(3, 1), conv(3, 1), Pool("avg", 7), conv(1),
    )  # fmt: skip


def test_receptive_field_reproduces_seed_004s_table() -> None:
    rows = NetworkSpec("seed004", "write-up 004's net", seed_004_layers(), (3, 32, 32), 10).receptive_field_rows()
    keys = ("n_in", "rf_in", "jump_in", "padding", "kernel", "stride", "n_out", "rf_out", "jump_out")
    assert [(i + 1, *(row[k] for k in keys)) for i, row in enumerate(rows)] == SEED_004_TABLE


def test_the_registered_skipnet_is_write_up_004s_network() -> None:
    # Its receptive-field table is the write-up's, row by row; its skips are the four shape-keeping 3x3 layers.
    spec = network_spec("skipnet")
    keys = ("n_in", "rf_in", "jump_in", "padding", "kernel", "stride", "n_out", "rf_out", "jump_out")
    assert [(i + 1, *(row[k] for k in keys)) for i, row in enumerate(spec.receptive_field_rows())] == SEED_004_TABLE
    assert [i + 1 for i, layer in enumerate(spec.layers) if isinstance(layer, Conv) and layer.skip] == [6, 7, 11, 12]
    model = NormNet("batch", 0.0, network=spec)
    assert count_parameters(model) == 43616 < 50000  # 43,120 convolution weights and 2 x 248 affine
    rows = model_summary(model, spec.input_shape)
    assert rows[-1]["output_shape"] == [-1, 10, 1, 1] and sum(row["params"] for row in rows) == 43616
    assert spec.valid_divisors() == [1, 2, 4, 8]


SKIPPED = NetworkSpec(
    "skipped",
    "a small net with two skip blocks",
    (Conv(3, 4, 3), Conv(4, 4, 3, padding=1, skip=True), Pool("max", 2), Conv(4, 4, 3, padding=1, skip=True),
     Pool("avg", 13), Conv(4, 10, 1, normed=False)),
    (3, 28, 28),
    10,
)  # fmt: skip


def test_a_skip_block_adds_its_input_after_the_norm_before_the_relu() -> None:
    torch.manual_seed(0)
    model = NormNet("batch", 0.0, network=SKIPPED).eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    x = torch.randn(5, 3, 28, 28)
    first = F.relu(norms[0](convs[0](x)))
    second = F.relu(norms[1](convs[1](first)) + first)
    third = F.relu(norms[2](convs[2](F.max_pool2d(second, 2))) + F.max_pool2d(second, 2))
    logits = convs[3](F.avg_pool2d(third, 13)).flatten(1)
    torch.testing.assert_close(model(x), F.log_softmax(logits, dim=1))
    # The markers hold nothing: the parameters are the convolutions' and the norms'.
    assert count_parameters(model) == 3 * 4 * 9 + 2 * (4 * 4 * 9) + 4 * 10 + 3 * 2 * 4


def test_packed_skip_blocks_compute_each_models_output() -> None:
    # Model i of a pack reads input channels 3i..3i+2 of a colour batch, and its skips add its own channels.
    models = []
    for index in range(2):
        torch.manual_seed(index)
        models.append(NormNet("group", 0.0, network=SKIPPED, groups=2).eval())
    packed = NormNet("group", 0.0, 2, network=SKIPPED, groups=2).eval()
    packed.load_state_dict(pack_state_dicts([model.state_dict() for model in models]))
    x = [torch.randn(4, 3, 28, 28) for _ in models]
    out = packed(torch.cat(x, dim=1))
    for index, model in enumerate(models):
        torch.testing.assert_close(out[:, index], model(x[index]), atol=1e-5, rtol=1e-5)


def test_a_net_without_skips_keeps_its_layer_indices() -> None:
    # The saved models of every earlier run name their tensors by position in `layers`.
    keys = list(net("batch").state_dict())
    assert keys[:3] == ["layers.0.weight", "layers.1.weight", "layers.1.bias"] and "layers.4.weight" in keys


def test_a_skip_that_changes_the_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"a skip needs a normed layer of its input's shape: layer 1 \(3->4"):
        NetworkSpec("bad", "bad", (Conv(3, 4, 3, skip=True),), (3, 28, 28), 10)
    with pytest.raises(ValueError, match=r"layer 1 .*kernel 3 pad 0"):
        NetworkSpec("bad", "bad", (Conv(4, 4, 3, skip=True),), (4, 28, 28), 10)


def test_receptive_field_of_this_network_by_hand() -> None:
    """conv 8->26 3x3 is the seventh layer: 28 -> 26 -> 24 -> 22, max-pool -> 11 (jump 2), 9, 7, 7 (1x1).

    Its input field: 1 + 2 + 2 + 2 (three 3x3 convs at jump 1) + 1 (pool) + 4 + 4 (two 3x3 at jump 2) = 16;
    out: 16 + 2 x 2 = 20 on a 5x5 map. The 5x5 average pool then covers 20 + 4 x 2 = 28: the whole image.
    """
    rows = NORMNET.receptive_field_rows()
    row = next(r for r in rows if r["layer"] == "conv 8→26 3×3")
    assert (row["n_in"], row["n_out"], row["jump_in"], row["rf_in"], row["rf_out"]) == (7, 5, 2, 16, 20)
    pool = next(r for r in rows if r["layer"] == "avg-pool 5")
    assert (pool["n_out"], pool["rf_out"], pool["jump_out"]) == (1, 28, 10)
    assert rows[-1]["rf_out"] == 28


# ---- Packing: k models in one network, each computing what it computes alone.


def packed_pair(norm: str, copies: int = 3, seed: int = 0) -> tuple[list[NormNet], NormNet]:
    """`copies` models with their own initial weights, and one packed network holding them."""
    models = []
    for index in range(copies):
        torch.manual_seed(seed + index)
        models.append(net(norm, 0.0))
    packed = net(norm, 0.0, copies)
    packed.load_state_dict(pack_state_dicts([model.state_dict() for model in models]))
    return models, packed


@pytest.mark.parametrize("norm", NORMS)
def test_a_packed_norm_is_each_models_own_norm(norm: str) -> None:
    """Channels i*C..(i+1)*C - 1 of the packed layer are normalized as model i's layer alone would."""
    copies, channels = 3, 8
    alone = create_norm(norm, channels, **params_of(norm)).train()
    packed = create_norm(norm, channels, copies, **params_of(norm)).train()
    torch.manual_seed(1)
    x = torch.randn(4, copies * channels, 5, 5) * 3 + 1
    out = packed(x)
    for index in range(copies):
        block = slice(index * channels, (index + 1) * channels)
        # A fresh layer per model: batch renorm's output depends on the running averages each call moves.
        alone = create_norm(norm, channels, **params_of(norm)).train()
        torch.testing.assert_close(out[:, block], alone(x[:, block]), atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in packed.parameters()) == copies * sum(p.numel() for p in alone.parameters())


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_packed_network_computes_each_models_output(norm: str, mode: str) -> None:
    models, packed = packed_pair(norm)
    for model in (*models, packed):
        model.train(mode == "train")
    torch.manual_seed(5)
    inputs = [torch.randn(6, 1, 28, 28) for _ in models]  # each model its own batch
    out = packed(torch.cat(inputs, dim=1))
    assert out.shape == (6, 3, 10)
    for index, (model, x) in enumerate(zip(models, inputs, strict=True)):
        torch.testing.assert_close(out[:, index], model(x), atol=1e-5, rtol=1e-4)
    assert count_parameters(packed) == 3 * PARAMETERS.get(norm, 7652)


def test_packing_a_state_dict_and_unpacking_it_gives_each_model_back() -> None:
    models, packed = packed_pair("batch")
    for model in models:  # non-default running statistics and step counter, like a trained model's
        model.train()
        model(torch.randn(4, 1, 28, 28))
    packed.load_state_dict(pack_state_dicts([model.state_dict() for model in models]))
    unpacked = unpack_state_dict(packed.state_dict(), len(models))
    for model, state in zip(models, unpacked, strict=True):
        assert state.keys() == model.state_dict().keys()
        assert all(torch.equal(state[key], tensor) for key, tensor in model.state_dict().items())
    # Each unpacked state is a plain model's: it loads into the 7,652-parameter network as it is.
    net("batch", 0.0).load_state_dict(unpacked[1])


@pytest.mark.parametrize("norm", ["instance", "layer", "group", "batch"])
def test_only_instance_norm_removes_a_per_image_contrast_change_by_construction(norm: str) -> None:
    # What the robustness report says of instance norm, checked on the network itself: a per-image affine change of
    # the pixels (a contrast change) passes the bias-free, unpadded first convolution as a per-channel affine change,
    # which a norm over each image and channel removes; over all channels or the batch, it does not.
    torch.manual_seed(0)
    model = net(norm, 0.0).train()  # batch norm on this batch's statistics; no dropout to draw
    images = torch.rand(8, 1, 28, 28)
    means = images.mean(dim=(1, 2, 3), keepdim=True)
    faded = (images - means) * 0.3 + means
    with torch.no_grad():
        moved = (model(faded) - model(images)).abs().max().item()
    assert NORMNET.removes_image_affine(norm_spec(norm)) == (norm == "instance")
    if norm == "instance":
        assert moved < 1e-3  # the norm's epsilon, at a variance 0.09 of the original's
    else:
        assert moved > 1e-2
    padded = NetworkSpec("padded", "padded", (Conv(1, 8, 3, padding=1), *NORMNET.layers[1:]), (1, 28, 28), 10)
    assert not padded.removes_image_affine(norm_spec("instance"))  # zero padding is not moved by the shift
