"""Exact complexity accounting derived from the architecture spec: MAdds, parameters, memory.

Conventions (they reproduce all 22 rows of the released checkpoints' table, see
shared/reference/mobilenet_v2.md §6):
- `madds`: multiply-accumulates of every convolution (H_out * W_out * k^2 * C_in * C_out /
  groups) plus the classifier (C_last * num_classes). Batch norm, activations, shortcut adds,
  pooling and biases are not counted. The slim table reports floor(madds / 1e6) with 1001
  classes.
- `params`: all trainable parameters (kernels, classifier bias, batch-norm gamma and beta);
  torchvision's `num_params` and Keras's "trainable params" use this convention.
- `params_no_bn`: kernels + classifier weight and bias only; the slim README convention.
- `bn_statistics`: non-trainable running mean/variance entries.
- `activation_memory_bytes`: the paper's Table 3 figure: the largest tensor that must be
  materialised during inference, at 16 bits per element. For MobileNetV2 only tensors that cross
  block boundaries are materialised: each block's output (the thin bottleneck), the sources of
  shortcuts (for `shortcut="expansion"` the wide expansion tensors, which is the memory cost of
  that variant) and the pooled features; the wide tensors inside a block are computed in slices
  (§5), the stem conv runs fused with the first block (Table 3 caption) and the last conv is
  reduced by the average pool as it is produced. For MobileNetV1 every layer output is
  materialised.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Union

from mnv2_jax import spec as spec_lib

BYTES_PER_ACTIVATION = 2  # 16-bit, as in Table 3.


@dataclasses.dataclass(frozen=True)
class LayerRow:
  path: str
  op: str
  kernel: int
  stride: int
  in_shape: tuple[int, int]   # (size, channels)
  out_shape: tuple[int, int]
  activation: str
  madds: int
  params: int                 # kernel + bias + BN gamma/beta
  shortcut_from: str | None   # path of the layer added onto this layer's output, if any


@dataclasses.dataclass(frozen=True)
class Complexity:
  model: str
  width_multiplier: float
  resolution: int
  num_classes: int
  madds: int
  params: int
  params_no_bn: int
  bn_statistics: int
  activation_memory_bytes: int
  memory_by_resolution: tuple[tuple[int, int, int], ...]  # (size, max channels, bytes)
  num_shortcuts: int
  rows: tuple[LayerRow, ...]

  @property
  def mmadds(self) -> int:
    """MAdds in millions, floored: the slim table's convention."""
    return self.madds // 1_000_000

  def to_dict(self, *, rows: bool = True) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    if not rows:
      d.pop("rows")
    d["mmadds"] = self.mmadds
    return d


def _materialised(arch: spec_lib.ArchSpec) -> list[spec_lib.Layer]:
  if arch.model == "mobilenet_v1":
    return [l for l in arch.layers if l.op != "dense"]
  sources = {s.source for s in arch.shortcuts}
  return [l for l in arch.layers
          if l.name == "project" or (l.path in sources and l.path != "stem/conv")]


def analyze_spec(arch: spec_lib.ArchSpec) -> Complexity:
  """Complexity of an expanded spec."""
  into = {s.target: s.source for s in arch.shortcuts}
  rows = tuple(
      LayerRow(l.path, l.op, l.kernel, l.stride, (l.in_size, l.in_channels),
               (l.out_size, l.out_channels), l.activation, l.madds,
               l.kernel_params + l.bias_params + l.bn_params, into.get(l.path))
      for l in arch.layers)
  per_size: dict[int, int] = {}
  for l in _materialised(arch):
    per_size[l.out_size] = max(per_size.get(l.out_size, 0), l.out_channels)
  pooled = [l for l in arch.layers if l.op == "dense"][0].in_channels
  per_size[1] = max(per_size.get(1, 0), pooled)
  memory = tuple(sorted(((s, c, s * s * c * BYTES_PER_ACTIVATION) for s, c in per_size.items()),
                        reverse=True))
  return Complexity(
      model=arch.model, width_multiplier=arch.width_multiplier, resolution=arch.resolution,
      num_classes=arch.num_classes,
      madds=sum(l.madds for l in arch.layers),
      params=sum(r.params for r in rows),
      params_no_bn=sum(l.kernel_params + l.bias_params for l in arch.layers),
      bn_statistics=sum(l.bn_params for l in arch.layers),
      activation_memory_bytes=max(b for _, _, b in memory),
      memory_by_resolution=memory,
      num_shortcuts=len(arch.shortcuts), rows=rows)


