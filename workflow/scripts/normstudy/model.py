"""The seeds' 7,652-parameter MNIST CNN, with the normalization layer chosen by name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from normstudy.architecture import INPUT_SIZE, LAYERS, Pool
from normstudy.config import VariantSettings
from normstudy.norms import create_norm


class NormNet(nn.Module):
    """Conv blocks (conv -> norm -> dropout -> ReLU), two pools and a 1x1 classifier, log-softmax out."""

    def __init__(self, norm: str, groups: int | None, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for spec in LAYERS:
            if isinstance(spec, Pool):
                layers.append(nn.MaxPool2d(spec.kernel) if spec.kind == "max" else nn.AvgPool2d(spec.kernel))
                continue
            layers.append(nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel, padding=spec.padding, bias=False))
            if spec.normed:
                layers += [
                    create_norm(norm, spec.out_channels, groups),
                    nn.Dropout(dropout),
                    nn.ReLU(inplace=True),
                ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the ten classes for a batch of [N, 1, 28, 28] images."""
        return F.log_softmax(self.layers(x).flatten(1), dim=1)


def build_model(variant: VariantSettings) -> NormNet:
    """The network for one variant's settings."""
    return NormNet(variant.norm, variant.groups, variant.dropout)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def conv_weights(model: nn.Module) -> list[torch.Tensor]:
    """The convolution weights the L1 penalty applies to."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]


def model_summary(model: nn.Module, input_size: int = INPUT_SIZE) -> list[dict]:
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
            model(torch.zeros(2, 1, input_size, input_size))
    finally:
        for handle in hooks:
            handle.remove()
        model.train(was_training)
    return rows
