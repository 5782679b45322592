"""Training-mode batch norm fused with its activation, in two implementations.

Batch norm + ReLU6 after every convolution is a large part of a MobileNetV2 training step on
CPU, all of it memory traffic. Both implementations compute the same function as
``flax.linen.BatchNorm`` in training mode (``use_fast_variance``: var = E[x^2] - E[x]^2 clipped
at 0, statistics in float32) followed by the activation, with the normalisation folded into one
per-channel multiply-add:

    mul = scale * rsqrt(var + eps),   y = act(x * mul + (bias - mean * mul))

Which one runs is the caller's explicit choice (``mnv2_jax.ops.impl.Impl.batchnorm``):

* XLA (any backend, and CPU without the native kernels): plain JAX, differentiated by autodiff,
  which yields the textbook backward. The folding alone made the CPU training step 1.27x faster
  than ``flax.linen.BatchNorm`` + ``clip`` (benchmarks/step_ablation.py, variant ``flax_bn``).
  A hand-written custom VJP of the same maths in pure XLA was slower (70 vs 79 img/s in an
  ad-hoc A/B), so the XLA path keeps autodiff.
* Native (CPU, float32): the two reductions run in C++ (``ops/native/batchnorm_cpu.cc``): sum x
  and sum x^2 in one pass over the conv output (XLA:CPU makes two), and in the backward
  sum(dz) and sum(dz * xhat) in one pass over (dy, x) with the ReLU6 mask recomputed, without
  writing ``dz``. The elementwise parts stay in XLA. A custom VJP ties them together:

      dx = scale * inv * (dz - sum(dz) / N - xhat * sum(dz * xhat) / N)

  A small gain (+3-6% on the step, benchmarks/RESULTS.md). tests/ops/test_batchnorm.py checks
  both implementations against flax, values and gradients.

Statistics are reductions over every axis but the last. Under ``jax.jit`` with the batch sharded
over a mesh they are global reductions (XLA inserts the all-reduce; the native calls sum their
shard on each device and all-reduce the sums, ``ops/native/partition.py``), so batch norm sees
the global batch.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mnv2_jax.ops import native
from mnv2_jax.ops.native import partition as native_partition

ACTIVATIONS = ("relu6", "relu", "linear")
NATIVE_ACTIVATIONS = ("relu6", "linear")  # what the C++ gradient kernel masks


def activate(z: jax.Array, activation: str) -> jax.Array:
  """ReLU6 (``clip(z, 0, 6)``), ReLU (DeepLab's head) or identity."""
  if activation == "relu6":
    return jnp.clip(z, 0, 6)
  if activation == "relu":
    return jnp.maximum(z, 0)
  if activation == "linear":
    return z
  raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


IMPLEMENTATIONS = ("xla", "native")
"""What this module computes; ``ops.impl`` adds ``"flax"`` (``flax.linen.BatchNorm``, in layers)."""


def batch_norm_act(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                   activation: str, impl: str = "xla",
                   partition: str = "sharded") -> tuple[jax.Array, jax.Array, jax.Array]:
  """``(act(BN(x)), batch mean, batch variance)`` with batch statistics over all but the last axis.

  ``x``: (..., C) in the compute dtype; ``scale``/``bias``: (C,) float32. The output has ``x``'s
  dtype; mean and (biased) variance are float32, for the running averages (they carry no
  gradient). ``impl``: ``"xla"`` or ``"native"`` (CPU, float32 ``x``; the caller resolves
  ``"auto"`` through ``ops.impl.Impl``); ``partition``: how the native calls are partitioned on
  a mesh (``"sharded"`` or ``"gathered"``). An activation the native kernels do not have
  (``"relu"``, only in the DeepLab head) runs ``"xla"``: same function.
  """
  if activation not in ACTIVATIONS:
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
  if impl not in IMPLEMENTATIONS:
    raise ValueError(f"batch norm impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
  if impl == "native" and activation in NATIVE_ACTIVATIONS:
    if x.dtype != jnp.float32:
      raise ValueError(f"the native batch norm needs float32 inputs, got {x.dtype}")
    native.ensure_registered()
    return _bn_act_native(x, scale, bias, epsilon, activation, partition)
  return _bn_act_xla(x, scale, bias, epsilon, activation)


def _bn_act_xla(x, scale, bias, epsilon, activation):
  # One float32 copy of x feeds the statistics AND the normalisation, so that under autodiff
  # the three cotangents of x (direct, through the mean, through the variance), which nearly
  # cancel, are summed in float32 and rounded to x's dtype once. Normalising `x` itself would
  # cast each of them to bfloat16 separately and sum them there, where the cancellation
  # leaves mostly rounding error (before this, the digits model's step-1 gradient norm in
  # bfloat16 was 1204 against 794 in float32; 1135 with it: other bfloat16 round-off remains).
  x32 = x.astype(jnp.float32)
  mean, var = moments(x32)
  y = _normalize(x32, mean, var, scale, bias, epsilon, activation).astype(x.dtype)
  return y, mean, var


def moments(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Float32 mean and biased variance over all but the last axis, as flax's fast variance.

  var = E[x^2] - E[x]^2, clipped at 0 (``flax.linen.BatchNorm(use_fast_variance=True)``).
  """
  axes = tuple(range(x.ndim - 1))
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, axes)
  return mean, jnp.maximum(jnp.mean(jnp.square(x32), axes) - jnp.square(mean), 0.0)


def _normalize(x, mean, var, scale, bias, epsilon, activation):
  mul = scale * jax.lax.rsqrt(var + epsilon)
  y = activate(x.astype(jnp.float32) * mul + (bias - mean * mul), activation)
  return y.astype(x.dtype)


def _as_rows(x):
  """(N, ..., C) -> (N, rows per example, C): the kernels' layout, with the batch leading."""
  return x.reshape(x.shape[0], -1, x.shape[-1])


# Per-channel sums over the batch, data-parallel on SPMD meshes: each device sums its shard and
# the partial sums are all-reduced, so statistics are over the global batch (ops/native/partition).
_native_moments = native_partition.batch_parallel(
    lambda x: jax.ffi.ffi_call(
        "Mnv2BnMoments", (jax.ShapeDtypeStruct(x.shape[-1:], jnp.float32),) * 2)(x),
    num_static=0, batched=(True,), results=("sum", "sum"), rule="b r c -> i, j")
_native_grad_sums = native_partition.batch_parallel(
    lambda relu6, dy, x, mean, inv, scale, bias: jax.ffi.ffi_call(
        "Mnv2BnActGradSums", (jax.ShapeDtypeStruct(scale.shape, jnp.float32),) * 2)(
            dy, x, mean, inv, scale, bias, relu6=np.int64(relu6)),
    num_static=1, batched=(True, True, False, False, False, False), results=("sum", "sum"),
    rule="b r c, b s d, e, f, g, h -> i, j")


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _bn_act_native(x, scale, bias, epsilon, activation, partition):
  return _bn_act_native_fwd(x, scale, bias, epsilon, activation, partition)[0]


def _bn_act_native_fwd(x, scale, bias, epsilon, activation, partition):
  count = x.size // x.shape[-1]
  sum_x, sum_x2 = _native_moments(_as_rows(x), partition=partition)
  mean = sum_x / count
  var = jnp.maximum(sum_x2 / count - jnp.square(mean), 0.0)
  y = _normalize(x, mean, var, scale, bias, epsilon, activation)
  return (y, mean, var), (x, scale, bias, mean, jax.lax.rsqrt(var + epsilon))


def _bn_act_native_bwd(epsilon, activation, partition, res, cotangents):
  """dx = scale * inv * (dz - sum(dz) / N - xhat * sum(dz * xhat) / N); see the module doc."""
  del epsilon
  x, scale, bias, mean, inv = res
  dy = cotangents[0]  # Cotangents of mean and var are ignored: they feed no loss.
  count = x.size // x.shape[-1]
  dbias, dscale = _native_grad_sums(activation == "relu6", _as_rows(dy), _as_rows(x), mean,
                                    inv, scale, bias, partition=partition)
  xhat = (x - mean) * inv
  if activation == "relu6":
    z = xhat * scale + bias
    dz = jnp.where((z > 0) & (z < 6), dy, 0.0)
  else:
    dz = dy
  dx = (scale * inv) * (dz - dbias / count - xhat * (dscale / count))
  return dx, dscale, dbias


_bn_act_native.defvjp(_bn_act_native_fwd, _bn_act_native_bwd)


def inference_act(x: jax.Array, mean: jax.Array, var: jax.Array, scale: jax.Array,
                  bias: jax.Array, epsilon: float, activation: str) -> jax.Array:
  """``act(BN(x))`` with given (running) statistics, in float32, output in ``x``'s dtype."""
  return _normalize(x, mean, var, scale, bias, epsilon, activation)
