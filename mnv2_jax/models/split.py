"""Memory-efficient inference (paper §5.1): inverted residuals computed in channel groups.

`MobileNetV2(..., inference_split=k)` with `train=False` computes every `spec.SplitUnit` (each
block's expansion -> depthwise -> projection; for the first block, the stem conv -> depthwise ->
projection) as

    F(x) = BN_act( sum_{i<k} (project_i o act(BN(depthwise_i)) o act(BN(wide_i)))(x) )

where `_i` is the i-th of k equal slices of the inner channels: the expansion's output channels,
the depthwise's channels and the projection's input channels. Batch norm is per channel, so the
groups are independent and the sum equals the standard forward up to float round-off; the
projection's batch norm and activation, and any shortcut add, come after the sum.

The groups run in a `lax.fori_loop`, which XLA keeps a loop: one group's inner tensors are live
at a time, next to the unit's input and the float32 accumulator. (A Python loop would be one
graph that XLA may schedule or fuse back into the whole wide tensor.) Weights are sliced with
`lax.dynamic_slice_in_dim` inside the loop body, so no regrouped copy of a kernel is made.

Variables: exactly the standard model's (`ScopeParams` declares them with the same names,
shapes and initialisers), so a checkpoint trained without the split runs with it. Training mode
refuses a split: it is an inference schedule (the backward pass would keep every group anyway).

Layers outside a unit (the 1x1 head conv, the classifier) and every unit under
`shortcut="expansion"` (whose wide tensors are shortcut ends that must persist across blocks:
the model rejects that combination) run as in the standard forward.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from mnv2_jax import spec as spec_lib
from mnv2_jax.models import layers
from mnv2_jax.ops import batchnorm as bn_ops


def allowed_splits(arch: spec_lib.ArchSpec) -> tuple[int, ...]:
  """The k that divide the inner width of every split unit of `arch` (1 always)."""
  widths = [u.inner_channels for u in spec_lib.split_units(arch)]
  g = math.gcd(*widths) if widths else 1
  return tuple(k for k in range(1, g + 1) if g % k == 0)


def check(arch: spec_lib.ArchSpec, k) -> None:
  """Raises ValueError naming `inference_split` when `k` cannot split `arch`."""
  if isinstance(k, bool) or not isinstance(k, int) or k < 1:
    raise ValueError(f"inference_split must be a positive integer (1: the standard forward), "
                     f"got {k!r}")
  if k == 1:
    return
  if arch.model != "mobilenet_v2":
    raise ValueError(f"inference_split={k} needs MobileNetV2's inverted residuals; "
                     f"{arch.model} has none: use 1")
  shortcut = dict(arch.axes).get("shortcut")
  if shortcut == "expansion":
    raise ValueError(
        f"inference_split={k} cannot be used with shortcut='expansion': its shortcuts add the "
        "wide expansion tensors of consecutive blocks, so those tensors must exist whole and "
        "persist across blocks; use 1 for that variant")
  allowed = allowed_splits(arch)
  if k not in allowed:
    widths = sorted({u.inner_channels for u in spec_lib.split_units(arch)})
    raise ValueError(f"inference_split={k} must divide every split block's inner width "
                     f"{widths}; allowed values: {allowed}")


class _ConvParams(nn.Module):
  """`layers.Conv`'s kernel, declared (same name, shape and initialiser), not applied."""
  layer: spec_lib.Layer
  numerics: layers.Numerics

  @nn.compact
  def __call__(self) -> jax.Array:
    return layers.conv_kernel(self, self.layer, self.numerics)


class _BNParams(nn.Module):
  """`layers.BatchNormAct`'s variables (params scale, bias; batch_stats mean, var), declared."""
  channels: int

  @nn.compact
  def __call__(self) -> dict[str, jax.Array]:
    scale, bias, mean, var = layers.bn_variables(self, self.channels)
    return {"scale": scale, "bias": bias, "mean": mean.value, "var": var.value}


class _LayerParams(nn.Module):
  layer: spec_lib.Layer
  numerics: layers.Numerics

  @nn.compact
  def __call__(self) -> dict[str, jax.Array]:
    return {"kernel": _ConvParams(self.layer, self.numerics, name="conv")(),
            **_BNParams(self.layer.out_channels, name="bn")()}


class ScopeParams(nn.Module):
  """The variables of one spec scope's conv layers, laid out as `layers.LayerGroup`'s."""
  layers: tuple[spec_lib.Layer, ...]
  numerics: layers.Numerics

  @nn.compact
  def __call__(self) -> dict[str, dict[str, jax.Array]]:
    return {l.path: _LayerParams(l, self.numerics, name=l.name)() for l in self.layers}


def _bn_act(layer: spec_lib.Layer, v: dict, numerics: layers.Numerics, x: jax.Array,
            lo=None, size=None) -> jax.Array:
  """Inference batch norm + activation of `layer` (channels [lo, lo + size) when given)."""
  stats = [v[n] for n in ("mean", "var", "scale", "bias")]
  if lo is not None:
    stats = [lax.dynamic_slice_in_dim(s, lo, size) for s in stats]
  return bn_ops.inference_act(x.astype(numerics.dtype), *stats, numerics.bn_epsilon,
                              layer.activation)


def layer_forward(layer: spec_lib.Layer, v: dict, numerics: layers.Numerics,
                  x: jax.Array) -> jax.Array:
  """A conv layer outside any unit: conv, inference batch norm, activation."""
  return _bn_act(layer, v, numerics, layers.conv(layer, numerics, x, v["kernel"]))


def unit_forward(unit: spec_lib.SplitUnit, variables: dict, numerics: layers.Numerics,
                 x: jax.Array, k: int) -> jax.Array:
  """`unit` on `x` in `k` channel groups (module docstring); `variables` maps layer paths to
  `ScopeParams` dicts. Returns the projection's output after its batch norm and activation."""
  wide, dw, proj = unit.wide, unit.depthwise, unit.project
  vw, vd, vp = variables[wide.path], variables[dw.path], variables[proj.path]
  size = unit.inner_channels // k

  def group(i, acc):
    lo = i * size
    h = layers.conv(wide, numerics, x, lax.dynamic_slice_in_dim(vw["kernel"], lo, size, 3))
    h = _bn_act(wide, vw, numerics, h, lo, size)
    h = layers.conv(dw, numerics, h, lax.dynamic_slice_in_dim(vd["kernel"], lo, size, 3))
    h = _bn_act(dw, vd, numerics, h, lo, size)
    part = layers.conv(proj, numerics, h, lax.dynamic_slice_in_dim(vp["kernel"], lo, size, 2))
    return acc + part.astype(jnp.float32)

  shape = jax.eval_shape(lambda: group(0, 0.0)).shape
  acc = lax.fori_loop(0, k, group, jnp.zeros(shape, jnp.float32))
  return _bn_act(proj, vp, numerics, acc)