def analyze(model: Union[Any, spec_lib.ArchSpec], resolution: int | None = None) -> Complexity:
  """Complexity of a `MobileNetV2`/`MobileNetV1` module at `resolution` (or of an `ArchSpec`)."""
  if isinstance(model, spec_lib.ArchSpec):
    return analyze_spec(model)
  if resolution is None:
    raise ValueError("resolution is required when analysing a model")
  return analyze_spec(model.spec(resolution))


def xla_madds(model, resolution: int, batch_size: int = 1) -> float:
  """XLA's own count for one inference forward pass, as multiply-adds per image.

  `compiled.cost_analysis()["flops"]` counts a multiply-add as 2 flops and also counts the
  element-wise work (batch norm, ReLU6, shortcut adds, pooling) that `madds` leaves out, so the
  result is slightly above `analyze(...).madds`. XLA has no cost model for custom calls, so the
  count is taken with XLA's own ops (`model.impl` is a speed switch; the arithmetic is the
  same).
  """
  import dataclasses

  import jax
  import jax.numpy as jnp

  from mnv2_jax.ops import impl as impl_lib  # pylint: disable=g-import-not-at-top

  model = dataclasses.replace(model, impl=impl_lib.Impl(depthwise="xla", batchnorm="xla",
                                                        pointwise="dot"))

  x = jnp.zeros((batch_size, resolution, resolution, 3), jnp.float32)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
  cost = fn.lower(variables, x).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return cost["flops"] / 2 / batch_size


def split_inference_peak_bytes(arch: spec_lib.ArchSpec, k: int, batch_size: int = 1,
                               bytes_per_element: int = 4, *,
                               separate_activations: bool = False) -> int:
  """Peak activation memory of inference with every `spec.SplitUnit` in `k` groups: the paper's
  eq. (2), max over ops of the live tensors, under the schedule `models.split` runs.

  The schedule: each unit computes, group by group, wide_i(x) -> depthwise_i -> projection_i
  added into the accumulator (the unit's output, float32); layers outside units run whole.
  Live during an op: its inputs and outputs plus every tensor made before it and read after it
  (the unit's input x across its groups, the accumulator, a saved shortcut source), as in the
  paper's general M(G) with that schedule. Ops have no internal storage (|op| = 0). The
  network's input image counts; k = 1 is the unsplit schedule.

  `separate_activations=False` is the paper's accounting: a conv's batch norm and activation
  are applied in place. `True` counts them as an op of their own whose output sits beside the
  conv's, which is what XLA:CPU's buffer assignment does (measured: the 1x1 conv's output and
  its batch-norm + ReLU6 output are two buffers), so it is the figure `temp_size_in_bytes`
  can be compared with (`benchmarks/inference_split.py`).
  """
  units = {u.project.path: u for u in spec_lib.split_units(arch)}
  inside = {p for u in units.values() for p in (u.wide.path, u.depthwise.path)}
  into = {s.target: s.source for s in arch.shortcuts}
  sources = {s.source for s in arch.shortcuts}
  size = lambda side, channels: side * side * channels
  image = size(arch.resolution, 3)
  peak, current, unit_input, saved = image, image, image, {}

  def op(*live):
    nonlocal peak
    peak = max(peak, sum(live))

  for layer in arch.layers:
    if layer.path in inside:
      if layer.op != "depthwise":
        unit_input = current
      continue
    held = sum(v for p, v in saved.items() if p != into.get(layer.path))
    out = size(layer.out_size, layer.out_channels)
    if layer.op == "dense":
      op(held, layer.in_channels, out)  # Pooled features -> logits (pooling: below).
      current = out
      continue
    if layer.path in units:
      u = units[layer.path]
      a = size(u.wide.out_size, u.inner_channels) // k
      d = size(u.depthwise.out_size, u.inner_channels) // k
      dup = a if separate_activations else 0
      ddup = d if separate_activations else 0
      op(held, unit_input, out, a, dup)              # wide_i (and its activation)
      op(held, unit_input, out, a, d, ddup)          # depthwise_i
      op(held, unit_input, out, d)                   # projection_i into the accumulator
    else:
      op(held, current, out, out if separate_activations else 0)
    if layer.path in into:
      op(held, out, saved[into[layer.path]])
    current = out
    if layer.path in sources:
      saved[layer.path] = out
    if layer.name == "conv" and layer.scope == "head":
      op(held, out, layer.out_channels)  # Global average pooling.
  return peak * batch_size * bytes_per_element
