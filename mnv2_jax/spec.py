"""The architecture, described once, in pure Python (no JAX).

`mobilenet_v2_spec` / `mobilenet_v1_spec` expand the knobs (width multiplier, expansion factor,
resolution, number of classes, ablation switches) into an ordered tuple of `Layer`s plus the
`Shortcut`s between them. This is the single source of truth: the Flax modules in
`mnv2_jax.models` are built by walking it, and `mnv2_jax.complexity` counts MAdds, parameters and
activation memory from it. Nothing else in the project knows channel counts.

Conventions follow the released TF-Slim checkpoints (see shared/reference/mobilenet_v2.md §1):
- every width is `make_divisible(c * multiplier, 8)` with a minimum of 8;
- the expansion width of a block is `make_divisible(t * C_in, 8)` of its (rounded) input width,
  and the first block (t = 1) has no expansion conv;
- the last 1x1 conv keeps 1280 channels for multipliers < 1 and scales above 1;
- all spatial sizes follow TF "SAME": out = ceil(in / stride).

A `Layer` output is "post batch-norm and activation"; a `Shortcut(source, target)` adds the
final output of `source` (after its own incoming add, if any) to the output of `target` after
`target`'s activation. That one rule expresses all three shortcut placements of Fig. 6b.

Dense prediction (SSDLite, DeepLabv3; `mnv2_jax.heads_spec` builds their heads from these specs)
needs two more things, both derived here:
- `output_stride` (8 / 16 / 32; None = 32, the classifier): slim's atrous rule
  (`mobilenet.py` `mobilenet_base`): walking the strided ops in order, once the running stride
  equals `output_stride` every later op gets stride 1 and the current rate, and the rate is
  multiplied by the stride the op would have had. The rate acts on the depthwise convs only
  (`Layer.rate`), TF "SAME" padded on the dilated kernel. OS16 on V2: block_13 (layer_15) has
  stride 1, rate 1; blocks 14-16 rate 2. OS8: block_6 stride 1; blocks 7-13 rate 2, 14-16 rate 4.
- `endpoints`: slim's names for layer outputs (`ArchSpec.endpoint`). V2: `layer_1` (stem conv),
  `layer_{i+2}` (block i's projection), `layer_{i+2}/expansion_output` and
  `layer_{i+2}/depthwise_output`, `layer_19` (the last 1x1 conv). So `layer_15/expansion_output`
  is the expansion of the first 160-channel block, after its activation and after any shortcut
  landing on it (under shortcut="expansion": the tensor its depthwise conv reads), and
  `layer_18` is the 320-channel bottleneck. V1: `Conv2d_0`, `Conv2d_{i+1}_depthwise` and
  `Conv2d_{i+1}_pointwise`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any, Literal

from mnv2_jax import ablations

ACTIVATIONS = ("relu6", "relu", "linear")
BOTTLENECK_ACTIVATIONS = ablations.get("model.bottleneck_activation").values
SHORTCUTS = ablations.get("model.shortcut").values
MIN_RESOLUTION = 32

# (t, c, n, s) of MobileNetV2 Table 2; t of the first row is fixed at 1.
V2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))
V2_STEM, V2_LAST = 32, 1280
# (c, s) of the 13 depthwise-separable layers of MobileNetV1 (Howard et al. 2017, Table 1).
V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
             (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
V1_STEM = 32

Op = Literal["conv", "depthwise", "dense"]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
  """Slim/Keras/torchvision `_make_divisible`: nearest multiple, never more than 10% down."""
  min_value = divisor if min_value is None else min_value
  new = max(min_value, int(value + divisor / 2) // divisor * divisor)
  if new < 0.9 * value:
    new += divisor
  return new


@dataclasses.dataclass(frozen=True)
class Layer:
  """One weight layer: a conv (+BN +activation), a depthwise conv, or the dense classifier.

  `scope` groups layers into Flax sub-modules ("stem", "block_3", "head", "logits"); `name` is
  the layer inside it ("conv", "expand", "depthwise", "project"). `in_size`/`out_size` are the
  spatial side lengths (1 for the classifier, which follows global average pooling).
  """
  scope: str
  name: str
  op: Op
  kernel: int
  stride: int
  in_channels: int
  out_channels: int
  in_size: int
  out_size: int
  activation: str
  batch_norm: bool = True
  bias: bool = False
  rate: int = 1   # dilation of the kernel (atrous conv); the output grid is unchanged

  @property
  def path(self) -> str:
    return f"{self.scope}/{self.name}"

  @property
  def groups(self) -> int:
    return self.in_channels if self.op == "depthwise" else 1

  @property
  def kernel_params(self) -> int:
    """Weights of the kernel (no bias, no batch norm)."""
    return self.kernel * self.kernel * self.in_channels * self.out_channels // self.groups

  @property
  def bias_params(self) -> int:
    return self.out_channels if self.bias else 0

  @property
  def bn_params(self) -> int:
    """Trainable batch-norm parameters (gamma and beta); running statistics are not counted."""
    return 2 * self.out_channels if self.batch_norm else 0

  @property
  def madds(self) -> int:
    """Multiply-accumulates: H_out * W_out * k^2 * C_in * C_out / groups (biases excluded)."""
    return self.out_size * self.out_size * self.kernel_params

  @property
  def madds_space_to_batch(self) -> int:
    """`madds` with a dilated conv counted on TF's space-to-batch grid: the output side rounded
    up to a multiple of the rate (33 -> 36 at rate 6), as `tf.nn.atrous_conv2d` computes it.
    The paper's Table 7 ASPP rows (5.8B, 387B) are only reproduced this way."""
    if self.rate == 1 or self.kernel == 1:
      return self.madds
    grid = -(-self.out_size // self.rate) * self.rate
    return grid * grid * self.kernel_params

  @property
  def output_elements(self) -> int:
    """Elements of this layer's output for one image."""
    return self.out_size * self.out_size * self.out_channels


@dataclasses.dataclass(frozen=True)
class Shortcut:
  """Identity add: output of layer `source` is added to the output of layer `target`."""
  source: str
  target: str


@dataclasses.dataclass(frozen=True)
class ArchSpec:
  """An expanded architecture: ordered layers, shortcuts and the knobs that produced them."""
  model: str
  width_multiplier: float
  resolution: int
  num_classes: int
  layers: tuple[Layer, ...]
  shortcuts: tuple[Shortcut, ...]
  axes: tuple[tuple[str, Any], ...] = ()   # (field, value) of the ablation axes it was built with
  output_stride: int | None = None          # None: the natural stride (32)
  endpoints: tuple[tuple[str, str], ...] = ()  # (slim endpoint name, layer path)

  def layer(self, path: str) -> Layer:
    for layer in self.layers:
      if layer.path == path:
        return layer
    raise KeyError(path)

  def endpoint(self, name: str) -> Layer:
    """The layer whose output is slim's endpoint `name` (ValueError listing the names)."""
    paths = dict(self.endpoints)
    if name not in paths:
      raise ValueError(f"endpoint {name!r} is not an endpoint of {self.model}; endpoints: "
                       f"{tuple(paths)}")
    return self.layer(paths[name])

  def layers_through(self, path: str) -> tuple[Layer, ...]:
    """The layers up to and including `path`: the backbone a dense head truncates."""
    paths = [l.path for l in self.layers]
    return self.layers[:paths.index(path) + 1]

  @property
  def effective_stride(self) -> int:
    """Input side / feature side: the product of the strides (= `output_stride` if set)."""
    stride = 1
    for layer in self.layers:
      stride *= layer.stride
    return stride

  @property
  def scopes(self) -> tuple[str, ...]:
    return tuple(dict.fromkeys(layer.scope for layer in self.layers))

  @property
  def feature_size(self) -> int:
    """Spatial side of the last feature map (before global pooling)."""
    return [l for l in self.layers if l.op != "dense"][-1].out_size


def _same(size: int, stride: int) -> int:
  return -(-size // stride)


def _check_common(width_multiplier, resolution, num_classes):
  if not isinstance(width_multiplier, (int, float)) or not width_multiplier > 0:
    raise ValueError(f"width_multiplier must be a positive number, got {width_multiplier!r}")
  if not isinstance(resolution, int) or resolution < MIN_RESOLUTION:
    raise ValueError(
        f"resolution must be an integer >= {MIN_RESOLUTION}, got {resolution!r}")
  if not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")


OUTPUT_STRIDES = (8, 16, 32)  # slim's / DeepLab's; any running stride of the backbone works


class _Builder:
  """Appends layers while tracking the current spatial size and channel count, and applies
  slim's atrous rule for `output_stride` (module docstring) through `stride_rate`."""

  def __init__(self, resolution: int, in_channels: int = 3, output_stride: int | None = None):
    self.size, self.channels, self.layers = resolution, in_channels, []
    self.output_stride, self.current_stride, self.rate = output_stride, 1, 1

  def stride_rate(self, stride: int) -> tuple[int, int]:
    """(stride, rate) of the next strided op whose natural stride is `stride` (slim's rule)."""
    if self.output_stride is not None and self.current_stride == self.output_stride:
      rate = self.rate
      self.rate *= stride
      return 1, rate
    self.current_stride *= stride
    return stride, 1

  def add(self, scope, name, op, kernel, stride, out_channels, activation, *, batch_norm=True,
          bias=False, rate=1) -> Layer:
    out_size = 1 if op == "dense" else _same(self.size, stride)
    in_size = 1 if op == "dense" else self.size
    layer = Layer(scope, name, op, kernel, stride, self.channels, out_channels, in_size,
                  out_size, activation, batch_norm, bias, rate if kernel > 1 else 1)
    self.layers.append(layer)
    self.size, self.channels = out_size, out_channels
    return layer

  def check_reached(self, model: str) -> None:
    if self.output_stride is not None and self.current_stride != self.output_stride:
      raise ValueError(f"output_stride={self.output_stride} is not a stride {model} reaches; "
                       f"allowed: None or one of {_powers(self.current_stride)}")


def _powers(top: int) -> tuple[int, ...]:
  out, s = [], 2
  while s <= top:
    out.append(s)
    s *= 2
  return tuple(out)


def _check_output_stride(output_stride) -> None:
  if output_stride is None:
    return
  if isinstance(output_stride, bool) or not isinstance(output_stride, int) or output_stride < 2:
    raise ValueError(f"output_stride must be None or an integer in {_powers(32)} (slim: 8, 16 "
                     f"or 32), got {output_stride!r}")


_V2 = ablations.baselines("mobilenet_v2")


def mobilenet_v2_spec(width_multiplier: float = 1.0, resolution: int = 224,
                      num_classes: int = 1000, *,
                      expansion_factor: float = _V2["expansion_factor"],
                      bottleneck_activation: str = _V2["bottleneck_activation"],
                      shortcut: str = _V2["shortcut"],
                      depthwise_kernel: int = _V2["depthwise_kernel"],
                      output_stride: int | None = None) -> ArchSpec:
  """MobileNetV2 (Sandler et al. 2018, Table 2) with its ablation axes (`mnv2_jax.ablations`).

  - `bottleneck_activation="relu6"` puts ReLU6 after the projection's batch norm (Fig. 6a).
  - `shortcut="bottleneck"`: identity add on the thin tensors of every stride-1 block whose input
    and output widths match (10 adds at width 1.0). `"expansion"`: the same shortcuts moved onto
    the wide tensors, definition (A) of the reference: the expansion output of residual block i
    (after its ReLU6, and after any add it received) is added to the expansion output of block
    i+1. `"none"`: no adds. Parameters and MAdds are identical across all six combinations.
  - `expansion_factor`: t of every block but the first (Table 2 uses 6).
  - `depthwise_kernel`: k of every k x k depthwise conv (3 in the paper; 5 as in MnasNet and
    MobileNetV3), TF "SAME" padded, so spatial sizes do not change.
  - `output_stride`: None (32) or a smaller stride reached by dilating the later depthwise
    convs instead (module docstring); parameters do not change, MAdds grow.
  """
  _check_common(width_multiplier, resolution, num_classes)
  _check_output_stride(output_stride)
  values = dict(expansion_factor=expansion_factor, bottleneck_activation=bottleneck_activation,
                shortcut=shortcut, depthwise_kernel=depthwise_kernel)
  for field, value in values.items():
    ablations.get(f"model.{field}").check(value)

  b = _Builder(resolution, output_stride=output_stride)
  stride, _ = b.stride_rate(2)
  b.add("stem", "conv", "conv", 3, stride, make_divisible(V2_STEM * width_multiplier), "relu6")
  endpoints = [("layer_1", "stem/conv")]
  prev_output = "stem/conv"
  # Per block: (path of its input tensor, expand path or None, project path, residual?)
  blocks = []
  index = 0
  for t, c, n, s in V2_BLOCKS:
    out_channels = make_divisible(c * width_multiplier)
    for i in range(n):
      stride, rate = b.stride_rate(s if i == 0 else 1)
      scope = f"block_{index}"
      name = f"layer_{index + 2}"
      in_channels = b.channels
      factor = 1 if index == 0 else expansion_factor
      inner = in_channels if factor == 1 else make_divisible(in_channels * factor)
      expand = None
      if inner > in_channels:
        expand = b.add(scope, "expand", "conv", 1, 1, inner, "relu6").path
        endpoints.append((f"{name}/expansion_output", expand))
      depthwise = b.add(scope, "depthwise", "depthwise", depthwise_kernel, stride, inner, "relu6",
                        rate=rate).path
      project = b.add(scope, "project", "conv", 1, 1, out_channels, bottleneck_activation).path
      endpoints += [(f"{name}/depthwise_output", depthwise), (name, project)]
      residual = stride == 1 and in_channels == out_channels
      blocks.append((prev_output, expand, project, residual))
      prev_output = project
      index += 1

  last = V2_LAST if width_multiplier <= 1.0 else make_divisible(V2_LAST * width_multiplier)
  b.stride_rate(1)
  b.add("head", "conv", "conv", 1, 1, last, "relu6")
  endpoints.append((f"layer_{index + 2}", "head/conv"))
  b.check_reached("mobilenet_v2")
  b.add("logits", "dense", "dense", 1, 1, num_classes, "linear", batch_norm=False, bias=True)

  shortcuts = []
  for i, (block_input, expand, project, residual) in enumerate(blocks):
    if not residual or shortcut == "none":
      continue
    if shortcut == "bottleneck":
      shortcuts.append(Shortcut(block_input, project))
      continue
    next_expand = blocks[i + 1][1] if i + 1 < len(blocks) else None
    if expand is None or next_expand is None:
      raise ValueError(
          f"shortcut='expansion' cannot be wired at block_{i}: it needs an expansion conv in "
          f"this block and the next (expansion_factor={expansion_factor!r} gives "
          f"{'none' if expand is None else 'none in the next block'}); use shortcut="
          f"'bottleneck' or 'none', or an expansion_factor > 1")
    shortcuts.append(Shortcut(expand, next_expand))

  return ArchSpec("mobilenet_v2", float(width_multiplier), resolution, num_classes,
                  tuple(b.layers), tuple(shortcuts), axes=tuple(values.items()),
                  output_stride=output_stride, endpoints=tuple(endpoints))


def mobilenet_v1_spec(width_multiplier: float = 1.0, resolution: int = 224,
                      num_classes: int = 1000, *, output_stride: int | None = None) -> ArchSpec:
  """MobileNetV1 (Howard et al. 2017): 3x3 conv + 13 depthwise-separable layers, ReLU6 + BN.

  Widths follow slim's `mobilenet_v1.py`: `max(int(c * multiplier), 8)` (no rounding to 8).
  `output_stride` as for V2 (slim's `mobilenet_v1_base` applies the same atrous rule).
  """
  _check_common(width_multiplier, resolution, num_classes)
  _check_output_stride(output_stride)

  def depth(c):
    return max(int(c * width_multiplier), 8)

  b = _Builder(resolution, output_stride=output_stride)
  b.add("stem", "conv", "conv", 3, b.stride_rate(2)[0], depth(V1_STEM), "relu6")
  endpoints = [("Conv2d_0", "stem/conv")]
  for i, (c, s) in enumerate(V1_LAYERS):
    stride, rate = b.stride_rate(s)
    b.add(f"block_{i}", "depthwise", "depthwise", 3, stride, b.channels, "relu6", rate=rate)
    b.add(f"block_{i}", "pointwise", "conv", 1, 1, depth(c), "relu6")
    endpoints += [(f"Conv2d_{i + 1}_depthwise", f"block_{i}/depthwise"),
                  (f"Conv2d_{i + 1}_pointwise", f"block_{i}/pointwise")]
  b.check_reached("mobilenet_v1")
  b.add("logits", "dense", "dense", 1, 1, num_classes, "linear", batch_norm=False, bias=True)
  return ArchSpec("mobilenet_v1", float(width_multiplier), resolution, num_classes,
                  tuple(b.layers), (), output_stride=output_stride, endpoints=tuple(endpoints))


@dataclasses.dataclass(frozen=True)
class SplitUnit:
  """An inverted residual's wide part, computable in channel groups (paper §5.1, eq. (3)).

  `wide` makes the inner tensor (a block's expansion conv; for the first block, which has none,
  the stem conv), `depthwise` filters it and `project` maps it back to the thin output:
  F(x) = sum_i (project_i o depthwise_i o wide_i)(x) over groups i of the inner channels, with the
  projection's batch norm and activation after the sum. No shortcut may read or land on `wide`
  or `depthwise` (their outputs never exist whole); one landing on `project` is added after.
  """
  wide: Layer
  depthwise: Layer
  project: Layer

  @property
  def inner_channels(self) -> int:
    return self.wide.out_channels


def split_units(arch: ArchSpec) -> tuple[SplitUnit, ...]:
  """The `SplitUnit`s of a MobileNetV2 spec, in order (empty for MobileNetV1, which has no
  inner tensor wider than its output).

  Every block with an expansion conv is one, and so is the stem conv with the first block's
  depthwise and projection (the treatment the paper's Table 3 caption describes: the stem runs
  fused with the first block), unless a shortcut reads or lands inside the unit (under
  `shortcut="expansion"` the expansion output of every residual block and of its successor is a
  shortcut end, so only the stem unit and blocks outside those pairs qualify; the model refuses
  to split that variant at all, see `models.split`).
  """
  if arch.model != "mobilenet_v2":
    return ()
  ends = {s.source for s in arch.shortcuts} | {s.target for s in arch.shortcuts}
  layers = arch.layers
  units = []
  for i, layer in enumerate(layers[:-2]):
    dw, proj = layers[i + 1], layers[i + 2]
    if (layer.op == "conv" and layer.name in ("expand", "conv") and dw.op == "depthwise"
        and proj.name == "project" and dw.scope == proj.scope
        and (layer.scope == dw.scope or layer.scope == "stem")
        and not {layer.path, dw.path} & ends):
      units.append(SplitUnit(layer, dw, proj))
  return tuple(units)


# The architectures by config name (`config.model.name`): the one place that maps a name to
# its spec; `models.MODELS` maps the same names to Flax modules.
SPECS = {"mobilenet_v2": mobilenet_v2_spec, "mobilenet_v1": mobilenet_v1_spec}
SHORT_NAMES = {"mobilenet_v2": "v2", "mobilenet_v1": "v1"}
TITLES = {"mobilenet_v2": "MobileNetV2", "mobilenet_v1": "MobileNetV1"}


def check_model_name(name: str) -> str:
  if name not in SPECS:
    raise ValueError(f"model.name must be one of {tuple(SPECS)}, got {name!r}")
  return name


def from_config(model: Mapping[str, Any], resolution: int, num_classes: int, *,
                output_stride: int | None = None) -> ArchSpec:
  """The spec of a `config.model` section (or a summary/config.json dict): name, width, axes.

  Axes the model does not have are ignored (a MobileNetV1 config keeps the V2 fields); absent
  axes take their baselines. `output_stride`: see `mobilenet_v2_spec`.
  """
  name = check_model_name(model["name"])
  build = SPECS[name]
  takes = inspect.signature(build).parameters
  values = ablations.values_of(name, model)
  axes = {}
  for axis in ablations.axes(name):
    if axis.field in takes:
      axes[axis.field] = values[axis.field]
    elif axis.changes_compute:
      raise ValueError(f"axis {axis.path} changes compute but {build.__name__} has no "
                       f"keyword {axis.field!r}: add it (mnv2_jax.ablations)")
    # A compute-neutral axis the spec does not describe (its model code alone computes it)
    # changes no layer shape, so the spec and its counts are the same whatever its value.
  return build(float(model["width_multiplier"]), int(resolution), int(num_classes), **axes,
               output_stride=output_stride)
