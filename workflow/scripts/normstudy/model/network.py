"""A network of the registry as a torch module, with the normalization layer chosen by name."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from normstudy.model.architecture import DEFAULT_NETWORK, NetworkSpec, Pool, network_spec
from normstudy.model.norm_specs import norm_spec
from normstudy.model.norms import create_norm
from normstudy.settings import VariantSettings


class StandardizedConv2d(nn.Conv2d):
    """A convolution whose weights are standardized per output channel before use (weight standardization, Qiao et
    al. 2019): each filter's weights less their mean, divided by their standard deviation (biased, plus eps)."""

    eps = 1e-5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution with the standardized weights."""
        weight = self.weight
        flat = weight.flatten(1)
        mean = flat.mean(dim=1).view(-1, 1, 1, 1)
        var = flat.var(dim=1, unbiased=False).view(-1, 1, 1, 1)
        return self._conv_forward(x, (weight - mean) / torch.sqrt(var + self.eps), self.bias)


# The convolution a norm's spec asks for before it (NormSpec.conv).
CONVOLUTIONS: dict[str, type[nn.Conv2d]] = {"plain": nn.Conv2d, "standardized": StandardizedConv2d}


class SkipFrom(nn.Identity):
    """Marks where a skip connection's input is taken: the input of the block that follows."""


class SkipAdd(nn.Identity):
    """Marks where the input taken at the last SkipFrom is added: after the block's norm, before its ReLU."""


class NormNet(nn.Module):
    """A network of the registry (architecture.py) with one norm: conv blocks (conv -> norm -> dropout -> ReLU, the
    ReLU left out where the norm owns its activation; a skip block adds its input after the norm), pools and a 1x1
    classifier, log-softmax out.

    With `copies` k > 1 it is k such networks packed into one: every convolution is grouped (k groups), every
    norm normalizes each model's channels on their own (norms.py), and model i reads input channel i. Each model
    computes what it would alone, in one pass of wider layers, which is what makes small batches affordable.
    """

    def __init__(
        self,
        norm: str,
        dropout: float,
        copies: int = 1,
        ghost: int = 0,
        network: NetworkSpec | None = None,
        **params: Any,
    ) -> None:
        super().__init__()
        network = network or network_spec(DEFAULT_NETWORK)
        self.copies, self.num_classes = copies, network.num_classes
        spec = norm_spec(norm)
        conv = CONVOLUTIONS[spec.conv]
        layers: list[nn.Module] = []
        for layer in network.layers:
            if isinstance(layer, Pool):
                layers.append(nn.MaxPool2d(layer.kernel) if layer.kind == "max" else nn.AvgPool2d(layer.kernel))
                continue
            normed = layer.normed
            layers += [SkipFrom()] if layer.skip else []
            layers.append(
                (conv if normed else nn.Conv2d)(
                    copies * layer.in_channels,
                    copies * layer.out_channels,
                    layer.kernel,
                    padding=layer.padding,
                    groups=copies,
                    bias=spec.conv_bias and normed,
                )
            )
            if normed and spec.conv_init == "he":
                nn.init.kaiming_normal_(layers[-1].weight, mode="fan_in", nonlinearity="relu")
            if normed:
                layers.append(create_norm(spec.name, layer.out_channels, copies, ghost, **params))
                layers += [SkipAdd()] if layer.skip else []
                layers.append(nn.Dropout(dropout))
                layers += [] if spec.owns_activation else [nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)  # the markers hold no parameters: a net without skips keeps its indices

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the classes: [N, classes] for [N, C, H, W] images; [N, k, classes] when packed."""
        taken = x
        for layer in self.layers:
            if isinstance(layer, SkipFrom):
                taken = x
            elif isinstance(layer, SkipAdd):
                x = x + taken
            else:
                x = layer(x)
        logits = x.flatten(1)
        if self.copies == 1:
            return F.log_softmax(logits, dim=1)
        return F.log_softmax(logits.view(len(x), self.copies, self.num_classes), dim=2)


def build_model(variant: VariantSettings, copies: int = 1, network: NetworkSpec | None = None) -> NormNet:
    """The network (the write-ups' unless told) for one variant's settings (`copies` of it packed into one, for a pack
    of seeds)."""
    return NormNet(variant.norm, variant.dropout, copies, variant.ghost, network, **variant.norm_params())


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    """The convolution weights the L1 penalty applies to."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def model_summary(model: nn.Module, input_shape: tuple[int, int, int]) -> list[dict]:
    """Per-layer rows (layer, output shape, parameters) from a forward pass, like torchsummary's."""
    rows: list[dict] = []
    hooks = []
    for module in model.modules():
        if len(list(module.children())) == 0:

            def hook(mod: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
                rows.append(
                    {
                        "layer": f"{type(mod).__name__}-{len(rows) + 1}",
                        "output_shape": [-1, *output.shape[1:]],
                        "params": sum(p.numel() for p in mod.parameters()),
                    }
                )

            hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(2, *input_shape))
    finally:
        for handle in hooks:
            handle.remove()
        model.train(was_training)
    return rows
