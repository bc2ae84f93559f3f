"""The write-ups' 7,652-parameter MNIST CNN, with the normalization layer chosen by name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from normstudy.architecture import INPUT_SIZE, LAYERS, NUM_CLASSES, Pool
from normstudy.norms import create_norm
from normstudy.settings import VariantSettings


class NormNet(nn.Module):
    """Conv blocks (conv -> norm -> dropout -> ReLU), two pools and a 1x1 classifier, log-softmax out.

    With `copies` k > 1 it is k such networks packed into one: every convolution is grouped (k groups), every
    norm normalizes each model's channels on their own (norms.py), and model i reads input channel i. Each model
    computes what it would alone, in one pass of wider layers, which is what makes small batches affordable.
    """

    def __init__(self, norm: str, groups: int | None, dropout: float, copies: int = 1, ghost: int = 0) -> None:
        super().__init__()
        self.copies = copies
        layers: list[nn.Module] = []
        for spec in LAYERS:
            if isinstance(spec, Pool):
                layers.append(nn.MaxPool2d(spec.kernel) if spec.kind == "max" else nn.AvgPool2d(spec.kernel))
                continue
            layers.append(
                nn.Conv2d(
                    copies * spec.in_channels,
                    copies * spec.out_channels,
                    spec.kernel,
                    padding=spec.padding,
                    groups=copies,
                    bias=False,
                )
            )
            if spec.normed:
                layers += [
                    create_norm(norm, spec.out_channels, groups, copies, ghost),
                    nn.Dropout(dropout),
                    nn.ReLU(inplace=True),
                ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the ten classes: [N, 10] for [N, 1, 28, 28] images; [N, k, 10] when packed."""
        logits = self.layers(x).flatten(1)
        if self.copies == 1:
            return F.log_softmax(logits, dim=1)
        return F.log_softmax(logits.view(len(x), self.copies, NUM_CLASSES), dim=2)


def build_model(variant: VariantSettings, copies: int = 1) -> NormNet:
    """The network for one variant's settings (`copies` of it packed into one, for a pack of seeds)."""
    return NormNet(variant.norm, variant.groups, variant.dropout, copies, variant.ghost)


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
