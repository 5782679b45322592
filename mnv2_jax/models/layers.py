"""Flax layers that realise one `spec.Layer`: convolution (+ batch norm + activation).

Parameter layout (stable, used by weight decay masks, Keras import and checkpoints):
`<scope>/<name>/conv/kernel` with shape (k, k, C_in / groups, C_out), `<scope>/<name>/bn/{scale,
bias}` and the running statistics `<scope>/<name>/bn/{mean,var}` in the `batch_stats`
collection. The classifier is `logits/{kernel,bias}`.

Batch-norm semantics (explicit, see also `MobileNetV2` docstring): in training mode the batch
statistics are computed over the *whole global batch* — under `jax.jit` with the batch sharded
over a device mesh, the mean/variance reductions are global reductions, so BN is synchronised
across all devices and hosts (no per-device "ghost" batches). Running statistics follow TF:
`ra = momentum * ra + (1 - momentum) * batch` with the biased batch variance. In inference mode
the running statistics are used.

Fresh batch statistics (for precise-BN recalibration, `steps.make_bn_stats_step`): in training
mode every batch-norm layer also sows its batch mean and biased variance into the collection
`BN_MOMENTS`, laid out like `batch_stats` (`<scope>/<name>/bn/{mean,var}`). Sowing is a no-op
unless that collection is mutable, so ordinary training steps do not carry it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from mnv2_jax import spec as spec_lib
from mnv2_jax.ops import batchnorm as bn_ops
from mnv2_jax.ops import depthwise as dw_ops
from mnv2_jax.ops import impl as impl_lib
from mnv2_jax.ops import pointwise as pw_ops

BN_MOMENTS = "bn_moments"
KERNEL_INITS = ("slim", "lecun_normal", "he_normal")


def kernel_initializer(name: str):
  """`slim`: TF truncated normal, stddev 0.09 (slim `training_scope`); others: variance scaling."""
  if name == "slim":
    return jax.nn.initializers.truncated_normal(stddev=0.09)
  if name == "lecun_normal":
    return jax.nn.initializers.lecun_normal()
  if name == "he_normal":
    return jax.nn.initializers.he_normal()
  raise ValueError(f"kernel_init must be one of {KERNEL_INITS}, got {name!r}")


@dataclasses.dataclass(frozen=True)
class Numerics:
  """Everything about how layers compute that is not architecture (hashable Flax field).

  No defaults: the model's fields (`models.mobilenet`) are where they are declared.
  """
  dtype: Any
  bn_momentum: float
  bn_epsilon: float
  kernel_init: str
  impl: impl_lib.Impl  # Resolved (no "auto") by the model before use.


class Conv(nn.Module):
  """A conv with a (k, k, C_in/groups, C_out) kernel and TF SAME padding, no bias.

  Dispatches on the layer kind: depthwise -> `ops.depthwise.depthwise_conv`
  (`numerics.impl.depthwise`), 1x1 stride 1 -> a channel matmul (`ops.pointwise`,
  `numerics.impl.pointwise`), otherwise `lax.conv_general_dilated`. The parameter is the same
  whichever path runs.
  """
  layer: spec_lib.Layer
  numerics: Numerics

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return conv(self.layer, self.numerics, x, conv_kernel(self, self.layer, self.numerics))


def conv_kernel(module: nn.Module, layer: spec_lib.Layer, numerics: Numerics) -> jax.Array:
  """Declares `layer`'s kernel in `module` (name, shape and initialiser of the layout above):
  `Conv`'s, and `models.split`'s, which must declare the same variables."""
  shape = (layer.kernel, layer.kernel, layer.in_channels // layer.groups, layer.out_channels)
  return module.param("kernel", kernel_initializer(numerics.kernel_init), shape, jnp.float32)


def conv(layer: spec_lib.Layer, numerics: Numerics, x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`layer`'s convolution of `x` with `kernel` (dispatch of `Conv`, see there), in
  `numerics.dtype`. `kernel` may hold a slice of the layer's output channels (`models.split`)."""
  x, kernel = x.astype(numerics.dtype), kernel.astype(numerics.dtype)
  impl = numerics.impl
  if layer.op == "depthwise":
    return dw_ops.depthwise_conv(x, kernel, layer.stride, impl.depthwise, impl.partition,
                                 rate=layer.rate)
  if layer.kernel == 1 and layer.stride == 1:
    return pw_ops.pointwise_conv(x, kernel[0, 0], impl.pointwise)
  extent = dw_ops.dilated_extent(layer.kernel, layer.rate)
  pads = [dw_ops.same_padding(x.shape[1], extent, layer.stride),
          dw_ops.same_padding(x.shape[2], extent, layer.stride)]
  return lax.conv_general_dilated(x, kernel, (layer.stride, layer.stride), pads,
                                  rhs_dilation=(layer.rate, layer.rate),
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


class BatchNormAct(nn.Module):
  """Batch norm followed by an activation, with `flax.linen.BatchNorm`'s variables and maths.

  Variables: params `scale` (ones), `bias` (zeros); batch_stats `mean` (zeros), `var` (ones, the
  biased batch variance is averaged in). Training: batch statistics (global batch, see the module
  docstring) and running averages updated unless initialising; inference: running statistics.
  Statistics and normalisation in float32, output in `dtype`. The maths is in `ops.batchnorm`
  (one folded multiply-add per element: measurably faster on CPU than flax's BatchNorm + clip),
  `impl` "xla" or "native" and `partition` as in `ops.impl.Impl`.
  """
  activation: str
  momentum: float
  epsilon: float
  dtype: Any = jnp.float32
  impl: str = "xla"
  partition: str = "sharded"

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    scale, bias, ra_mean, ra_var = bn_variables(self, x.shape[-1])
    x = x.astype(self.dtype)
    if not train:
      return bn_ops.inference_act(x, ra_mean.value, ra_var.value, scale, bias, self.epsilon,
                                  self.activation)
    y, mean, var = bn_ops.batch_norm_act(x, scale, bias, self.epsilon, self.activation,
                                         self.impl, self.partition)
    _sow_moments(self, mean, var)
    if not self.is_initializing():
      ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
      ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    return y


def bn_variables(module: nn.Module, channels: int):
  """Declares `BatchNormAct`'s variables in `module`: (scale, bias) params and the (mean, var)
  `batch_stats` variables (flax Variables: `.value`). Also `models.split`'s declaration."""
  c = channels
  return (module.param("scale", nn.initializers.ones, (c,), jnp.float32),
          module.param("bias", nn.initializers.zeros, (c,), jnp.float32),
          module.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32)),
          module.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32)))


