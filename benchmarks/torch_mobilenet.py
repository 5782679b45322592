"""The same MobileNet in PyTorch (no torchvision), built from `mnv2_jax.spec` for the benchmarks.

Walking the pure-Python spec guarantees identical layer widths, strides, activations (ReLU6 /
linear), batch-norm placement and shortcut adds as the Flax model, for every width multiplier,
resolution and ablation switch. Batch norm uses the same hyper-parameters (PyTorch momentum
``1 - 0.997``, eps ``1e-3``); dropout before the classifier as in the Flax model.

One deliberate difference, irrelevant to speed: convolutions use PyTorch's symmetric padding
``k // 2``; TF SAME pads stride-2 layers on even inputs 0 before / 1 after. The output shapes
and MAdds are identical; only the border alignment differs, so the numbers are not compared.
"""

from __future__ import annotations

import torch
from torch import nn

from mnv2_jax import spec as spec_lib


class _ConvBNAct(nn.Module):
  """One spec layer of op conv/depthwise: conv (no bias) -> BN -> ReLU6 or identity."""

  def __init__(self, layer: spec_lib.Layer, bn_momentum: float, bn_epsilon: float):
    super().__init__()
    self.conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride,
                          padding=layer.kernel // 2, groups=layer.groups, bias=False)
    self.bn = nn.BatchNorm2d(layer.out_channels, eps=bn_epsilon, momentum=1.0 - bn_momentum)
    self.act = nn.ReLU6(inplace=False) if layer.activation == "relu6" else nn.Identity()

  def forward(self, x):
    return self.act(self.bn(self.conv(x)))


class SpecNet(nn.Module):
  """A MobileNet from an `ArchSpec`: the layer sequence plus its shortcut adds."""

  def __init__(self, arch: spec_lib.ArchSpec, dropout_rate: float = 0.2,
               bn_momentum: float = 0.997, bn_epsilon: float = 1e-3):
    super().__init__()
    convs = [l for l in arch.layers if l.op != "dense"]
    dense = [l for l in arch.layers if l.op == "dense"]
    self.paths = [l.path for l in convs]
    self.layers = nn.ModuleList(_ConvBNAct(l, bn_momentum, bn_epsilon) for l in convs)
    self.sources = {s.source for s in arch.shortcuts}
    self.incoming = {s.target: s.source for s in arch.shortcuts}
    self.dropout = nn.Dropout(dropout_rate)
    self.fc = nn.Linear(dense[0].in_channels, dense[0].out_channels) if dense else None

  def forward(self, x):
    saved = {}
    for path, layer in zip(self.paths, self.layers):
      x = layer(x)
      if path in self.incoming:
        x = x + saved[self.incoming[path]]
      if path in self.sources:
        saved[path] = x
    x = x.mean(dim=(2, 3))
    if self.fc is not None:
      x = self.fc(self.dropout(x))
    return x


def mobilenet_v2(width_multiplier: float = 1.0, resolution: int = 224, num_classes: int = 1000,
                 dropout_rate: float = 0.2) -> SpecNet:
  """MobileNetV2 with the paper's defaults (linear bottlenecks, bottleneck shortcuts)."""
  return SpecNet(spec_lib.mobilenet_v2_spec(width_multiplier, resolution, num_classes),
                 dropout_rate)


def mobilenet_v1(width_multiplier: float = 1.0, resolution: int = 224, num_classes: int = 1000,
                 dropout_rate: float = 0.001) -> SpecNet:
  """MobileNetV1 from the same spec module."""
  return SpecNet(spec_lib.mobilenet_v1_spec(width_multiplier, resolution, num_classes),
                 dropout_rate)


def count_params(model: torch.nn.Module) -> int:
  return sum(p.numel() for p in model.parameters())
