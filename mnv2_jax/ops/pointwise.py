"""1x1 convolution (a matmul over channels) with a weight gradient that transposes the smaller side.

XLA:CPU computes the weight gradient ``dW = X^T dY`` of ``Y = X W`` (X: (P, Cin), dY: (P, Cout),
P = batch * height * width) with a library matmul that needs one operand transposed in memory,
and picks which by its own heuristic: for the expansion convs of MobileNetV2 it copied the
6x larger ``dY``. Writing the weight gradient as ``dot(transpose(smaller), larger)`` lets the
copy be the small one.

``pointwise_conv(x, w, impl)`` picks the formulation (``mnv2_jax.ops.impl.Impl.pointwise``):
``"cpu_vjp"`` is that custom VJP, ``"dot"`` a plain ``dot_general`` differentiated by JAX (what
GPUs and TPUs get: their matmul libraries take transposed operands without a copy). Both compute
the same values. ``"conv"`` writes it as a 1x1 ``conv_general_dilated`` (NHWC/HWIO): TF-Lite's
converter legalises that to CONV_2D, while it rejects the rank-4 ``dot_general`` ("tfl.batch_matmul
op found invalid output rank"), so `mnv2_jax.export` uses it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from mnv2_jax.ops import impl as impl_lib


IMPLEMENTATIONS = impl_lib.CHOICES["pointwise"]


def _dot(x: jax.Array, w: jax.Array) -> jax.Array:
  return lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))


def pointwise_conv(x: jax.Array, w: jax.Array, impl: str = "cpu_vjp") -> jax.Array:
  """``x`` (..., Cin) times ``w`` (Cin, Cout) -> (..., Cout), in formulation ``impl``."""
  if impl == "dot":
    return _dot(x, w)
  if impl == "cpu_vjp":
    return _pointwise_cpu_vjp(x, w)
  if impl == "conv":
    if x.ndim != 4:
      raise ValueError(f"pointwise impl 'conv' needs an NHWC input, got shape {x.shape}")
    return lax.conv_general_dilated(x, w[None, None], (1, 1), "VALID",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
  raise ValueError(f"pointwise impl must be one of {IMPLEMENTATIONS}, got {impl!r}")


@jax.custom_vjp
def _pointwise_cpu_vjp(x: jax.Array, w: jax.Array) -> jax.Array:
  return _dot(x, w)


def _fwd(x, w):
  return _dot(x, w), (x, w)


def _bwd(res, g):
  x, w = res
  dx = lax.dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())))
  x2 = x.reshape(-1, x.shape[-1])
  g2 = g.reshape(-1, g.shape[-1])
  if x2.shape[1] <= g2.shape[1]:
    dw = jnp.dot(x2.T, g2)
  else:
    dw = jnp.dot(g2.T, x2).T
  return dx, dw.astype(w.dtype)


_pointwise_cpu_vjp.defvjp(_fwd, _bwd)