def _sow_moments(module: nn.Module, mean: jax.Array, var: jax.Array) -> None:
  """Records this call's batch moments in `BN_MOMENTS` (kept only when it is mutable)."""
  keep_last = dict(init_fn=lambda: None, reduce_fn=lambda _, value: value)
  module.sow(BN_MOMENTS, "mean", mean, **keep_last)
  module.sow(BN_MOMENTS, "var", var, **keep_last)


class FlaxBatchNormAct(nn.BatchNorm):
  """`flax.linen.BatchNorm` + activation, with `BatchNormAct`'s variables (`impl.batchnorm="flax"`).

  The reference formulation: same variables (a subclass, so they sit directly in this module),
  same TF momentum rule and fast variance, but flax's normalisation (subtract, scale, add)
  instead of one folded multiply-add. Construct with `momentum`, `epsilon`, `dtype`,
  `param_dtype=float32` and `activation`.
  """
  activation: str = "relu6"

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:  # pylint: disable=arguments-differ
    y = super().__call__(x, use_running_average=not train)
    if train and self.is_mutable_collection(BN_MOMENTS):
      _sow_moments(self, *bn_ops.moments(x))
    return bn_ops.activate(y, self.activation)


class ConvBNAct(nn.Module):
  """`spec.Layer` of op conv/depthwise: conv -> batch norm -> activation."""
  layer: spec_lib.Layer
  numerics: Numerics

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    num = self.numerics
    x = Conv(self.layer, num, name="conv")(x)
    if num.impl.batchnorm == "flax":
      return FlaxBatchNormAct(momentum=num.bn_momentum, epsilon=num.bn_epsilon,
                              dtype=num.dtype, param_dtype=jnp.float32,
                              activation=self.layer.activation, name="bn")(x, train=train)
    return BatchNormAct(self.layer.activation, num.bn_momentum, num.bn_epsilon, num.dtype,
                        num.impl.batchnorm, num.impl.partition, name="bn")(x, train=train)


class LayerGroup(nn.Module):
  """The layers of one spec scope (e.g. `block_3`), with the shortcut adds that land in it.

  `incoming` maps a layer path to the tensor added to that layer's output (after its
  activation). Returns the output of every layer, so the caller can route shortcut sources.
  """
  layers: tuple[spec_lib.Layer, ...]
  numerics: Numerics

  @nn.compact
  def __call__(self, x, incoming: dict[str, jax.Array], *, train: bool) -> dict[str, jax.Array]:
    outputs = {}
    for layer in self.layers:
      x = ConvBNAct(layer, self.numerics, name=layer.name)(x, train=train)
      if layer.path in incoming:
        x = x + incoming[layer.path].astype(x.dtype)
      outputs[layer.path] = x
    return outputs
