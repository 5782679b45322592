"""1x1 convolution (a matmul over channels) with a weight gradient that transposes the smaller side.

XLA:CPU computes the weight gradient ``dW = X^T dY`` of ``Y = X W`` (X: (P, Cin), dY: (P, Cout),
P = batch * height * width) with a library matmul that needs one operand transposed in memory,
and picks which by its own heuristic: for the expansion convs of MobileNetV2 it copied the
6x larger ``dY``. Writing the weight gradient as ``dot(transpose(smaller), larger)`` lets the
copy be the small one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


@jax.custom_vjp
def pointwise_conv(x: jax.Array, w: jax.Array) -> jax.Array:
  """``x`` (..., Cin) times ``w`` (Cin, Cout) -> (..., Cout)."""
  return lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))


def _fwd(x, w):
  return pointwise_conv(x, w), (x, w)


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


pointwise_conv.defvjp(_fwd, _bwd)
